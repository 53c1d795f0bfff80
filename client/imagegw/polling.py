"""When to look at a task again: a backoff that honours the provider's expected latency.

The gateway tells, per task, how long its provider typically takes for the request
(``expected_seconds``, time-scaled on devstack). Before that much time has passed since the
provider got the task, a look every fifth of it (0.25-5 s) is enough to show the status
changes, and the wait ends exactly at the expected time; after it, the image is due, so the
look comes soon (a tenth of it, 0.25-2 s) and backs off x1.5 per look, up to 15 s. Without an
expected latency (an older gateway), looks start at 0.5 s and back off the same way. No wait
goes past the caller's deadline.

    expected 30 s:  5 5 5 5 5 5 | 2 3 4.5 6.75 10.1 15 15 ...
    expected 0.6 s: 0.25 0.25 0.1 | 0.25 0.375 0.56 ...
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """The polling policy of ``Task.wait`` (and the console's, which copies it)."""

    early_fraction: float = 0.2
    """Before the expected latency: look every this fraction of it ..."""
    early_min: float = 0.25
    early_max: float = 5.0
    """... bounded to this range of seconds."""
    late_fraction: float = 0.1
    """After it: the first look comes after this fraction of it ..."""
    late_min: float = 0.25
    late_max: float = 2.0
    """... bounded to this range ..."""
    factor: float = 1.5
    """... and each next look waits this much longer ..."""
    max_delay: float = 15.0
    """... up to this many seconds."""
    unknown_first: float = 0.5
    """The first wait when the expected latency is unknown."""
    max_errors: int = 5
    """Transient errors (no answer, 429, 5xx) in a row that a wait rides out before raising."""

    def delay(self, *, elapsed: float, expected: float | None, late_looks: int) -> float:
        """Seconds to sleep before the next look.

        ``elapsed`` is the time since the provider got the task (or since it was created),
        ``late_looks`` how many looks were made after the expected latency had passed.
        """
        if expected is not None and expected > 0 and elapsed < expected:
            step = _clamp(expected * self.early_fraction, self.early_min, self.early_max)
            return max(0.05, min(step, expected - elapsed))
        if expected is not None and expected > 0:
            first = _clamp(expected * self.late_fraction, self.late_min, self.late_max)
        else:
            first = self.unknown_first
        return float(min(self.max_delay, first * self.factor**late_looks))


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


DEFAULT_BACKOFF = Backoff()
