"""Fixed triples for the thinking judge (method.triples) and the MATH-triples recipe
(scripts/math_triples.py), on the shipped fixtures tests/data/triples.jsonl and
tests/data/math_samples.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srlm.compose import compose, validate
from srlm.data import DataError, read_jsonl
from srlm.errors import ConfigError, Problems
from srlm.judging import PLAN_END
from srlm.methods.thinking_judge import MODIFIED_END, MODIFIED_START, ThinkingJudge, load_triples
from srlm.rollout.base import Completion
from srlm.rundir import RunDir
from tests.conftest import ROOT, script_module

TRIPLES = ROOT / "tests" / "data" / "triples.jsonl"
MATH_SAMPLES = ROOT / "tests" / "data" / "math_samples.jsonl"


def _method(tmp_path, *overrides) -> ThinkingJudge:
    cfg = validate(
        compose(["method=thinking_judge", "rollout=hf", f"run_dir={tmp_path}", *overrides])
    )
    return ThinkingJudge(cfg, RunDir(tmp_path))


def _no_model():
    raise AssertionError("the triples stage loaded a model, but its triples come from a file")


class _Tokenizer:
    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


class _Engine:
    """Answers each data-generation prompt in its format; executions alternate [[A]] / [[B]],
    so every plan and order has a correct and a wrong one."""

    tokenizer = _Tokenizer()

    def generate(self, prompts, sampling, n=1, desc=""):
        reply = {
            "answer instructions": lambda k: "My answer.",
            "similar but different": lambda k: (
                f"A near question?\n{MODIFIED_START}\nIts answer.\n{MODIFIED_END}"
            ),
            "plans": lambda k: f"1. Check the answer.\n{PLAN_END}",
            "execute plans": lambda k: "Verdict: [[A]]" if k % 2 == 0 else "Verdict: [[B]]",
        }[desc]
        return [[Completion(reply(k), 3, "stop") for k in range(n)] for _ in prompts]


# ---------------------------------------------------------------- slicing the file
def test_each_iteration_takes_the_next_rows_in_file_order(tmp_path):
    # The fixture has 6 rows; row 6 is on line 7 (line 6 is blank). [2, 3] over 2 iterations:
    # iteration 1 = rows 1-2, iteration 2 = rows 3-5, row 6 unused.
    lines = [json.loads(x) for x in TRIPLES.read_text().splitlines() if x.strip()]
    m = _method(
        tmp_path,
        f"method.triples={TRIPLES}",
        "method.instructions_per_iteration=[2,3]",
        "method.iterations=2",
    )
    stats = m.run_stage("triples", 1, _no_model)
    assert stats == {
        "prompts": 2,
        "triples": 2,
        "triples_unparseable": 0,
        "triples_file": str(TRIPLES),
        "triples_file_rows": [1, 2],
    }
    assert m.run_stage("triples", 2, _no_model)["triples_file_rows"] == [3, 5]
    for t, rows in ((1, lines[0:2]), (2, lines[2:5])):
        written = RunDir(tmp_path).read_rows(t, "triples")  # what a resumed run reads
        assert [(r["instruction"], r["chosen"], r["rejected"]) for r in written] == [
            (r["instruction"], r["chosen"], r["rejected"]) for r in rows
        ]
        assert [r["id"] for r in written] == [f"{t}-{i}" for i in range(len(rows))]
        assert all(r["ok"] for r in written)
    assert [r["file_row"] for r in RunDir(tmp_path).read_rows(2, "triples")] == [3, 4, 5]


def test_the_last_value_repeats_and_rows_are_counted_not_lines(tmp_path):
    # [1, 2] over 3 iterations needs 1 + 2 + 2 = 5 rows: rows 1, 2-3, 4-5.
    m = _method(
        tmp_path,
        f"method.triples={TRIPLES}",
        "method.instructions_per_iteration=[1,2]",
        "method.iterations=3",
    )
    assert m.slices == [(0, 1), (1, 3), (3, 5)]
    # [2, 4] over 2 iterations takes all 6 rows; the sixth is the file's line 7.
    m = _method(
        tmp_path,
        f"method.triples={TRIPLES}",
        "method.instructions_per_iteration=[2,4]",
        "method.iterations=2",
    )
    m.run_stage("triples", 2, _no_model)
    last = RunDir(tmp_path).read_rows(2, "triples")[-1]
    assert last["file_row"] == 6 and last["instruction"] == "Solve for x: 2x + 3 = 11."


def test_a_file_shorter_than_the_schedule_is_refused(tmp_path):
    with pytest.raises(ConfigError) as e:
        _method(
            tmp_path,
            f"method.triples={TRIPLES}",
            "method.instructions_per_iteration=[4]",
            "method.iterations=2",
        )
    assert "needs 8 triples" in str(e.value) and "has 6" in str(e.value)
    assert f"method.triples={str(TRIPLES)!r}" in str(e.value)


# ---------------------------------------------------------------- the rest of the loop
def test_file_triples_have_the_shape_of_generated_ones_and_feed_the_loop(tmp_path):
    generated = _method(tmp_path / "gen", "method.instructions_per_iteration=[2]")
    generated.run_stage("triples", 1, _Engine)
    made = RunDir(tmp_path / "gen").read_rows(1, "triples")
    m = _method(
        tmp_path / "file", f"method.triples={TRIPLES}", "method.instructions_per_iteration=[2]"
    )
    m.run_stage("triples", 1, _no_model)
    run = RunDir(tmp_path / "file")
    read = run.read_rows(1, "triples")
    assert {k for r in read for k in r} == {k for r in made for k in r} | {"file_row"}

    for stage in ("plans", "executions", "pairs"):
        m.run_stage(stage, 1, _Engine)
    pairs = run.read_rows(1, "pairs")
    assert {p["triple_id"] for p in pairs} == {"1-0", "1-1"}
    first = json.loads(TRIPLES.read_text().splitlines()[0])
    for p in pairs:
        if p["triple_id"] == "1-0":
            # The file's chosen answer is the better one, in whichever order it is shown.
            shown = (p["answer_a"], p["answer_b"])
            want = (first["chosen"], first["rejected"])
            assert shown == (want if p["order"] == "AB" else want[::-1])
            assert p["chosen_verdict"] == {"AB": "A", "BA": "B"}[p["order"]]
    assert m.training_examples(1, _Tokenizer())


# ---------------------------------------------------------------- bad rows and files
def _jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


GOOD = {"instruction": "Say hi.", "chosen": "Hi!", "rejected": "Bye."}


@pytest.mark.parametrize(
    "lines, needle",
    [
        ([GOOD, {"instruction": "Say hi.", "chosen": "Hi!"}], ":2: required field 'rejected'"),
        ([GOOD, "", {**GOOD, "chosen": ["Hi", "!"]}], ":3: field 'chosen' must be text"),
        ([GOOD, {**GOOD, "instruction": "  "}], ":2: field 'instruction' is empty text"),
        ([GOOD, '{"instruction": "Say hi.",'], ":2: malformed JSON"),
    ],
)
def test_a_bad_row_names_the_key_the_file_and_the_line(tmp_path, lines, needle):
    path = _jsonl(tmp_path / "triples.jsonl", lines)
    with pytest.raises(DataError) as e:
        load_triples(str(path))
    assert str(e.value).startswith(f"method.triples: {path}{needle}")


def test_field_map_renames_the_files_fields(tmp_path):
    path = _jsonl(tmp_path / "t.jsonl", [{"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No."}])
    assert load_triples(str(path), {"instruction": "prompt"})[0]["instruction"] == "Say hi."


def test_preflight_refuses_a_missing_triples_file_naming_the_key(tmp_path):
    from srlm.preflight import check

    with pytest.raises(Problems) as e:
        check(
            compose(
                [
                    "method=thinking_judge",
                    "rollout=hf",
                    f"run_dir={tmp_path}/run",
                    f"method.triples={tmp_path}/nope.jsonl",
                ]
            )
        )
    assert any(
        p.startswith(f"method.triples: {tmp_path}/nope.jsonl: data file not found")
        for p in e.value.problems
    ), e.value.problems
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- the MATH-triples recipe
def _recipe():
    return script_module("math_triples")


@pytest.mark.parametrize("use_math_verify", [False, True])
def test_recipe_pairs_a_correct_with_a_wrong_solution(use_math_verify):
    samples = read_jsonl(MATH_SAMPLES, required=_recipe().SAMPLE_FIELDS)
    triples, counts = _recipe().math_triples(samples, use_math_verify)
    # 1/2 + 1/4: line 1 says 1/3 (wrong), line 2 says 3/4 (the first correct one).
    # 12's divisors: two correct and one without an answer -> no wrong one, no triple.
    # Smallest prime: line 7 says 1 (wrong), line 8 says 2. 3^2: only a correct one.
    lines = MATH_SAMPLES.read_text().splitlines()
    resp = [json.loads(x)["response"] for x in lines]
    assert triples == [
        {"instruction": json.loads(lines[0])["problem"], "chosen": resp[1], "rejected": resp[0]},
        {"instruction": json.loads(lines[6])["problem"], "chosen": resp[7], "rejected": resp[6]},
    ]
    assert counts["problems"] == 4 and counts["triples"] == 2
    assert counts["unreadable_answers"] == 1 and counts["problems_without_wrong"] == 2


def test_recipe_never_rejects_a_solution_without_an_answer():
    rows = [
        {"problem": "What is 2 + 3?", "answer": 5, "response": "It is five-ish."},  # no answer
        {"problem": "What is 2 + 3?", "answer": 5, "response": "Final answer: 6"},
        {"problem": "What is 2 + 3?", "answer": 5, "response": "Final answer: 5"},
        {"problem": "What is 1 + 1?", "answer": 2, "response": "I cannot tell."},
        {"problem": "What is 1 + 1?", "answer": 2, "response": "Final answer: 2"},
    ]
    triples, counts = _recipe().math_triples(rows, use_math_verify=False)
    assert triples == [
        {
            "instruction": "What is 2 + 3?",
            "chosen": "Final answer: 5",
            "rejected": "Final answer: 6",
        }
    ]
    assert counts["problems_without_wrong"] == 1 and counts["unreadable_answers"] == 2


def test_recipe_refuses_two_gold_answers_for_one_problem():
    rows = [
        {"problem": "What is 2 + 3?", "answer": 5, "response": "Final answer: 5"},
        {"problem": "What is 2 + 3?", "answer": "6", "response": "Final answer: 6"},
    ]
    with pytest.raises(DataError, match=r"give different gold answers \['5', '6'\]"):
        _recipe().math_triples(rows, use_math_verify=False)


def test_recipe_output_is_a_triples_file(tmp_path, capsys):
    out = tmp_path / "math_triples.jsonl"
    assert _recipe().main([str(MATH_SAMPLES), str(out), "--math-verify", "off"]) == 0
    assert [r["instruction"] for r in load_triples(str(out))] == [
        "What is $\\frac{1}{2} + \\frac{1}{4}$?",
        "What is the smallest prime number?",
    ]
    bad = _jsonl(tmp_path / "bad.jsonl", [{"problem": ["x"], "answer": 1, "response": "1"}])
    assert _recipe().main([str(bad), str(tmp_path / "o.jsonl")]) == 2
    assert f"{bad}:1: field 'problem' must be text" in capsys.readouterr().err
    none = _jsonl(tmp_path / "none.jsonl", [{"problem": "1+1?", "answer": 2, "response": "2"}])
    assert _recipe().main([str(none), str(tmp_path / "o.jsonl")]) == 1
    assert not (tmp_path / "o.jsonl").exists()


# ---------------------------------------------------------------- group losses and the online judge
def test_grpo_groups_are_each_triple_and_orders_executions_rewarded_by_their_verdict(tmp_path):
    m = _method(
        tmp_path,
        f"method.triples={TRIPLES}",
        "method.instructions_per_iteration=[2]",
        "optimizer=grpo",
    )
    m.run_stage("triples", 1, _no_model)
    for stage in ("plans", "executions"):
        m.run_stage(stage, 1, _Engine)
    groups = m.training_groups(1, _Tokenizer())
    assert len(groups) == 2 * 2  # two triples, each in both orders
    for g in groups:
        # _Engine's executions alternate [[A]] / [[B]]: half of each order's are correct.
        assert sorted(set(g.rewards)) == [0.0, 1.0] and sum(g.rewards) == len(g.rewards) / 2
        assert all(
            "[Final Verdict]" in r and "[Start of Evaluation Plan]" in r for r in g.responses
        )


def test_the_online_judge_is_rewarded_for_the_correct_verdict_in_each_order(tmp_path):
    m = _method(
        tmp_path,
        f"method.triples={TRIPLES}",
        "method.instructions_per_iteration=[2]",
        "method.iterations=1",
        "method.sft_warm_start=false",
        "trainer.sync_every=1",
        "trainer.steps_per_iteration=1",
    )
    rows = m.online_prompts()
    assert [r["order"] for r in rows] == ["AB", "BA", "AB", "BA"]
    first = json.loads(TRIPLES.read_text().splitlines()[0])
    ab, ba = (m.online_prompt(_Tokenizer(), r) for r in rows[:2])
    # The file's chosen answer is Assistant A in order AB, Assistant B in order BA.
    assert ab.index(first["chosen"]) < ab.index(first["rejected"])
    assert ba.index(first["rejected"]) < ba.index(first["chosen"])

    texts = ["Plan...\n[Final Verdict]\n[[A]]", "Plan...\n[Final Verdict]\n[[B]]", "No verdict."]
    outs = [[Completion(x, 5, "stop") for x in texts] for _ in rows[:2]]
    groups, stats = m.online_examples(1, rows[:2], outs, None, _Tokenizer(), grouped=True)
    assert [g.rewards for g in groups] == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert stats["sample_accuracy"] == pytest.approx(2 / 6)
    assert stats["reward_parse_failure_rate"] == pytest.approx(2 / 6)
    pairs, stats = m.online_examples(1, rows[:2], outs, None, _Tokenizer(), grouped=False)
    # One correct judgement per prompt, paired with an incorrect one.
    assert [(p.chosen, p.rejected) for p in pairs] == [(texts[0], texts[1]), (texts[1], texts[0])]
    assert stats["pairs"] == 2


@pytest.mark.parametrize(
    "overrides, needle",
    [
        (["method.sft_warm_start=false"], "method.triples=null with trainer.sync_every=1"),
        ([f"method.triples={TRIPLES}"], "method.sft_warm_start=true with trainer.sync_every=1"),
    ],
)
def test_the_online_judge_needs_fixed_triples_and_no_sft_from_a_rollout(
    tmp_path, overrides, needle
):
    overrides = [
        "method=thinking_judge",
        f"run_dir={tmp_path}",
        "trainer.sync_every=1",
        "trainer.steps_per_iteration=1",
        *overrides,
    ]
    with pytest.raises(Problems, match=needle.replace(".", r"\.")):
        validate(compose(overrides))
