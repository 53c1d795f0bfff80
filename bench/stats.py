"""Small statistics: medians with their spread, percentiles, ratios to a baseline."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(samples: Sequence[float]) -> dict[str, Any]:
    """Median and spread (interquartile range, min, max) of repeated measurements."""
    return {
        "median": statistics.median(samples),
        "p25": percentile(samples, 25),
        "p75": percentile(samples, 75),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


def spread_text(s: dict[str, Any], fmt: str = "{:.1f}") -> str:
    """``median (p25-p75)`` for a table cell."""
    return f"{fmt.format(s['median'])} ({fmt.format(s['p25'])}-{fmt.format(s['p75'])})"
