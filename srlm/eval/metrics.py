"""Evaluation metrics: pure functions of verdicts, scores and answers (no model code).

Pairwise verdicts are what ``srlm.core.parsing.parse_verdict`` returns: ``"A"`` (the response
shown first is better), ``"B"`` (the second), ``"tie"``, or ``None`` when the judgement could
not be read. Every comparison is judged in both orders, because LLM judges favour one
position; the two verdicts are combined, and how often they disagree is reported.

- ``combine_orders`` / ``win_rates``: a candidate model against a baseline on the same prompts,
  with the AlpacaEval-style length-controlled win rate (``length_controlled_win_rate``).
- ``judge_pair_metrics`` / ``judge_score_metrics``: a pairwise or pointwise judge on labelled
  pairs (chosen known to be better): accuracy, position consistency and bias, parse failures.
- ``rewardbench_scores``: RewardBench's per-subset accuracies and its section scores (Chat,
  Chat Hard, Safety, Reasoning) with their mean, from each labelled pair's credit
  (``pair_credit`` for a pairwise judge, ``score_credit`` for a pointwise one).
- ``majority_vote`` / ``accuracy``: maj@k and exact-match accuracy of answers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from srlm.core.parsing import normalize_answer
from srlm.core.stats import mean

__all__ = [
    "DEFAULT_LC_L2",
    "REWARDBENCH_SECTIONS",
    "accuracy",
    "combine_orders",
    "judge_pair_metrics",
    "judge_score_metrics",
    "length_controlled_win_rate",
    "majority_vote",
    "pair_credit",
    "rewardbench_scores",
    "score_credit",
    "win_rates",
]

_VERDICTS = ("A", "B", "tie")

# Why 1e-3: one soft label adds at most 1/4 to the log-likelihood's curvature, so this prior
# weighs as much as ~0.004 of a judged prompt and moves a fit on a mixed sample by about 1e-3
# or less (the LC rate of a 3-in-4 sample with no length differences is 0.7497, not 0.75).
# Without it a separable sample has no maximum: a candidate that wins every prompt (theta) or
# wins exactly when it is longer (phi) sends the fit to infinity.
DEFAULT_LC_L2 = 1e-3


def _check_verdict(v: str | None) -> None:
    if v is not None and v not in _VERDICTS:
        raise ValueError(f"verdict must be 'A', 'B', 'tie' or None (unreadable), got {v!r}")


def _outcome(verdict: str | None, first: bool) -> str | None:
    """The outcome ("win"/"loss"/"tie") for the response shown first (``first``) or second."""
    _check_verdict(verdict)
    if verdict is None or verdict == "tie":
        return verdict
    return "win" if (verdict == "A") == first else "loss"


# ---------------------------------------------------------------------------------------------
# win rates of a candidate against a baseline


def combine_orders(ab: str | None, ba: str | None) -> str | None:
    """The candidate's outcome on one prompt, judged with it shown first (``ab``) and second (``ba``).

    Each readable verdict becomes win/loss/tie for the candidate; then win+win and win+tie give
    "win", loss+loss and loss+tie give "loss", win+loss (the order decided) and tie+tie give
    "tie". One unreadable verdict leaves the other alone; two give None (not judged).
    """
    first, second = _outcome(ab, first=True), _outcome(ba, first=False)
    if first is None or second is None:
        return first if second is None else second
    outcomes = {first, second}
    if "win" in outcomes and "loss" in outcomes:
        return "tie"
    if "win" in outcomes:
        return "win"
    if "loss" in outcomes:
        return "loss"
    return "tie"


def win_rates(outcomes: list[dict]) -> dict:
    """Win rates of a candidate over a baseline from ``{"ab", "ba", "len_candidate",
    "len_baseline"}`` per prompt (verdicts as in ``combine_orders``; lengths in tokens or words).

    Rates are over the judged prompts (at least one verdict readable) and None when there are
    none. ``win_rate_ties_half`` counts a tie as half a win (AlpacaEval's convention);
    ``order_flip_rate`` is the share of prompts with both verdicts readable whose two orders
    give the candidate different outcomes; ``lc_win_rate`` is ``length_controlled_win_rate``
    over the judged prompts (None when one of them lacks a length).

    An outcome may also carry ``pref``: the judge's probability of preferring the candidate,
    averaged over both orders (verdict_mode=probability). When every judged prompt has one,
    ``soft_win_rate`` is their mean (AlpacaEval's weighted win rate) and the LC fit uses them
    instead of win/tie/loss: a judge that always names the answer shown first still
    leans one way or the other by how much, and averaging the two orders cancels the position.
    """
    combined = [combine_orders(o.get("ab"), o.get("ba")) for o in outcomes]
    judged = [c for c in combined if c is not None]
    n = len(judged)
    wins, losses, ties = (sum(c == k for c in judged) for k in ("win", "loss", "tie"))
    both = [o for o in outcomes if o.get("ab") is not None and o.get("ba") is not None]
    flips = sum(_outcome(o["ab"], True) != _outcome(o["ba"], False) for o in both)
    prefs, diffs = [], []
    for o, c in zip(outcomes, combined, strict=True):
        if c is None:
            continue
        lc, lb = o.get("len_candidate"), o.get("len_baseline")
        if lc is None or lb is None:
            prefs = diffs = None
            break
        prefs.append({"win": 1.0, "tie": 0.5, "loss": 0.0}[c])
        diffs.append(float(lc) - float(lb))
    soft = [o.get("pref") for o, c in zip(outcomes, combined, strict=True) if c is not None]
    soft_ok = bool(soft) and all(x is not None for x in soft)
    if soft_ok and prefs is not None:
        prefs = [float(x) for x in soft]

    def rate(k: float) -> float | None:
        return k / n if n else None

    return {
        "judged": n,
        "unjudged": len(combined) - n,
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "win_rate": rate(wins),
        "loss_rate": rate(losses),
        "tie_rate": rate(ties),
        "win_rate_ties_half": rate(wins + ties / 2),
        "order_flip_rate": flips / len(both) if both else None,
        "mean_len_candidate": mean(o.get("len_candidate") for o in outcomes),
        "mean_len_baseline": mean(o.get("len_baseline") for o in outcomes),
        "soft_win_rate": sum(soft) / len(soft) if soft_ok else None,
        "lc_win_rate": length_controlled_win_rate(prefs, diffs) if prefs else None,
    }


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # tanh form: no overflow for large |z|


def length_controlled_win_rate(
    prefs: Sequence[float], len_diffs: Sequence[float], l2: float = DEFAULT_LC_L2
) -> float | None:
    """The win rate at zero length difference, AlpacaEval-LC style (Dubois et al. 2024).

    Fits ``P(candidate preferred) = sigmoid(theta + phi * tanh(d / s))`` by maximum likelihood
    on the soft labels ``prefs`` (1 win, 0.5 tie, 0 loss), where ``d`` is the candidate's length
    minus the baseline's and ``s`` the sample standard deviation of ``d`` (as AlpacaEval's
    pandas ``std``). The maximised objective is

        sum_i [y_i log p_i + (1 - y_i) log(1 - p_i)] - l2/2 * (theta^2 + phi^2)

    (see ``DEFAULT_LC_L2`` for the penalty), solved by Newton's method with step halving.
    Returns ``sigmoid(theta)``: the predicted win rate were both answers equally long. When
    ``s`` is 0 (all differences equal, or one prompt) the length term is dropped and the result
    is the (penalised) raw rate. AlpacaEval's per-instruction difficulty term is left out: it
    needs many models answering the same prompts. None when ``prefs`` is empty.
    """
    if len(prefs) != len(len_diffs):
        raise ValueError(f"{len(prefs)} preferences for {len(len_diffs)} length differences")
    if not prefs:
        return None
    y = np.asarray(prefs, dtype=np.float64)
    d = np.asarray(len_diffs, dtype=np.float64)
    if not np.all(np.isfinite(y)) or np.any((y < 0) | (y > 1)):
        raise ValueError(
            f"preferences must lie in [0, 1] (1 win, 0.5 tie, 0 loss), got {list(prefs)}"
        )
    if not np.all(np.isfinite(d)):
        raise ValueError(f"length differences must be finite numbers, got {list(len_diffs)}")
    s = float(np.std(d, ddof=1)) if len(d) > 1 else 0.0
    x = np.ones((len(y), 1)) if s == 0 else np.column_stack([np.ones(len(y)), np.tanh(d / s)])

    def objective(w: np.ndarray) -> float:
        z = x @ w
        # log sigmoid(z) = -logaddexp(0, -z), log(1 - sigmoid(z)) = -logaddexp(0, z)
        return float(
            -(y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)).sum() - 0.5 * l2 * (w @ w)
        )

    w = np.zeros(x.shape[1])
    value = objective(w)
    for _ in range(100):
        p = _sigmoid(x @ w)
        grad = x.T @ (y - p) - l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        t = 1.0
        # The objective is concave, so a short enough Newton step always improves it; halving
        # only guards the first steps of a near-separable sample, where curvature is tiny.
        while objective(w + t * step) < value - 1e-12 and t > 1e-8:
            t /= 2
        w = w + t * step
        value = objective(w)
        if np.max(np.abs(t * step)) < 1e-10:
            break
    return float(_sigmoid(w[0]))


# ---------------------------------------------------------------------------------------------
# judges on labelled pairs


def _preferred(verdict: str | None, chosen_first: bool) -> str | None:
    """ "chosen", "rejected" or "tie": which response of a labelled pair a verdict prefers."""
    outcome = _outcome(verdict, chosen_first)
    return {"win": "chosen", "loss": "rejected"}.get(outcome, outcome)


def judge_pair_metrics(rows: list[dict]) -> dict:
    """A pairwise judge on labelled pairs, each judged with the chosen response shown first
    (``"ab"``) and second (``"ba"``).

    - ``accuracy_ab`` / ``accuracy_ba``: share of pairs judged correctly in that order (a tie
      or an unreadable verdict is wrong); ``accuracy``: their mean, every judgement counted;
    - ``position_consistent_accuracy``: share correct in both orders (EvalPlanner's measure);
    - ``order_flip_rate``: among pairs with both verdicts readable, the share whose preferred
      response (chosen, rejected or tie) changes when the order is swapped;
    - ``parse_failure_rate`` / ``tie_rate``: share of all 2n verdicts unreadable / ties;
    - ``first_position_rate``: share of readable, non-tie verdicts that pick the response
      shown first (0.5 is no position bias);
    - ``n``: pairs. Rates are None when there is nothing to divide by.
    """
    n = len(rows)
    verdicts = [(r.get("ab"), True) for r in rows] + [(r.get("ba"), False) for r in rows]
    for v, _ in verdicts:
        _check_verdict(v)
    right_ab = [r.get("ab") == "A" for r in rows]
    right_ba = [r.get("ba") == "B" for r in rows]
    both = [r for r in rows if r.get("ab") is not None and r.get("ba") is not None]
    flips = sum(_preferred(r["ab"], True) != _preferred(r["ba"], False) for r in both)
    decided = [v for v, _ in verdicts if v in ("A", "B")]

    def share(k: float, of: int) -> float | None:
        return k / of if of else None

    return {
        "n": n,
        "accuracy_ab": share(sum(right_ab), n),
        "accuracy_ba": share(sum(right_ba), n),
        "accuracy": share(sum(right_ab) + sum(right_ba), 2 * n),
        "position_consistent_accuracy": share(
            sum(a and b for a, b in zip(right_ab, right_ba, strict=True)), n
        ),
        "order_flip_rate": share(flips, len(both)),
        "parse_failure_rate": share(sum(v is None for v, _ in verdicts), 2 * n),
        "tie_rate": share(sum(v == "tie" for v, _ in verdicts), 2 * n),
        "first_position_rate": share(sum(v == "A" for v in decided), len(decided)),
    }


def _score_key(score: float) -> str:
    # Scores are read from text ("4", "4.5"); two decimals keep judges' half points apart
    # while float noise from probability-weighted scores still lands in one bin.
    return f"{round(float(score), 2):g}"


def judge_score_metrics(rows: list[dict]) -> dict:
    """A pointwise judge on labelled pairs: ``{"chosen": score, "rejected": score}`` per pair,
    None where the judgement gave no score.

    ``accuracy`` (chosen scored higher) and ``tie_rate`` (equal scores) are over the pairs with
    both scores; ``unscored_rate`` is the share of pairs missing at least one; the means are
    over the scores given; ``score_histogram`` counts every score given, keyed by its value as
    text (``"4"``, ``"4.5"``) in increasing order, for JSON.
    """
    n = len(rows)
    scored = [
        (r["chosen"], r["rejected"])
        for r in rows
        if r.get("chosen") is not None and r.get("rejected") is not None
    ]
    k = len(scored)
    scores = [r.get(side) for r in rows for side in ("chosen", "rejected")]
    given = sorted(float(s) for s in scores if s is not None)
    hist = Counter(_score_key(s) for s in given)
    return {
        "n": n,
        "scored": k,
        "accuracy": sum(c > r for c, r in scored) / k if k else None,
        "tie_rate": sum(c == r for c, r in scored) / k if k else None,
        "unscored_rate": (n - k) / n if n else None,
        "mean_chosen": mean(r.get("chosen") for r in rows),
        "mean_rejected": mean(r.get("rejected") for r in rows),
        "score_histogram": dict(hist),
    }


# ---------------------------------------------------------------------------------------------
# RewardBench's section scores

# RewardBench's sections, each subset with its weight in its section: SUBSET_MAPPING and
# EXAMPLE_COUNTS of allenai/reward-bench, rewardbench/constants.py (as of commit 05a9005, with
# the xstest counts corrected in 6552e93). A weight is the subset's number of examples, except
# math-prm's: 984 for its 447 examples, "upweighting to be equal to code" (six hep-* subsets of
# 164), so Reasoning is half math and half code.
REWARDBENCH_SECTIONS: dict[str, dict[str, int]] = {
    "chat": {
        "alpacaeval-easy": 100,
        "alpacaeval-length": 95,
        "alpacaeval-hard": 95,
        "mt-bench-easy": 28,
        "mt-bench-med": 40,
    },
    "chat_hard": {
        "mt-bench-hard": 37,
        "llmbar-natural": 100,
        "llmbar-adver-neighbor": 134,
        "llmbar-adver-GPTInst": 92,
        "llmbar-adver-GPTOut": 47,
        "llmbar-adver-manual": 46,
    },
    "safety": {
        "refusals-dangerous": 100,
        "refusals-offensive": 100,
        "xstest-should-refuse": 154,
        "xstest-should-respond": 250,
        "donotanswer": 136,
    },
    "reasoning": {
        "math-prm": 984,
        "hep-cpp": 164,
        "hep-go": 164,
        "hep-java": 164,
        "hep-js": 164,
        "hep-python": 164,
        "hep-rust": 164,
    },
}


def _order_credit(verdict: str | None, right: str) -> float:
    _check_verdict(verdict)
    if verdict is None or verdict == "tie":
        # RewardBench's generative scoring (scripts/run_generative.py) gives 0.5 to a verdict
        # that names neither answer: "effectively a tie".
        return 0.5
    return 1.0 if verdict == right else 0.0


def pair_credit(ab: str | None, ba: str | None) -> float:
    """A pairwise judge's RewardBench credit for one labelled pair judged with the chosen
    response shown first (``ab``) and second (``ba``): per order 1 right, 0 wrong, 0.5 for a
    tie or an unreadable verdict, averaged over the two orders.

    RewardBench shows each pair once, in a random order; the mean over both orders is the
    credit that draw gives on average, without its noise.
    """
    return (_order_credit(ab, "A") + _order_credit(ba, "B")) / 2


def score_credit(chosen: float | None, rejected: float | None) -> float:
    """A pointwise judge's RewardBench credit for one labelled pair: 1 when the chosen response
    scores higher, 0 when lower, 0.5 for equal scores or a missing one (RewardBench's
    generative rating mode calls both a tie)."""
    if chosen is None or rejected is None or chosen == rejected:
        return 0.5
    return 1.0 if chosen > rejected else 0.0


def rewardbench_scores(credits: Iterable[tuple[str | None, float]]) -> dict:
    """RewardBench's scores from ``(subset, credit)`` per labelled pair (credit in [0, 1]).

    - ``rewardbench_subsets``: the mean credit of each subset present, RewardBench's own or
      not, by name;
    - ``rewardbench_chat``, ``rewardbench_chat_hard``, ``rewardbench_safety``,
      ``rewardbench_reasoning``: the accuracies of the section's subsets present, weighted as in
      ``REWARDBENCH_SECTIONS`` (RewardBench's ``calculate_scores_per_section``); None when
      none of its subsets is present, where RewardBench writes 0, which would read as a judge
      wrong on every pair;
    - ``rewardbench``: the mean of the four sections, None unless all four have pairs: the
      overall score EvalPlanner's Table 1 reports (its Llama-3.1-70B row: 93.9, the mean of
      97.5, 89.4, 93.0 and 95.5).

    Pairs without a subset are left out; ``{}`` when no pair has one, so a set that is not
    RewardBench's adds no keys.
    """
    by_subset: dict[str, list[float]] = {}
    for subset, credit in credits:
        if subset is not None:
            by_subset.setdefault(subset, []).append(credit)
    if not by_subset:
        return {}
    subsets = {name: mean(c) for name, c in sorted(by_subset.items())}
    sections = {}
    for section, weights in REWARDBENCH_SECTIONS.items():
        present = [s for s in weights if s in subsets]
        total = sum(weights[s] for s in present)
        sections[section] = (
            sum(subsets[s] * weights[s] for s in present) / total if present else None
        )
    scores = list(sections.values())
    overall = None if None in scores else sum(scores) / len(scores)
    return (
        {"rewardbench": overall}
        | {f"rewardbench_{name}": v for name, v in sections.items()}
        | {"rewardbench_subsets": subsets}
    )


# ---------------------------------------------------------------------------------------------
# answers


def majority_vote(answers: list[str | None]) -> str | None:
    """The most frequent parseable answer, in its normalised form (``normalize_answer``), so
    "43" and "43." are one vote; ties go to the answer seen first; None when none parsed."""
    counts = Counter(normalize_answer(a) for a in answers if a is not None)
    return counts.most_common(1)[0][0] if counts else None


def accuracy(pred: list, gold: list) -> float:
    """Share of positions where the prediction equals the gold value (``==``).

    Compare answers after normalising them (``majority_vote`` already returns normalised
    answers; ``srlm.core.parsing.answers_match`` compares numbers by value), or pass the
    per-item correctness as ``pred`` and ``[True] * n`` as ``gold``.
    """
    if len(pred) != len(gold):
        raise ValueError(f"{len(pred)} predictions for {len(gold)} gold values")
    if not pred:
        raise ValueError("accuracy of no predictions is undefined")
    return sum(p == g for p, g in zip(pred, gold, strict=True)) / len(pred)
