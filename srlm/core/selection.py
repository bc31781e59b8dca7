"""Choosing preference pairs from the K scored samples of one prompt.

All functions work on one prompt's group of samples and return indices into it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "best_worst",
    "irpo_pairs",
    "length_controlled_scores",
    "meta_judge_weights",
    "meta_reward_band_pair",
    "standardize",
]


def standardize(xs: Sequence[float] | np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` over the group (population std, ddof=0).

    A group whose values are all equal carries no information, so it gives
    zeros rather than a division by zero (or by a rounding-error std).
    """
    x = np.asarray(xs, dtype=np.float64)
    if x.size == 0:
        return x
    std = x.std()
    if std <= 1e-12 * max(1.0, float(np.abs(x).max())):
        return np.zeros_like(x)
    return (x - x.mean()) / std


def length_controlled_scores(
    scores: Sequence[float] | np.ndarray,
    lengths: Sequence[float] | np.ndarray,
    rho: float,
) -> np.ndarray:
    """TPO's length-controlled score ``s = std(score) - rho * std(length)``.

    Both are standardised over the K samples of one prompt, so ``rho`` (TPO uses
    values in [0, 0.5]) trades a standard deviation of quality for one of length.
    ``scores`` may be judge rewards or Elo ratings.
    """
    if len(scores) != len(lengths):
        raise ValueError(f"{len(scores)} scores but {len(lengths)} lengths")
    return standardize(scores) - rho * standardize(lengths)


def _valid(scores: Sequence[float | None] | np.ndarray) -> list[int]:
    """Indices of scores that exist (None or NaN marks an unparseable judgement)."""
    return [i for i, s in enumerate(scores) if s is not None and not math.isnan(s)]


def best_worst(scores: Sequence[float | None] | np.ndarray) -> tuple[int, int] | None:
    """``(argmax, argmin)`` of the scores: the chosen and rejected sample.

    None (or NaN) scores are skipped. Returns None when fewer than two scores
    exist or all are equal: Self-Rewarding drops tied groups, there is no
    preference to learn. Among equal maxima (or minima) the lowest index wins,
    so the result is deterministic; sample order is random anyway.
    """
    valid = _valid(scores)
    if len(valid) < 2:
        return None
    best = max(valid, key=lambda i: (scores[i], -i))
    worst = min(valid, key=lambda i: (scores[i], i))
    if scores[best] == scores[worst]:
        return None
    return best, worst


def meta_reward_band_pair(
    scores: Sequence[float | None] | np.ndarray,
    lengths: Sequence[float] | np.ndarray,
    rho: float,
) -> tuple[int, int] | None:
    """Meta-Rewarding's length-controlled actor pair ``(chosen, rejected)``.

    chosen = the shortest sample with score >= (1-rho)*S_max + rho*S_min;
    rejected = the longest sample with score <= (1-rho)*S_min + rho*S_max.
    With rho = 0 this is plain best/worst. Among equally long candidates the
    chosen one is the higher-scored (the rejected one the lower-scored), then
    the lowest index.

    None scores (no valid judgement) are skipped. Returns None when fewer than
    two scores exist, all are equal, or the bands overlap (rho > 0.5) so that
    the pair would not be a preference: chosen == rejected or
    score(chosen) <= score(rejected).
    """
    if len(scores) != len(lengths):
        raise ValueError(f"{len(scores)} scores but {len(lengths)} lengths")
    valid = _valid(scores)
    if len(valid) < 2:
        return None
    s_max = max(scores[i] for i in valid)
    s_min = min(scores[i] for i in valid)
    if s_max == s_min:
        return None
    # The tolerance keeps S_max itself inside the top band despite rounding.
    eps = 1e-9 * max(1.0, abs(s_max), abs(s_min))
    top = [i for i in valid if scores[i] >= (1 - rho) * s_max + rho * s_min - eps]
    bottom = [i for i in valid if scores[i] <= (1 - rho) * s_min + rho * s_max + eps]
    chosen = min(top, key=lambda i: (lengths[i], -scores[i], i))
    rejected = min(bottom, key=lambda i: (-lengths[i], scores[i], i))
    if chosen == rejected or scores[chosen] <= scores[rejected]:
        return None
    return chosen, rejected


def irpo_pairs(winners: Sequence[int], losers: Sequence[int], k: int) -> list[tuple[int, int]]:
    """IRPO's K (winner, loser) pairs for one problem.

    IRPO walks the winner list G^w and the loser list G^l in parallel,
    restarting a list when it runs out: pair t is
    ``(winners[t % |G^w|], losers[t % |G^l|])``. When the list lengths share a
    factor, that walk comes back to its first pair after lcm(|G^w|, |G^l|)
    steps; from then on each new round shifts the loser list by one more
    place, which reaches every remaining combination without repeating one.
    So the first lcm pairs are exactly the paper's, no pair is emitted twice,
    and the result has ``min(k, |G^w| * |G^l|)`` pairs (never more than exist).

    Duplicate entries in the inputs are dropped first. Returns [] when either
    list is empty (IRPO skips the problem).
    """
    w = list(dict.fromkeys(winners))
    l_ = list(dict.fromkeys(losers))
    if not w or not l_ or k <= 0:
        return []
    cycle = math.lcm(len(w), len(l_))
    return [
        (w[t % len(w)], l_[(t + t // cycle) % len(l_)]) for t in range(min(k, len(w) * len(l_)))
    ]


def meta_judge_weights(first_wins: int, second_wins: int) -> tuple[float, float]:
    """Meta-Rewarding's position-debiasing weights ``(omega_1, omega_2)``.

    omega_1 = win_2nd / (win_1st + win_2nd) weighs wins in first position and
    omega_2 = win_1st / (win_1st + win_2nd) weighs wins in second position, so
    the position the meta-judge favours counts less, in proportion to how much
    it is favoured. The counts are taken over the battles being debiased (e.g.
    all meta-judge battles of one prompt). With no decided battles the weights
    are (0.5, 0.5).
    """
    if first_wins < 0 or second_wins < 0:
        raise ValueError("win counts must be non-negative")
    total = first_wins + second_wins
    if total == 0:
        return 0.5, 0.5
    return second_wins / total, first_wins / total
