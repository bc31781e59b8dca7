"""Evaluation metrics on small samples worked by hand."""

from __future__ import annotations

import json
import math

import pytest

from srlm.core.parsing import parse_verdict
from srlm.eval.metrics import (
    accuracy,
    combine_orders,
    judge_pair_metrics,
    judge_score_metrics,
    length_controlled_win_rate,
    majority_vote,
    win_rates,
)


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


# ---------------------------------------------------------------------------------------------
# combine_orders


def test_verdict_spelling_is_the_parsers():
    assert {parse_verdict("[[A]]"), parse_verdict("[[B]]"), parse_verdict("[[C]]")} == {
        "A",
        "B",
        "tie",
    }


@pytest.mark.parametrize(
    "ab, ba, expected",
    [
        ("A", "B", "win"),  # first in AB, second in BA: won both
        ("A", "tie", "win"),
        ("tie", "B", "win"),
        ("B", "A", "loss"),
        ("B", "tie", "loss"),
        ("tie", "A", "loss"),
        ("A", "A", "tie"),  # always the first position: the order decided
        ("B", "B", "tie"),
        ("tie", "tie", "tie"),
        ("A", None, "win"),
        (None, "A", "loss"),
        (None, "tie", "tie"),
        (None, None, None),
    ],
)
def test_combine_orders(ab, ba, expected):
    assert combine_orders(ab, ba) == expected


def test_combine_orders_rejects_unknown_verdicts():
    with pytest.raises(ValueError, match="'C'"):
        combine_orders("C", "A")


# ---------------------------------------------------------------------------------------------
# win_rates


def test_win_rates_worked_example():
    rows = [
        # ab,   ba,    candidate outcome (AB, BA) -> combined
        ("A", "B", 30, 20),  # win, win   -> win
        ("A", "tie", 40, 20),  # win, tie   -> win
        ("A", "A", 20, 20),  # win, loss  -> tie (flip)
        ("B", "A", 10, 20),  # loss, loss -> loss
        ("tie", "tie", 20, 20),  # tie, tie   -> tie
        (None, "B", 30, 20),  # -, win     -> win (one order readable: no flip counted)
        (None, None, 20, 20),  # unjudged
    ]
    out = win_rates(
        [{"ab": a, "ba": b, "len_candidate": c, "len_baseline": d} for a, b, c, d in rows]
    )
    # judged 6: wins 3, losses 1, ties 2.
    assert (out["judged"], out["unjudged"]) == (6, 1)
    assert (out["wins"], out["losses"], out["ties"]) == (3, 1, 2)
    assert out["win_rate"] == pytest.approx(3 / 6)
    assert out["loss_rate"] == pytest.approx(1 / 6)
    assert out["tie_rate"] == pytest.approx(2 / 6)
    assert out["win_rate_ties_half"] == pytest.approx((3 + 1) / 6)
    # Both readable in 5 rows; the AB and BA outcomes differ in rows 2 (win/tie) and 3 (win/loss).
    assert out["order_flip_rate"] == pytest.approx(2 / 5)
    assert out["mean_len_candidate"] == pytest.approx(170 / 7)
    assert out["mean_len_baseline"] == pytest.approx(20)
    expected_lc = length_controlled_win_rate([1, 1, 0.5, 0, 0.5, 1], [10, 20, 0, -10, 0, 10])
    assert out["lc_win_rate"] == pytest.approx(expected_lc)
    json.dumps(out)


def test_win_rates_nothing_judged():
    out = win_rates([{"ab": None, "ba": None, "len_candidate": 5, "len_baseline": 4}])
    assert (out["judged"], out["unjudged"]) == (0, 1)
    for key in (
        "win_rate",
        "loss_rate",
        "tie_rate",
        "win_rate_ties_half",
        "order_flip_rate",
        "lc_win_rate",
    ):
        assert out[key] is None, key
    assert win_rates([])["win_rate"] is None


def test_win_rates_without_lengths_has_no_lc_rate():
    out = win_rates([{"ab": "A", "ba": "B"}, {"ab": "B", "ba": "A"}])
    assert out["win_rate"] == 0.5
    assert out["lc_win_rate"] is None
    assert out["mean_len_candidate"] is None


# ---------------------------------------------------------------------------------------------
# length_controlled_win_rate


def test_lc_equals_raw_rate_without_length_differences():
    # s = 0: only theta is fitted, where n * (mean pref - p) = l2 * theta: the penalty lowers
    # 3/4 by l2 * logit(3/4) / n = 1e-3 * 1.0986 / 4 = 2.7e-4, to 0.74973.
    assert length_controlled_win_rate([1, 1, 0, 1], [0, 0, 0, 0]) == pytest.approx(
        0.74973, abs=1e-5
    )
    assert length_controlled_win_rate([1, 0.5, 0, 0.5], [7, 7, 7, 7]) == pytest.approx(0.5)
    # One prompt: s is 0 too; a single win stays finite (1 - p = l2 * theta, theta ~ 5.2).
    assert 0.99 < length_controlled_win_rate([1], [12]) < 1


def test_lc_below_raw_rate_when_wins_come_with_length():
    # Longer in 6 prompts (d = +10) winning 5, shorter in 3 (d = -10) winning 1: raw 6/9.
    # Both groups share |tanh(d/s)|, so the saturated fit gives theta + phi*x = logit(5/6) and
    # theta - phi*x = logit(1/3): theta = (ln 5 - ln 2) / 2 and LC = sigmoid(theta) = 0.6126.
    prefs = [1, 1, 1, 1, 1, 0] + [1, 0, 0]
    diffs = [10] * 6 + [-10] * 3
    lc = length_controlled_win_rate(prefs, diffs)
    assert lc == pytest.approx(_sigmoid((math.log(5) - math.log(2)) / 2), abs=1e-3)
    assert lc < 6 / 9


def test_lc_symmetric_sample_is_one_half():
    # Wins 2 of 3 when longer and 1 of 3 when shorter by as much: no preference at equal length.
    prefs = [1, 1, 0, 0, 0, 1]
    diffs = [10, 10, 10, -10, -10, -10]
    assert length_controlled_win_rate(prefs, diffs) == pytest.approx(0.5)


def test_lc_separable_samples_stay_finite():
    # Wins every prompt: theta would grow without bound without the penalty.
    assert 0.99 < length_controlled_win_rate([1] * 24, [5, -5] * 12) < 1
    # Wins exactly when longer, symmetric: phi diverges without it, theta stays 0.
    assert length_controlled_win_rate([1, 1, 0, 0], [10, 10, -10, -10]) == pytest.approx(0.5)


def test_lc_checks_its_inputs():
    assert length_controlled_win_rate([], []) is None
    with pytest.raises(ValueError, match="2 preferences for 1"):
        length_controlled_win_rate([1, 0], [3])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        length_controlled_win_rate([2], [3])


# ---------------------------------------------------------------------------------------------
# judges on labelled pairs


def test_judge_pair_metrics_worked_example():
    rows = [
        {"ab": "A", "ba": "B"},  # right in both orders
        {"ab": "A", "ba": "A"},  # always the first: right AB, wrong BA, a flip
        {"ab": "tie", "ba": "B"},  # tie then right: a flip (tie -> chosen)
        {"ab": None, "ba": "A"},  # unreadable, then wrong
    ]
    out = judge_pair_metrics(rows)
    assert out["n"] == 4
    assert out["accuracy_ab"] == pytest.approx(2 / 4)  # rows 1, 2
    assert out["accuracy_ba"] == pytest.approx(2 / 4)  # rows 1, 3
    assert out["accuracy"] == pytest.approx(4 / 8)
    assert out["position_consistent_accuracy"] == pytest.approx(1 / 4)  # row 1
    assert out["order_flip_rate"] == pytest.approx(2 / 3)  # rows 1-3 readable; 2 and 3 flip
    assert out["parse_failure_rate"] == pytest.approx(1 / 8)
    assert out["tie_rate"] == pytest.approx(1 / 8)
    # Readable non-tie verdicts: A, B, A, A, B, A -> 4 of 6 pick the first position.
    assert out["first_position_rate"] == pytest.approx(4 / 6)


def test_judge_pair_metrics_empty():
    out = judge_pair_metrics([])
    assert out["n"] == 0
    assert all(v is None for k, v in out.items() if k != "n")


def test_judge_score_metrics_worked_example():
    rows = [
        {"chosen": 4, "rejected": 2},  # right
        {"chosen": 3, "rejected": 3},  # tie
        {"chosen": 1, "rejected": 4.5},  # wrong
        {"chosen": None, "rejected": 2},  # unscored
    ]
    out = judge_score_metrics(rows)
    assert (out["n"], out["scored"]) == (4, 3)
    assert out["accuracy"] == pytest.approx(1 / 3)
    assert out["tie_rate"] == pytest.approx(1 / 3)
    assert out["unscored_rate"] == pytest.approx(1 / 4)
    assert out["mean_chosen"] == pytest.approx((4 + 3 + 1) / 3)
    assert out["mean_rejected"] == pytest.approx((2 + 3 + 4.5 + 2) / 4)
    assert out["score_histogram"] == {"1": 1, "2": 2, "3": 2, "4": 1, "4.5": 1}
    assert list(out["score_histogram"]) == ["1", "2", "3", "4", "4.5"]
    json.dumps(out)


def test_judge_score_metrics_nothing_scored():
    out = judge_score_metrics([{"chosen": None, "rejected": None}])
    assert out["accuracy"] is None and out["tie_rate"] is None
    assert out["unscored_rate"] == 1.0
    assert out["score_histogram"] == {}


# ---------------------------------------------------------------------------------------------
# answers


def test_majority_vote():
    assert majority_vote(["43", "42", "43.", None]) == "43"
    assert majority_vote(["7", "8"]) == "7"  # a tie goes to the first seen
    assert majority_vote([None, None]) is None
    assert majority_vote([]) is None


def test_irpo_uses_the_same_majority_vote():
    from srlm.methods.irpo import majority_answer

    assert majority_answer is majority_vote


def test_accuracy():
    assert accuracy(["1", "2", "3", "4"], ["1", "2", "0", "4"]) == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match="2 predictions for 1"):
        accuracy([1, 2], [1])
    with pytest.raises(ValueError, match="no predictions"):
        accuracy([], [])


def test_soft_preferences_give_the_weighted_win_rate_and_feed_lc():
    # A judge that always names the answer shown first: every prompt is a tie by verdicts,
    # but its probabilities lean: 0.7 and 0.6 for the candidate, averaged over both orders.
    rows = [
        {"ab": "A", "ba": "A", "pref": 0.7, "len_candidate": 10, "len_baseline": 10},
        {"ab": "A", "ba": "A", "pref": 0.6, "len_candidate": 10, "len_baseline": 10},
    ]
    m = win_rates(rows)
    assert m["ties"] == 2 and m["win_rate"] == 0.0
    assert m["soft_win_rate"] == pytest.approx(0.65)
    # No length differences: the LC fit is the intercept alone, sigmoid(theta) ~ 0.65 (the
    # L2 penalty pulls it a hair towards 0.5).
    assert 0.64 < m["lc_win_rate"] <= 0.65
    # One prompt without probabilities: no soft rate, LC from the verdicts (two ties: 0.5).
    rows[1]["pref"] = None
    m = win_rates(rows)
    assert m["soft_win_rate"] is None and m["lc_win_rate"] == pytest.approx(0.5, abs=1e-3)
