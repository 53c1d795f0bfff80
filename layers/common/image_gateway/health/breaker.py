"""The circuit breaker's rules: pure functions from a stored circuit to the next one.

closed --N counted failures within the window--> open --cool-down ends--> half-open
half-open --the trial call (one caller, claimed by a conditional write)--> closed | open

- Only calls that reached a provider count, and only its own failures: the retryable ones
  (5xx, 429, timeouts, connection errors) and answers that break its documentation
  (``provider_bad_response``). Moderation refusals and invalid input are the request's fault,
  never the provider's: they are not counted (a trial they answer closes the breaker: the
  provider answered).
- A success while closed starts the count again; a success of the trial closes the breaker, a
  failure of the trial opens it for another cool-down.
- A call that started before the breaker opened (``ticket`` ``closed``) changes only the recent
  success rate when it ends; a ``forced`` call (every candidate was open) closes it on success.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from image_gateway.health.circuit import Circuit, CircuitState

Ticket = Literal["closed", "trial", "forced"]
"""How a call was let through: the breaker was closed, it is the half-open trial, or every
candidate was open and this provider's cool-down ends first."""
Outcome = Literal["success", "failure", "neutral"]
"""What a call said about the provider: worked, failed (counted), or neither (not counted)."""


@dataclass(frozen=True)
class BreakerPolicy:
    """One provider's thresholds, in the stack's seconds (already time-scaled)."""

    failures: int
    window_seconds: float
    cooldown_seconds: float
    recent_calls: int


def phase(circuit: Circuit, now: float) -> CircuitState:
    """The breaker as callers see it at ``now`` (an open one past its cool-down is half-open)."""
    if circuit.state is CircuitState.CLOSED:
        return CircuitState.CLOSED
    if circuit.state is CircuitState.OPEN and now < (circuit.open_until or 0.0):
        return CircuitState.OPEN
    return CircuitState.HALF_OPEN


def trial_free(circuit: Circuit, now: float) -> bool:
    """Half-open with no trial in flight (none claimed yet, or its holder's lease ran out)."""
    if phase(circuit, now) is not CircuitState.HALF_OPEN:
        return False
    return circuit.state is CircuitState.OPEN or (circuit.trial_until or 0.0) <= now


def usable(circuit: Circuit, now: float) -> bool:
    """Whether a call may go to the provider now: closed, or its trial is free to take."""
    return phase(circuit, now) is CircuitState.CLOSED or trial_free(circuit, now)


def reopens_at(circuit: Circuit) -> float:
    """When an unusable provider may be tried again (cool-down end, or the trial's lease)."""
    if circuit.state is CircuitState.HALF_OPEN:
        return circuit.trial_until or 0.0
    return circuit.open_until or 0.0


def by_health(names: list[str], circuits: dict[str, Circuit], now: float) -> list[str]:
    """``names`` with the usable ones first, in their order, then the others by when each may
    be tried again (soonest first). Nobody is dropped: with every breaker open, the provider
    whose cool-down ends first still gets the call rather than the task being stranded."""
    ready = [n for n in names if usable(circuits.get(n) or Circuit(n), now)]
    waiting = sorted((n for n in names if n not in ready), key=lambda n: reopens_at(circuits[n]))
    return ready + waiting


def admission(
    circuits: dict[str, Circuit], provider: str, fallbacks: list[str], now: float
) -> Ticket | None:
    """How a call to ``provider`` goes through, or None: skip it for the first of ``fallbacks``
    (a usable one, or one whose breaker reopens sooner)."""
    circuit = circuits.get(provider) or Circuit(provider)
    if phase(circuit, now) is CircuitState.CLOSED:
        return "closed"
    if trial_free(circuit, now):
        return "trial"
    ordered = by_health([provider, *fallbacks], circuits, now)
    return "forced" if ordered[0] == provider else None


def claim_trial(circuit: Circuit, holder: str, now: float, lease_seconds: float) -> Circuit | None:
    """The circuit with ``holder``'s trial claimed, or None when the trial is not free."""
    if not trial_free(circuit, now):
        return None
    return replace(
        circuit,
        state=CircuitState.HALF_OPEN,
        trial_holder=holder,
        trial_until=now + lease_seconds,
        changed_at=now,
        version=circuit.version + 1,
    )


def release_trial(circuit: Circuit, holder: str, now: float) -> Circuit | None:
    """Give the trial back without a verdict (the call never reached the provider); None when
    ``holder`` does not hold it."""
    if circuit.state is not CircuitState.HALF_OPEN or circuit.trial_holder != holder:
        return None
    return replace(
        circuit,
        state=CircuitState.OPEN,
        open_until=now,
        trial_holder=None,
        trial_until=None,
        version=circuit.version + 1,
    )


def after_call(
    circuit: Circuit,
    outcome: Outcome,
    *,
    ticket: Ticket,
    holder: str,
    policy: BreakerPolicy,
    now: float,
) -> Circuit:
    """The circuit after one call ended with ``outcome`` (equal to ``circuit`` apart from its
    version when nothing changed: the caller then writes nothing)."""
    trial = (
        ticket == "trial"
        and circuit.state is CircuitState.HALF_OPEN
        and circuit.trial_holder == holder
    )
    mark = {"success": "S", "failure": "F"}.get(outcome, "")
    recent = (circuit.recent + mark)[-policy.recent_calls :] if mark else circuit.recent
    changed = replace(circuit, recent=recent, version=circuit.version + 1)
    closes = trial or (ticket == "forced" and circuit.state is not CircuitState.CLOSED)
    if outcome != "failure":
        if closes and (outcome == "success" or trial):
            return _closed(changed, now)
        if circuit.state is CircuitState.CLOSED and outcome == "success":
            return replace(changed, failures=())
        return changed
    if trial:
        return _opened(changed, policy, now)
    if circuit.state is not CircuitState.CLOSED:
        return changed
    failures = (*(t for t in circuit.failures if t > now - policy.window_seconds), now)
    if len(failures) >= policy.failures:
        return _opened(changed, policy, now)
    return replace(changed, failures=failures)


def _closed(circuit: Circuit, now: float) -> Circuit:
    return replace(
        circuit,
        state=CircuitState.CLOSED,
        failures=(),
        open_until=None,
        trial_holder=None,
        trial_until=None,
        changed_at=now,
    )


def _opened(circuit: Circuit, policy: BreakerPolicy, now: float) -> Circuit:
    return replace(
        circuit,
        state=CircuitState.OPEN,
        failures=(),
        open_until=now + policy.cooldown_seconds,
        trial_holder=None,
        trial_until=None,
        changed_at=now,
    )
