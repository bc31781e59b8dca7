"""Rules the papers state, checked on hand-worked rows: TPO's Elo counts decisive pairwise
verdicts only (its STE set-up, reward.tie_weight=0), and IRPO drops samples cut at max_tokens
from pair formation instead of counting them as losers."""

from __future__ import annotations

import pytest

from srlm.compose import compose, validate
from srlm.methods.irpo import Irpo, make_pairs
from srlm.rewards.pairwise import elo_scores
from srlm.rundir import RunDir, read_jsonl, write_jsonl
from tests.unit.test_irpo_parts import _rows

# ---------------------------------------------------------------- TPO: ties count for neither side
# Sample 0 beats sample 1 in both orders; 0 and 2 tie in both orders; 1 vs 2 is unreadable.
OUTCOMES = [
    (0, 1, "first"),
    (1, 0, "second"),
    (0, 2, "tie"),
    (2, 0, "tie"),
    (1, 2, None),
    (2, 1, None),
]


def test_tpo_ste_setup_counts_decisive_verdicts_only():
    cfg = validate(compose(["experiment=tpo_ste_llama3_8b"]))
    assert (cfg.method.name, cfg.reward.name, cfg.reward.tie_weight) == (
        "tpo",
        "pairwise_judge",
        0.0,
    )
    s0, s1, s2 = elo_scores(OUTCOMES, 3, cfg.reward.tie_weight)
    # B = [[0, 2, 0], [0, 0, 0], [0, 0, 0]]: only 0 > 1 is evidence. The fit is symmetric in
    # 0 and 1, and sample 2, with no decisive battle, stays at the prior (0) between them.
    assert s0 == pytest.approx(-s1) and s0 > 0
    assert s2 == pytest.approx(0.0, abs=1e-9)


def test_a_tie_as_half_a_win_would_lift_the_tied_sample_to_the_winner():
    s0, s1, s2 = elo_scores(OUTCOMES, 3, 0.5)
    # B[0, 2] = B[2, 0] = 1 ties 2 to 0, far above 1: the score the paper's rule does not give.
    assert s2 == pytest.approx(s0, abs=0.05) and s2 > 1.0 > s1


def test_a_prompt_judged_all_ties_gives_equal_scores():
    ties = [(0, 1, "tie"), (1, 0, "tie")]
    assert elo_scores(ties, 2, 0.0) == [0.0, 0.0]


# ---------------------------------------------------------------- IRPO: cut samples are dropped


def test_cut_samples_are_neither_winners_nor_losers():
    # Winners 0, 3; losers 1 (whole) and 2, 4 (cut at max_tokens). Only loser 1 is paired:
    # K = 4 asks for more than the 2 distinct (winner, loser) combinations left.
    rows = _rows([1, 0, 0, 1, 0], finish=["stop", "stop", "length", "stop", "length"])
    pairs, why = make_pairs(rows, k=4)
    assert why is None
    assert [(p["chosen_sample"], p["rejected_sample"]) for p in pairs] == [(0, 1), (3, 1)]


def test_a_cut_winner_is_dropped_too():
    pairs, why = make_pairs(_rows([1, 1, 0], finish=["length", "stop", "stop"]), k=4)
    assert [(p["chosen_sample"], p["rejected_sample"]) for p in pairs] == [(1, 2)]


@pytest.mark.parametrize(
    ("rewards", "finish", "why"),
    [
        # Every wrong sample was cut: no loser is left, the question is skipped.
        ([1, 0, 0], ["stop", "length", "length"], "no_loser"),
        # The only right sample was cut.
        ([1, 0, 0], ["length", "stop", "stop"], "no_winner"),
    ],
)
def test_question_left_without_a_side_is_skipped(rewards, finish, why):
    assert make_pairs(_rows(rewards, finish=finish), k=4) == ([], why)


def test_pairs_stage_counts_the_dropped_samples(tmp_path):
    cfg = validate(compose(["method=irpo", "rollout=hf", "logger=none", f"run_dir={tmp_path}"]))
    method = Irpo(cfg, RunDir(tmp_path))
    rows = _rows([1, 0, 0], "a", finish=["stop", "length", "stop"]) + _rows(
        [1, 0], "b", finish=["stop", "length"]
    )
    write_jsonl(method.run.stage_file(1, "rewards"), rows)
    stats = method.run_stage("pairs", 1, engine=None)
    assert stats["dropped_truncated"] == 2
    assert stats["pairs"] == 1 and stats["skipped_no_loser"] == 1
    [pair] = read_jsonl(method.run.stage_file(1, "pairs"))
    assert (pair["question_id"], pair["chosen_sample"], pair["rejected_sample"]) == ("a", 0, 2)
