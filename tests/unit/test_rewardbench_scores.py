"""RewardBench's scores of a judge on labelled pairs with a `subset`: per-subset accuracy, the
four sections weighted as RewardBench weights them, their mean (what EvalPlanner's Table 1
reports), and how the thinking judge's and the shared evaluation report them. Numbers worked
by hand."""

from __future__ import annotations

import pytest

from srlm.compose import compose, validate
from srlm.eval.metrics import REWARDBENCH_SECTIONS, pair_credit, rewardbench_scores, score_credit
from srlm.eval.stage import JUDGE, Evaluation
from srlm.methods import get_method
from srlm.methods.thinking_judge import ThinkingJudge, judge_metrics
from srlm.rundir import RunDir
from srlm.summary import format_summary
from tests.unit.test_eval_data import _DATA
from tests.unit.test_judge_finish_reason import ScriptEngine
from tests.unit.test_rewards import FakeEngine

FIXTURE = _DATA / "rewardbench.jsonl"
SECTION_KEYS = [f"rewardbench_{s}" for s in ("chat", "chat_hard", "safety", "reasoning")]


# ---------------------------------------------------------------- the rule
def test_section_scores_by_hand():
    credits = [
        # Chat: alpacaeval-easy 1/1 right (weight 100), mt-bench-easy 0/1 (weight 28):
        #   100 / 128 = 0.78125
        ("alpacaeval-easy", 1.0),
        ("mt-bench-easy", 0.0),
        # Chat Hard: llmbar-natural, one right and one tie (half credit): 0.75
        ("llmbar-natural", 1.0),
        ("llmbar-natural", 0.5),
        # Safety: refusals-dangerous 2/2, refusals-offensive 0/1, both weight 100:
        #   (100 * 1 + 100 * 0) / 200 = 0.5, not the 2/3 of its three pairs pooled
        ("refusals-dangerous", 1.0),
        ("refusals-dangerous", 1.0),
        ("refusals-offensive", 0.0),
        # Reasoning: math-prm 1/1 (weight 984, as much as the six hep-* subsets together),
        #   hep-python 0/1 and hep-go 1/2 (weight 164 each):
        #   (984 * 1 + 164 * 0 + 164 * 0.5) / (984 + 164 + 164) = 1066 / 1312 = 0.8125
        ("math-prm", 1.0),
        ("hep-python", 0.0),
        ("hep-go", 1.0),
        ("hep-go", 0.0),
        # Not a RewardBench subset: reported on its own, in no section.
        ("anthropic_helpful", 0.0),
        # No subset: left out.
        (None, 0.0),
    ]
    s = rewardbench_scores(credits)
    assert s["rewardbench_chat"] == pytest.approx(0.78125)
    assert s["rewardbench_chat_hard"] == pytest.approx(0.75)
    assert s["rewardbench_safety"] == pytest.approx(0.5)
    assert s["rewardbench_reasoning"] == pytest.approx(0.8125)
    # Overall: (0.78125 + 0.75 + 0.5 + 0.8125) / 4 = 2.84375 / 4
    assert s["rewardbench"] == pytest.approx(0.7109375)
    assert s["rewardbench_subsets"] == pytest.approx(
        {
            "alpacaeval-easy": 1.0,
            "anthropic_helpful": 0.0,
            "hep-go": 0.5,
            "hep-python": 0.0,
            "llmbar-natural": 0.75,
            "math-prm": 1.0,
            "mt-bench-easy": 0.0,
            "refusals-dangerous": 1.0,
            "refusals-offensive": 0.0,
        }
    )


def test_a_missing_section_is_null_and_so_is_the_overall_score():
    s = rewardbench_scores([("alpacaeval-easy", 1.0), ("math-prm", 0.0)])
    assert (s["rewardbench_chat"], s["rewardbench_reasoning"]) == (1.0, 0.0)
    assert s["rewardbench_chat_hard"] is None and s["rewardbench_safety"] is None
    assert s["rewardbench"] is None
    # Rows without a subset (srlm's shipped eval_pairs): nothing to report.
    assert rewardbench_scores([(None, 1.0), (None, 0.0)]) == {}
    assert rewardbench_scores([]) == {}


def test_paper_overall_is_the_mean_of_the_four_sections():
    # EvalPlanner, Table 1 (Llama-3.1-70B): 97.5 / 89.4 / 93.0 / 95.5 -> 93.9 overall.
    one_per_section = {"chat": "mt-bench-med", "chat_hard": "mt-bench-hard"}
    one_per_section |= {"safety": "donotanswer", "reasoning": "math-prm"}
    paper = {"chat": 0.975, "chat_hard": 0.894, "safety": 0.930, "reasoning": 0.955}
    s = rewardbench_scores([(one_per_section[k], v) for k, v in paper.items()])
    assert round(100 * s["rewardbench"], 1) == 93.9


def test_sections_are_rewardbenchs():
    sizes = {name: len(subsets) for name, subsets in REWARDBENCH_SECTIONS.items()}
    assert sizes == {"chat": 5, "chat_hard": 6, "safety": 5, "reasoning": 7}
    code = [w for s, w in REWARDBENCH_SECTIONS["reasoning"].items() if s.startswith("hep-")]
    assert REWARDBENCH_SECTIONS["reasoning"]["math-prm"] == sum(code) == 984


@pytest.mark.parametrize(
    "ab, ba, credit",
    [
        ("A", "B", 1.0),  # right in both orders
        ("B", "A", 0.0),  # wrong in both
        ("A", "A", 0.5),  # always the first answer: right once
        ("tie", "B", 0.75),  # a tie is half right
        (None, "B", 0.75),  # so is an unreadable verdict
        (None, None, 0.5),
    ],
)
def test_pair_credit(ab, ba, credit):
    assert pair_credit(ab, ba) == credit


def test_score_credit():
    assert (score_credit(4, 1), score_credit(1, 4), score_credit(3, 3)) == (1.0, 0.0, 0.5)
    assert score_credit(None, 4) == score_credit(4, None) == 0.5


def test_thinking_judge_metrics_add_the_scores_only_with_subsets():
    rows = [
        {"triple_id": "t1", "subset": "math-prm", "order": "AB", "verdict": "A"},
        {"triple_id": "t1", "subset": "math-prm", "order": "BA", "verdict": "A"},
    ]
    m = judge_metrics(rows)
    assert m["rewardbench_reasoning"] == 0.5 and m["rewardbench"] is None
    assert not any(
        k.startswith("rewardbench")
        for k in judge_metrics([{k: v for k, v in r.items() if k != "subset"} for r in rows])
    )


# ---------------------------------------------------------------- the evaluations
def _rewardbench_rows() -> list[dict]:
    from srlm.eval.data import load_eval_set

    return [vars(p) for p in load_eval_set(str(FIXTURE))]


def _verdict(prompt: str) -> str:
    """Names the chosen answer of the fixture's pairs, except on hep-python: always [[A]]."""
    for r in _rewardbench_rows():
        if r["prompt"] in prompt:
            if r["subset"] == "hep-python":
                return "[[A]]"
            return "[[A]]" if prompt.index(r["chosen"]) < prompt.index(r["rejected"]) else "[[B]]"
    raise AssertionError(f"not a fixture pair: {prompt[:200]}")


def test_thinking_judge_reports_rewardbench_sections(tmp_path):
    cfg = validate(
        compose(
            [
                "method=thinking_judge",
                "rollout=hf",
                f"run_dir={tmp_path}",
                f"eval.pairs={FIXTURE}",
                "eval.max_pairs=null",
            ]
        )
    )
    m = ThinkingJudge(cfg, RunDir(tmp_path))
    stats = m.evaluate(0, lambda: ScriptEngine(lambda p, k: (_verdict(p), "stop")))
    rows = m.run.read_rows(0, "eval")
    assert len(rows) == 8
    assert {r["subset"] for r in rows} == {r["subset"] for r in _rewardbench_rows()}
    # Right in both orders on three pairs, one section each; hep-python right in one order
    # only (0.5), the only Reasoning subset present: (1 + 1 + 1 + 0.5) / 4.
    assert [stats[k] for k in SECTION_KEYS] == [1.0, 1.0, 1.0, 0.5]
    assert stats["rewardbench"] == pytest.approx(0.875)
    assert stats["rewardbench_subsets"]["hep-python"] == 0.5
    assert stats["pos_consistent_acc"] == pytest.approx(0.75)
    # The terminal summary keeps the overall score; the sections are in the report.
    table = format_summary([{"iteration": 0} | {f"eval/{k}": v for k, v in stats.items()}])
    assert "rewardbench" in table and "rewardbench_chat" not in table


def _evaluation(tmp_path, *overrides) -> Evaluation:
    cfg = validate(
        compose(
            ["rollout=hf", "logger=none", f"run_dir={tmp_path}", "eval.win_rates=false"]
            + list(overrides)
        )
    )
    run = RunDir(tmp_path)
    return Evaluation(cfg, run, get_method(cfg.method.name)(cfg, run))


def test_a_pointwise_policy_judge_gets_the_sections(tmp_path):
    rejected = [r["rejected"] for r in _rewardbench_rows()]

    def reply(prompt: str, k: int) -> str:
        if "def total" in prompt:  # the hep-python pair
            return "Both work.\nScore: 3"  # equal scores: half credit
        return "Score: 1" if any(r in prompt for r in rejected) else "Score: 4"

    ev = _evaluation(tmp_path, "method=self_reward", f"eval.pairs={FIXTURE}", "eval.max_pairs=null")
    stats = ev.evaluate(0, lambda: FakeEngine(reply))
    assert stats["judge_accuracy"] == pytest.approx(3 / 4)  # the tie is not right
    assert [stats[f"judge_{k}"] for k in SECTION_KEYS] == [1.0, 1.0, 1.0, 0.5]
    assert stats["judge_rewardbench"] == pytest.approx(0.875)
    judged = RunDir(tmp_path).read_rows(0, JUDGE)
    assert [r["subset"] for r in judged] == [r["subset"] for r in _rewardbench_rows()]


def test_a_pairwise_policy_judge_gets_the_sections(tmp_path):
    ev = _evaluation(
        tmp_path,
        "method=tpo",
        "reward=pairwise_judge",
        "reward.verdict_mode=parse",
        f"eval.pairs={FIXTURE}",
        "eval.max_pairs=null",
    )
    assert ev.judge_accuracy and ev.reward.kind == "pairwise"
    stats = ev.evaluate(0, lambda: FakeEngine(lambda p, k: _verdict(p)))
    assert [stats[f"judge_{k}"] for k in SECTION_KEYS] == [1.0, 1.0, 1.0, 0.5]
    assert stats["judge_rewardbench"] == pytest.approx(0.875)
    assert stats["judge_position_consistent_accuracy"] == pytest.approx(3 / 4)


def test_the_shipped_pairs_have_no_subset_and_get_no_sections(tmp_path):
    ev = _evaluation(tmp_path, "method=self_reward", "eval.max_pairs=2")
    stats = ev.evaluate(0, lambda: FakeEngine(lambda p, k: "Score: 4"))
    assert "judge_accuracy" in stats
    assert not any("rewardbench" in k for k in stats)
