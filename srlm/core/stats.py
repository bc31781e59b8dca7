"""Small statistics shared by the stages' reports."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def is_number(value: Any) -> bool:
    """A finite real number: JSON's true/false are bools, which Python counts as ints, and
    NaN and Infinity parse as floats."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def mean(xs: Iterable) -> float | None:
    """Mean of the values that are not None; None when there are none (nothing was measured)."""
    vals = [float(x) for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None
