"""Percentiles of latencies, the two ways the reports have always computed them."""

from __future__ import annotations

import math
from collections.abc import Sequence


def quantile(xs: Sequence[float], q: float) -> float:
    """The value at index int(q * n) of the sorted values (q in 0..1), 0.0 for none."""
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(q * len(ys)))] if ys else 0.0


def nearest_rank(xs: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile (pct in 0..100), 0.0 for none."""
    if not xs:
        return 0.0
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, math.ceil(pct / 100 * len(ys)) - 1))]
