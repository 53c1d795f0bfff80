"""What each provider's recent calls measured: time to done and success rate, by operation and
resolution tier, over a rolling window. Pure rules; the store is ``health.ports.MeasurementStore``.

Design (docs/routing.md says the same):

- **Time buckets of counters.** A provider's figures for one operation and tier in one minute
  (``BUCKET_SECONDS``) are one small record of counters: ``answers`` (the image was made, or the
  provider answered with a moderation refusal or an invalid-input error: the request's fault,
  not the provider's), ``failures`` (retryable failures, answers that break its documentation,
  a deadline passed while it worked) and a fixed latency histogram (``LATENCY_BOUNDS``: one
  counter per bucket) of the made images' time to done; a second one of the same bounds holds
  the attempts' waits for one of the provider's slots (queueing at its concurrency limit).
  A finished task adds to one record per attempt with one atomic increment (no read, no
  condition: increments commute), so a task costs O(1) writes whatever the traffic.
- **The window** is the last ``WINDOW_SECONDS`` (15 minutes: 15 records per provider, operation
  and tier at most); a record is forgotten (TTL) a day after its minute. Reading the window is
  one query per provider over its current records only (the sort key starts with the minute).
- **p50 / p90** are read from the summed histogram: the bucket holding the quantile, linearly
  interpolated within it (at most one bucket's width off; the buckets are ~1.5x apart).
- **Who writes**: the writer that won a task's terminal status (``service.lifecycle``), once
  per task, for each of its provider attempts; a cancelled attempt says nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from image_gateway.models.request import Operation, Resolution

BUCKET_SECONDS = 60
"""One record per provider, operation, tier and minute."""
WINDOW_SECONDS = 900
"""The rolling window routing reads: the last 15 minutes."""
WINDOW_LABEL = "15m"
"""``WINDOW_SECONDS`` as ``GET /v1/providers`` names it."""
KEEP_SECONDS = 86400
"""A record is forgotten (TTL) this long after its minute."""
LATENCY_BOUNDS: tuple[float, ...] = (
    0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.5, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0,
    45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0,
)  # fmt: skip
"""Upper bounds (seconds) of the latency histogram's buckets; one more bucket holds the rest."""
HISTOGRAM_SIZE = len(LATENCY_BOUNDS) + 1

NOT_THE_PROVIDERS_FAULT = frozenset({"provider_disabled", "provider_key_missing"})
"""Our own configuration: the provider was never called (nothing measured)."""


@dataclass(frozen=True)
class Sample:
    """One provider attempt's verdict: an answer (with its time to done when it made the image)
    or a failure."""

    provider: str
    operation: Operation
    tier: Resolution
    at: float = field(metadata={"doc": "epoch seconds when the attempt ended"})
    answered: bool
    seconds: float | None = None
    slot_wait_seconds: float | None = None
    """How long the attempt waited for one of the provider's slots (None: not known)."""


@dataclass(frozen=True)
class Bucket:
    """One stored record: a provider's counters for one operation, tier and minute."""

    provider: str
    operation: Operation
    tier: Resolution
    start: int
    answers: int = 0
    failures: int = 0
    latency: tuple[int, ...] = (0,) * HISTOGRAM_SIZE
    slot_wait: tuple[int, ...] = (0,) * HISTOGRAM_SIZE
    """The same histogram of the attempts' waits for a provider slot."""


@dataclass(frozen=True)
class Measured:
    """A provider's figures over the window (the sum of its records)."""

    samples: int
    success_rate: float | None
    latency_p50_seconds: float | None
    latency_p90_seconds: float | None
    latencies: int
    window: str = WINDOW_LABEL
    slot_wait_p50_seconds: float | None = None
    slot_wait_p90_seconds: float | None = None


def bucket_start(at: float) -> int:
    """The minute (epoch seconds) a moment falls in."""
    return int(at // BUCKET_SECONDS) * BUCKET_SECONDS


def window_start(now: float) -> int:
    """The first minute of the window that ends at ``now``."""
    return bucket_start(now - WINDOW_SECONDS + BUCKET_SECONDS)


def latency_bucket(seconds: float) -> int:
    """The histogram bucket of a time to done."""
    for index, bound in enumerate(LATENCY_BOUNDS):
        if seconds <= bound:
            return index
    return len(LATENCY_BOUNDS)


def quantile(histogram: tuple[int, ...] | list[int], q: float) -> float | None:
    """The ``q`` quantile read from a histogram (None when empty), interpolated in its bucket."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            lower = LATENCY_BOUNDS[index - 1] if index > 0 else 0.0
            if index == len(LATENCY_BOUNDS):  # past the last bound: its lower edge
                return lower
            upper = LATENCY_BOUNDS[index]
            return round(lower + (upper - lower) * max(rank - seen, 0.0) / count, 3)
        seen += count
    return LATENCY_BOUNDS[-1]  # pragma: no cover - the loop always reaches the rank


def summarise(buckets: list[Bucket]) -> Measured:
    """Sum records (of one provider, any mix of operations and tiers) into its figures."""
    answers = sum(b.answers for b in buckets)
    failures = sum(b.failures for b in buckets)
    histogram = [sum(b.latency[i] for b in buckets) for i in range(HISTOGRAM_SIZE)]
    waits = [sum(b.slot_wait[i] for b in buckets) for i in range(HISTOGRAM_SIZE)]
    samples = answers + failures
    return Measured(
        samples=samples,
        success_rate=round(answers / samples, 4) if samples else None,
        latency_p50_seconds=quantile(histogram, 0.5),
        latency_p90_seconds=quantile(histogram, 0.9),
        latencies=sum(histogram),
        slot_wait_p50_seconds=quantile(waits, 0.5),
        slot_wait_p90_seconds=quantile(waits, 0.9),
    )


def verdict(outcome: str, error_code: str | None, retryable: bool) -> bool | None:
    """What an attempt's end says about its provider, as its breaker counts it: True an answer
    (the image, or a non-retryable refusal: moderation, invalid input), False a failure (a
    retryable one, an answer that breaks its documentation, its deadline passed), None nothing
    (cancelled, our own configuration, still running)."""
    if outcome == "completed":
        return True
    if outcome == "expired":
        return False
    if outcome != "failed" or error_code in NOT_THE_PROVIDERS_FAULT:
        return None
    return not (retryable or error_code == "provider_bad_response")


def seconds_between(start: datetime, end: datetime | None) -> float | None:
    """Seconds from ``start`` to ``end`` (None without an end or if the clock went back)."""
    if end is None:
        return None
    seconds = (end - start).total_seconds()
    return seconds if seconds >= 0 and math.isfinite(seconds) else None
