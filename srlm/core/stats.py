"""Small statistics shared by the stages' reports."""

from __future__ import annotations

from collections.abc import Iterable


def mean(xs: Iterable) -> float | None:
    """Mean of the values that are not None; None when there are none (nothing was measured)."""
    vals = [float(x) for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None
