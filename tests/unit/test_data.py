"""Data loaders, shipped data files and the arithmetic task generator."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest

from srlm.data import DataError, builtin_names, builtin_path, load_rows, read_jsonl
from srlm.data import arithmetic as A
from srlm.errors import SrlmError

# ---------------------------------------------------------------------------------------------
# read_jsonl / load_rows


def _write(tmp_path, text, name="rows.jsonl"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_read_jsonl_reads_rows_and_skips_blank_lines(tmp_path):
    p = _write(tmp_path, '{"a": 1}\n\n   \n{"a": 2, "b": "x"}\n')
    assert read_jsonl(p) == [{"a": 1}, {"a": 2, "b": "x"}]


def test_malformed_line_reports_file_and_line(tmp_path):
    p = _write(tmp_path, '{"a": 1}\n\n{"a": 2,,}\n')
    with pytest.raises(DataError) as ei:
        read_jsonl(p)
    msg = str(ei.value)
    assert f"{p}:3:" in msg  # blank line 2 still counts: physical, 1-based line numbers
    assert "malformed JSON" in msg


def test_non_object_line_is_rejected(tmp_path):
    p = _write(tmp_path, '{"a": 1}\n[1, 2]\n')
    with pytest.raises(DataError, match=re.escape(f"{p}:2:") + ".*JSON object.*list"):
        read_jsonl(p)


def test_missing_required_field_names_field_line_and_row(tmp_path):
    p = _write(tmp_path, '{"instruction": "hi"}\n{"prompt": "oops", "extra": 1}\n')
    with pytest.raises(DataError) as ei:
        read_jsonl(p, required=["instruction"])
    msg = str(ei.value)
    assert f"{p}:2:" in msg
    assert "'instruction'" in msg and "missing" in msg
    assert "prompt" in msg and "extra" in msg  # says what the row does have


def test_null_required_field_is_reported(tmp_path):
    p = _write(tmp_path, '{"instruction": null}\n')
    with pytest.raises(DataError, match=r":1: required field 'instruction' is null"):
        read_jsonl(p, required=["instruction"])


def test_field_map_renames_and_checks_under_our_name(tmp_path):
    p = _write(tmp_path, '{"problem": "1+1", "solution": "2", "level": 1}\n')
    rows = read_jsonl(
        p, required=["question", "answer"], field_map={"question": "problem", "answer": "solution"}
    )
    assert rows == [{"question": "1+1", "answer": "2", "level": 1}]

    bad = _write(tmp_path, '{"problem": "1+1", "solution": "2"}\n{"solution": "3"}\n', "bad.jsonl")
    with pytest.raises(DataError) as ei:
        read_jsonl(bad, required=["question"], field_map={"question": "problem"})
    msg = str(ei.value)
    assert f"{bad}:2:" in msg and "'question'" in msg and "'problem'" in msg


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DataError, match=re.escape(str(missing))):
        read_jsonl(missing)
    with pytest.raises(DataError, match=re.escape(str(missing))):
        load_rows(str(missing))


def test_data_error_is_a_value_error_and_an_srlm_error():
    assert issubclass(DataError, ValueError) and issubclass(DataError, SrlmError)


def test_load_rows_path_directory_and_limit(tmp_path):
    _write(tmp_path, "".join(json.dumps({"x": i}) + "\n" for i in range(5)), "train.jsonl")
    _write(tmp_path, '{"x": 99}\n', "test.jsonl")
    assert [r["x"] for r in load_rows(str(tmp_path / "train.jsonl"), limit=2)] == [0, 1]
    assert load_rows(str(tmp_path), split="test") == [{"x": 99}]
    assert load_rows(str(tmp_path / "train.jsonl"), limit=0) == []
    with pytest.raises(DataError, match="limit"):
        load_rows(str(tmp_path / "train.jsonl"), limit=-1)


def test_builtin_source_and_unknown_builtin():
    rows = load_rows("builtin:seed_instructions", required=["instruction"], limit=3)
    assert len(rows) == 3
    assert builtin_path("seed_instructions.jsonl") == builtin_path("seed_instructions")
    with pytest.raises(DataError, match="builtin:nope.*seed_instructions"):
        load_rows("builtin:nope")
    with pytest.raises(DataError):
        builtin_path("../pyproject")


def test_hf_source_without_datasets_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(DataError, match=r"hf:openai/gsm8k:main.*datasets.*local JSONL"):
        load_rows("hf:openai/gsm8k:main")


def test_hf_source_that_cannot_load_offline(monkeypatch):
    def load_dataset(name, config=None, split=None):
        raise ConnectionError(f"Couldn't reach {name} on the Hub (offline)")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    with pytest.raises(DataError, match=r"hf:org/thing.*cannot load.*ConnectionError.*local JSONL"):
        load_rows("hf:org/thing", split="test")


def test_hf_source_rows_are_validated_with_row_index(monkeypatch):
    seen = {}

    def load_dataset(name, config=None, split=None):
        seen.update(name=name, config=config, split=split)
        return [{"problem": "a", "answer": "1"}, {"problem": "b", "answer": "2"}, {"answer": "3"}]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    rows = load_rows("hf:org/math:cfg", split="test", field_map={"question": "problem"}, limit=2)
    assert seen == {"name": "org/math", "config": "cfg", "split": "test"}
    assert rows == [{"question": "a", "answer": "1"}, {"question": "b", "answer": "2"}]
    with pytest.raises(DataError, match=r"hf:org/math\[train\] row 2: required field 'question'"):
        load_rows("hf:org/math", required=["question"], field_map={"question": "problem"})


# ---------------------------------------------------------------------------------------------
# field types: what each field the methods read must hold (FIELD_KINDS)

_GOOD = {"instruction": "Fine.", "response": "Ok.", "justification": "Clear.", "score": 4}
_JUDGEMENT = ["instruction", "response", "justification", "score"]


@pytest.mark.parametrize(
    "bad, required, end",
    [
        (
            {"instruction": ["a", "b"]},
            ["instruction"],
            """field 'instruction' must be text, got list: ["a", "b"]""",
        ),
        ({"instruction": 7}, ["instruction"], "field 'instruction' must be text, got int: 7"),
        (
            {"instruction": {"text": "hi"}},
            ["instruction"],
            """field 'instruction' must be text, got dict: {"text": "hi"}""",
        ),
        ({"instruction": ""}, ["instruction"], "field 'instruction' is empty text: \"\""),
        ({"instruction": " \n"}, ["instruction"], "field 'instruction' is empty text: \" \\n\""),
        (
            {**_GOOD, "response": False},
            _JUDGEMENT,
            "field 'response' must be text, got bool: false",
        ),
        (
            {**_GOOD, "justification": 3.5},
            _JUDGEMENT,
            "field 'justification' must be text, got float: 3.5",
        ),
        ({**_GOOD, "score": "4"}, _JUDGEMENT, "field 'score' must be a number, got str: \"4\""),
        ({**_GOOD, "score": True}, _JUDGEMENT, "field 'score' must be a number, got bool: true"),
        ({**_GOOD, "score": [4]}, _JUDGEMENT, "field 'score' must be a number, got list: [4]"),
        (
            {"question": "q", "answer": [72]},
            ["question", "answer"],
            "field 'answer' must be text or a number, got list: [72]",
        ),
        (
            {"question": "q", "answer": ""},
            ["question", "answer"],
            "field 'answer' is empty text: \"\"",
        ),
        (
            {"question": 12, "answer": "#### 1"},
            ["question", "answer"],
            "field 'question' must be text, got int: 12",
        ),
    ],
)
def test_required_field_of_the_wrong_type_names_file_line_field_and_value(
    tmp_path, bad, required, end
):
    good = {name: _GOOD.get(name, "1") for name in required}
    p = _write(tmp_path, json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError) as ei:
        read_jsonl(p, required=required)
    assert str(ei.value) == f"{p}:2: {end}"
    with pytest.raises(DataError) as ei:
        load_rows(str(p), required=required, limit=1)  # a row past the limit is still read
    assert str(ei.value) == f"{p}:2: {end}"


def test_numbers_where_numbers_belong(tmp_path):
    p = _write(
        tmp_path,
        '{"question": "q1", "answer": 72, "score": 0}\n'
        '{"question": "q2", "answer": 2.5, "score": 4.5}\n'
        '{"question": "q3", "answer": "#### 1,200", "score": -1}\n',
    )
    rows = read_jsonl(p, required=["question", "answer", "score"])
    assert [(r["answer"], r["score"]) for r in rows] == [(72, 0), (2.5, 4.5), ("#### 1,200", -1)]
    # JSON's NaN and Infinity parse as floats, but no score or answer can be either.
    nan = _write(tmp_path, '{"question": "q", "answer": NaN}\n', "nan.jsonl")
    with pytest.raises(DataError) as ei:
        read_jsonl(nan, required=["question", "answer"])
    assert str(ei.value) == f"{nan}:1: field 'answer' must be text or a number, got float: NaN"


def test_type_error_says_which_field_of_the_file_it_read(tmp_path):
    p = _write(tmp_path, '{"query": ["x"]}\n')
    with pytest.raises(DataError) as ei:
        read_jsonl(p, required=["instruction"], field_map={"instruction": "query"})
    assert str(ei.value) == (
        f"""{p}:1: field 'instruction' (read from the file's field 'query') must be text, """
        """got list: ["x"]"""
    )


def test_optional_fields_are_typed_only_when_present(tmp_path):
    p = _write(
        tmp_path,
        '{"question": "q1", "answer": "1"}\n'
        '{"question": "q2", "answer": "2", "id": 7, "solution": null}\n'
        '{"question": "q3", "answer": "3", "id": "gsm-3", "solution": "1 + 2 = 3"}\n',
    )
    required, optional = ["question", "answer"], ["id", "solution"]
    assert len(read_jsonl(p, required=required, optional=optional)) == 3
    bad = _write(tmp_path, '{"question": "q", "answer": "1", "id": {"n": 1}}\n', "bad.jsonl")
    with pytest.raises(DataError) as ei:
        load_rows(str(bad), required=required, optional=optional)
    assert (
        str(ei.value) == f"""{bad}:1: field 'id' must be text or an integer, got dict: {{"n": 1}}"""
    )
    # A field nobody reads is not checked, whatever it holds.
    assert read_jsonl(bad, required=required) == [{"question": "q", "answer": "1", "id": {"n": 1}}]


@pytest.mark.parametrize("text", ["", "\n", "  \n\n\t\n"])
def test_a_file_without_rows_is_refused(tmp_path, text):
    p = _write(tmp_path, text)
    want = f"{p}: the file has no rows (it is empty or holds only blank lines)"
    with pytest.raises(DataError) as ei:
        read_jsonl(p)
    assert str(ei.value) == want
    with pytest.raises(DataError) as ei:
        load_rows(str(p), required=["instruction"])
    assert str(ei.value) == want


def test_a_json_array_file_says_how_to_make_it_json_lines(tmp_path):
    # alpaca_eval.json as AlpacaEval ships it: one indented JSON array.
    rows = [{"instruction": "Name a fruit.", "output": "A pear."}]
    p = _write(tmp_path, json.dumps(rows, indent=2), "alpaca_eval.json")
    with pytest.raises(DataError) as ei:
        load_rows(str(p), required=["instruction"])
    msg = str(ei.value)
    assert msg.startswith(f"{p}:1: malformed JSON")
    assert msg.endswith(
        "alpaca_eval.json looks like one JSON array, but a data file is JSON Lines (one object "
        "per line): convert it with jq -c '.[]' alpaca_eval.json > alpaca_eval.jsonl"
    )
    one_line = _write(tmp_path, json.dumps(rows), "one_line.json")
    with pytest.raises(DataError, match=r":1: expected a JSON object.*one JSON array.*jq -c"):
        read_jsonl(one_line)


def _hf(monkeypatch, rows):
    monkeypatch.setitem(
        sys.modules, "datasets", types.SimpleNamespace(load_dataset=lambda *a, **k: rows)
    )


def test_hf_rows_get_the_same_type_checks(monkeypatch):
    _hf(monkeypatch, [{"instruction": "a"}, {"instruction": ["b"]}])
    with pytest.raises(DataError) as ei:
        load_rows("hf:org/prompts", required=["instruction"])
    assert (
        str(ei.value)
        == """hf:org/prompts[train] row 1: field 'instruction' must be text, got list: ["b"]"""
    )
    _hf(monkeypatch, [])
    with pytest.raises(DataError) as ei:
        load_rows("hf:org/prompts", split="test", required=["instruction"])
    assert str(ei.value) == "hf:org/prompts[test]: the dataset split has no rows"


# ---------------------------------------------------------------------------------------------
# the methods' data files, through the pre-flight that runs before any model loads


def _preflight(tmp_path, *overrides):
    from srlm.compose import compose
    from srlm.preflight import check

    return check(compose([f"run_dir={tmp_path}/run", *overrides]))


def _problems(tmp_path, *overrides) -> list[str]:
    from srlm.errors import Problems

    with pytest.raises(Problems) as ei:
        _preflight(tmp_path, *overrides)
    return ei.value.problems


def test_preflight_refuses_a_seed_instruction_that_is_a_list(tmp_path):
    p = _write(tmp_path, '{"instruction": "Name a fruit."}\n{"instruction": ["a", "b"]}\n')
    want = f"""{p}:2: field 'instruction' must be text, got list: ["a", "b"]"""
    assert _problems(tmp_path, f"data.seed_instructions={p}") == [want]
    # TPO reads its instructions through fresh_instructions, which used to call .strip() on it.
    assert want in _problems(tmp_path, "method=tpo", f"data.seed_instructions={p}")


def test_preflight_refuses_an_empty_seed_file_and_a_bad_seed_judgement(tmp_path):
    empty = _write(tmp_path, "\n", "empty.jsonl")
    assert _problems(tmp_path, f"data.seed_instructions={empty}") == [
        f"{empty}: the file has no rows (it is empty or holds only blank lines)"
    ]
    row = {"instruction": "Hi", "response": "Hello", "justification": "Polite.", "score": "5"}
    judged = _write(tmp_path, json.dumps(row) + "\n", "judged.jsonl")
    assert _problems(tmp_path, f"data.seed_judgements={judged}") == [
        f"{judged}:1: field 'score' must be a number, got str: \"5\""
    ]


# ---------------------------------------------------------------------------------------------
# IRPO's method.task=file data: GSM8K's rows as they are


_GSM8K = Path(__file__).resolve().parents[1] / "data" / "gsm8k"


def _irpo(tmp_path, *overrides):
    from srlm.compose import compose, validate

    return validate(
        compose(
            [
                "method=irpo",
                "optimizer=dpo_nll",
                f"run_dir={tmp_path}/run",
                "method.task=file",
                *overrides,
            ]
        )
    )


def test_gsm8k_rows_load_as_irpo_questions(tmp_path):
    from srlm.methods.irpo import load_questions

    # A directory source reads DIR/train.jsonl for training and DIR/test.jsonl for testing.
    cfg = _irpo(
        tmp_path, f"method.train_file={_GSM8K}", f"method.test_file={_GSM8K}", "method.shots=1"
    )
    train, test, shots, _ = load_questions(cfg.method)
    assert shots == [
        {
            "question": "A baker makes 36 muffins in the morning and half as many in the "
            "afternoon. How many muffins does the baker make in total?",
            "reasoning": "In the afternoon the baker makes 36 / 2 = 18 muffins.\n"
            "In total the baker makes 36 + 18 = 54 muffins.\nFinal answer: 54",
        }
    ]
    assert [(r["id"], r["answer"]) for r in train] == [
        ("train-1", "55"),
        ("train-2", "7500"),
        ("train-3", "15"),
    ]
    assert train[1]["solution"] == "In 6 days it packs 1,250 * 6 = 7,500 boxes.\nFinal answer: 7500"
    assert [(r["id"], r["answer"]) for r in test] == [("test-0", "82"), ("test-1", "270")]
    _preflight(
        tmp_path,
        "method=irpo",
        "optimizer=dpo_nll",
        "method.task=file",
        f"method.train_file={_GSM8K}",
        f"method.test_file={_GSM8K}",
    )


def test_irpo_file_rows_with_a_bad_answer_or_a_repeated_id(tmp_path):
    from srlm.methods.irpo import load_questions

    good = _GSM8K / "test.jsonl"
    bad = _write(
        tmp_path, '{"question": "Q?", "answer": "#### 1"}\n{"question": "R?", "answer": [2]}\n'
    )
    cfg = _irpo(tmp_path, f"method.train_file={bad}", f"method.test_file={good}", "method.shots=0")
    with pytest.raises(DataError) as ei:
        load_questions(cfg.method)
    assert str(ei.value) == f"{bad}:2: field 'answer' must be text or a number, got list: [2]"
    twice = _write(
        tmp_path,
        '{"id": 7, "question": "Q?", "answer": "1"}\n{"id": "7", "question": "R?", "answer": "2"}\n',
        "twice.jsonl",
    )
    cfg = _irpo(
        tmp_path, f"method.train_file={twice}", f"method.test_file={good}", "method.shots=0"
    )
    with pytest.raises(DataError) as ei:
        load_questions(cfg.method)
    assert str(ei.value) == (
        f"method.train_file={twice}: rows 1 and 2 have the same id '7'; ids must be unique"
    )


# ---------------------------------------------------------------------------------------------
# shipped files


def test_builtin_files_all_load():
    names = builtin_names()
    assert {"seed_instructions", "seed_judgements", "eval_prompts"} <= set(names)
    for name in names:
        assert load_rows(f"builtin:{name}"), name


def test_seed_instructions_are_valid():
    rows = load_rows("builtin:seed_instructions", required=["instruction", "category"])
    assert 56 <= len(rows) <= 72
    texts = [r["instruction"].strip() for r in rows]
    assert all(texts) and len(set(texts)) == len(texts)
    assert len({r["category"] for r in rows}) >= 8
    short = sum(len(t.split()) <= 30 for t in texts)
    assert short >= 0.9 * len(texts)


def test_seed_judgements_are_valid():
    rows = load_rows(
        "builtin:seed_judgements", required=["instruction", "response", "justification", "score"]
    )
    assert 28 <= len(rows) <= 40
    counts = {s: 0 for s in range(6)}
    for r in rows:
        assert type(r["score"]) is int and 0 <= r["score"] <= 5, r
        counts[r["score"]] += 1
        assert len(r["justification"].split()) < 100, r["instruction"]
        assert len(r["response"].split()) <= 80, r["instruction"]
        assert "Score:" not in r["justification"]  # the judge target appends it
    assert all(counts[s] >= 4 for s in range(1, 6)), counts


def test_eval_prompts_are_valid_and_held_out():
    rows = load_rows("builtin:eval_prompts", required=["instruction"])
    assert len(rows) == 24
    evals = {r["instruction"].strip().lower() for r in rows}
    assert len(evals) == 24
    seen = {r["instruction"].strip().lower() for r in load_rows("builtin:seed_instructions")}
    seen |= {r["instruction"].strip().lower() for r in load_rows("builtin:seed_judgements")}
    assert not evals & seen


# ---------------------------------------------------------------------------------------------
# arithmetic


def _recompute(row: dict) -> int:
    """Solve a generated question independently of the generator."""
    q = row["question"]
    m = re.fullmatch(r"What is (\d+) \+ (\d+)\?", q)
    if m:
        return int(m[1]) + int(m[2])
    nums = [int(x) for x in re.findall(r"\d+", q)]
    rules = [
        ("buys", "gives away", lambda a, b, c: a + b - c),
        ("A box holds", "", lambda a, b, c: a * b - c),
        ("A book has", "", lambda t, a, b: t - a - b),
        ("on a bus", "", lambda a, b, c: a - b + c),
        ("already has", "packs", lambda c, a, b: c + a * b),
        ("dollars", "spent", lambda a, b, c: a - b + c),
        ("equally", "", lambda total, k, more: total // k + more),
        ("baker", "", lambda a, b, c: a + b - c),
    ]
    for key1, key2, f in rules:
        if key1 in q and key2 in q:
            return f(*nums)
    raise AssertionError(f"unrecognised question: {q}")


@pytest.mark.parametrize("kind", A.KINDS)
def test_answers_are_correct(kind):
    rows = A.make_problems(kind, min(300, A.capacity(kind)), seed=3)
    for r in rows:
        assert set(r) >= {"question", "answer", "id"}
        assert r["answer"] == str(_recompute(r)), r
        assert int(r["answer"]) >= 0
        assert r["solution"].rstrip().endswith(f"Final answer: {r['answer']}")
    assert len({r["question"] for r in rows}) == len(rows)
    assert len({r["id"] for r in rows}) == len(rows)


def test_kind_shapes():
    add1 = A.make_problems("add1", 20, 0)
    assert all(re.fullmatch(r"What is [1-9] \+ [1-9]\?", r["question"]) for r in add1)
    add2 = A.make_problems("add2", 200, 0)
    for r in add2:
        a, b = map(int, re.findall(r"\d+", r["question"]))
        assert 10 <= a <= 49 and 10 <= b <= 49
    word = A.make_problems("word2", 16, 0)
    assert len({re.sub(r"\d+", "N", r["id"]) for r in word}) == 8  # every template in turn
    mixed = A.make_problems("mixed", 9, 0)
    assert [r["kind"] for r in mixed] == ["add1", "add2", "word2"] * 3


def test_make_problems_is_deterministic_and_seeded():
    assert A.make_problems("word2", 50, 7) == A.make_problems("word2", 50, 7)
    assert A.make_problems("word2", 50, 7) != A.make_problems("word2", 50, 8)


@pytest.mark.parametrize("kind", A.KINDS)
def test_split_disjoint_deterministic_and_test_independent_of_n_train(kind):
    n_test = 20
    train, test = A.train_test_split(kind, 50, n_test, seed=11)
    assert len(train) == 50 and len(test) == n_test
    assert not {r["question"] for r in train} & {r["question"] for r in test}
    assert A.train_test_split(kind, 50, n_test, seed=11) == (train, test)
    train2, test2 = A.train_test_split(kind, 5, n_test, seed=11)
    assert test2 == test
    assert A.train_test_split(kind, 50, n_test, seed=12)[1] != test


def test_split_and_make_problems_refuse_too_many():
    cap = A.capacity("add1")
    assert cap == 81 - 3  # 1-9 + 1-9, minus the three worked examples
    A.train_test_split("add1", cap - 10, 10, 0)
    with pytest.raises(ValueError, match="only 78"):
        A.train_test_split("add1", cap, 10, 0)
    with pytest.raises(ValueError, match="only 78"):
        A.make_problems("add1", cap + 1, 0)
    with pytest.raises(ValueError, match="unknown arithmetic kind 'add3'"):
        A.make_problems("add3", 1, 0)
    with pytest.raises(ValueError, match="non-negative"):
        A.make_problems("add2", -1, 0)


@pytest.mark.parametrize("kind", A.KINDS)
def test_few_shot_examples_are_valid_and_never_generated(kind):
    shots = A.FEW_SHOT[kind]
    assert len(shots) == 3
    for s in shots:
        assert set(s) == {"question", "reasoning", "answer"}
        assert s["reasoning"].rstrip().endswith(f"Final answer: {s['answer']}")
        assert s["answer"] == str(_recompute(s))
        assert len(s["reasoning"].splitlines()) >= 2  # worked steps, then the answer line
    few = {s["question"] for s in shots}
    everything = {r["question"] for r in A.problem_stream(kind, 0)}
    assert not few & everything
    train, test = A.train_test_split(kind, 40, 20, seed=0)
    assert not few & {r["question"] for r in train + test}
