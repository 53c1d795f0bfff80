"""A provider's circuit as stored: a value with no rules and no imports of the gateway, so the
breaker's rules (:mod:`image_gateway.health.breaker`), its ports and the models that show it
all stand on it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CircuitState(StrEnum):
    """A provider's breaker: ``closed`` (calls go through), ``open`` (calls are skipped until
    the cool-down ends), ``half_open`` (one trial call decides)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Circuit:
    """One provider's breaker as stored; times are epoch seconds.

    ``state`` is what was written: ``open`` stays stored after its cool-down ended (the breaker
    is then half-open for everyone, see :func:`image_gateway.health.breaker.phase`) until a
    caller claims the trial, which stores ``half_open`` with ``trial_holder``.
    """

    provider: str
    state: CircuitState = CircuitState.CLOSED
    failures: tuple[float, ...] = ()
    """When each counted failure of the current window happened (closed breakers only)."""
    open_until: float | None = None
    """The end of the cool-down (open)."""
    trial_holder: str | None = None
    """The task whose call is the trial (half-open)."""
    trial_until: float | None = None
    """The trial's lease: a holder that crashed frees it then."""
    recent: str = ""
    """The last calls' outcomes, oldest first: ``S`` (success) or ``F`` (counted failure)."""
    changed_at: float | None = None
    """When ``state`` last changed."""
    version: int = 0
    """0: never stored; each write adds one (the conditional write's guard)."""

    @property
    def success_rate(self) -> float | None:
        """Successes over the recent calls (None without any)."""
        return round(self.recent.count("S") / len(self.recent), 3) if self.recent else None
