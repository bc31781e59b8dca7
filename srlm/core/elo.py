"""Bradley-Terry (Elo) ratings fitted by maximum likelihood from pairwise battles.

TPO (App. B) and Meta-Rewarding turn pairwise judgements into one rating per
sample by maximising ``sum_mn B[m, n] * log sigmoid(eps_m - eps_n)``, where
``B[m, n]`` counts how often m beat n.

Ratings are in natural-log (logit) units: ``sigmoid(eps_m - eps_n)`` is the
fitted probability that m beats n. Multiply by ``400 / ln(10)`` (about 173.7)
to get chess-style Elo points. Only differences are identified, so ratings are
returned centred to mean 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["battle_matrix", "fit_elo"]

# Why 1e-3: one battle adds at most 1/4 to the log-likelihood's curvature, so
# this prior weighs as much as ~0.004 of a battle against a 0-rated opponent.
# It moves the ratings of samples with both wins and losses by about 1e-3
# nats, yet gives an undefeated (or winless) sample a finite rating (one
# unanswered win gives a gap of about 5.8) instead of one that grows without bound.
DEFAULT_L2 = 1e-3


def battle_matrix(
    outcomes: Sequence[tuple[int, int, str | None]],
    k: int,
    weights: Sequence[float] | None = None,
    tie_weight: float = 0.5,
) -> np.ndarray:
    """Build the K x K battle matrix ``B[m, n]`` = (weighted) wins of m over n.

    Each outcome ``(i, j, winner)`` is one judged comparison of sample i (shown
    first) against sample j (shown second); ``winner`` is "first", "second",
    "tie" or None. Judging both orders gives two outcomes, ``(m, n, .)`` and
    ``(n, m, .)``, which is TPO's ``B_mn = 1[r^mn = 1] + 1[r^nm = -1]``.

    A tie adds ``tie_weight`` (default half a win) to both samples; None (an
    unparseable judgement) adds nothing. TPO's and Meta-Rewarding's indicator
    formulas count ties as nothing: pass ``tie_weight=0`` to follow them
    literally.

    ``weights`` multiplies each outcome; Meta-Rewarding passes omega_1 for
    outcomes won in first position and omega_2 for those won in second position
    (see :func:`srlm.core.selection.meta_judge_weights`).
    """
    if weights is not None and len(weights) != len(outcomes):
        raise ValueError(f"{len(weights)} weights for {len(outcomes)} outcomes")
    battles = np.zeros((k, k), dtype=np.float64)
    for idx, (i, j, winner) in enumerate(outcomes):
        if i == j:
            raise ValueError(f"sample {i} cannot battle itself")
        w = 1.0 if weights is None else float(weights[idx])
        if winner == "first":
            battles[i, j] += w
        elif winner == "second":
            battles[j, i] += w
        elif winner == "tie":
            battles[i, j] += tie_weight * w
            battles[j, i] += tie_weight * w
        elif winner is not None:
            raise ValueError(f"winner must be 'first', 'second', 'tie' or None, got {winner!r}")
    return battles


def fit_elo(
    battles: np.ndarray,
    iters: int = 100,
    l2: float = DEFAULT_L2,
    tol: float = 1e-10,
) -> np.ndarray:
    """Fit Bradley-Terry ratings: ``argmax_eps sum B[m,n] log sigmoid(eps_m - eps_n) - l2/2 |eps|^2``.

    ``battles[m, n]`` is the (possibly fractional) number of wins of m over n;
    the diagonal is ignored. Returns ratings centred to mean 0 in natural-log
    units (see the module docstring).

    The objective is concave, so Newton's method with step halving converges
    from zero, deterministically, usually in under 20 steps. With ``l2=0`` a
    sample that never lost (or never won) has no finite maximum; its rating
    then just grows with ``iters``.
    """
    b = np.array(battles, dtype=np.float64)
    if b.ndim != 2 or b.shape[0] != b.shape[1]:
        raise ValueError(f"battles must be a square matrix, got shape {b.shape}")
    if (b < 0).any() or not np.isfinite(b).all():
        raise ValueError("battles must be finite and non-negative")
    np.fill_diagonal(b, 0.0)
    games = b + b.T
    wins = b.sum(axis=1)

    def objective(eps: np.ndarray) -> float:
        diff = eps[:, None] - eps[None, :]
        return float(-(b * np.logaddexp(0.0, -diff)).sum() - 0.5 * l2 * eps @ eps)

    eps = np.zeros(b.shape[0])
    value = objective(eps)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(eps[:, None] - eps[None, :])))  # P(m beats n)
        grad = wins - (games * p).sum(axis=1) - l2 * eps
        if np.abs(grad).max() < tol:
            break
        w = games * p * (1.0 - p)
        hessian = w - np.diag(w.sum(axis=1)) - l2 * np.eye(len(eps))
        # lstsq, not solve: with l2=0 the Hessian is singular along "shift all
        # ratings", and the minimum-norm step simply leaves that direction alone.
        step = np.linalg.lstsq(hessian, -grad, rcond=None)[0]
        t = 1.0
        while t > 1e-8:
            candidate = eps + t * step
            candidate_value = objective(candidate)
            if candidate_value >= value:
                break
            t *= 0.5
        else:
            break  # no ascent possible any more: converged to float precision
        eps, value = candidate, candidate_value
    return eps - eps.mean()
