"""Provider health in the flows: which providers routing prefers, whether a call may go to a
provider now, and what each call's outcome does to its circuit breaker.

The rules are :mod:`image_gateway.health.breaker`'s; this module reads and writes the circuits
(``deps.health``), and announces a change of state (a ``Provider Circuit Changed`` event and
the ``ProviderCircuitChanged`` metric) only from the writer whose conditional write won it.

Cost: a routing decision (a submit, a dispatch) reads every provider's circuit with one request
(:func:`read_circuits`); a call writes its provider's circuit only when something changed (a
healthy provider's steady successes change nothing once its recent calls are all successes).

Measurements (:mod:`image_gateway.health.measure`): the writer that won a task's terminal
status counts each of its attempts once (:func:`record_measurements`, one atomic increment
each); a routing decision that needs them reads one query per candidate provider
(:func:`measured`), and the default ``order`` policy reads none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from aws_lambda_powertools import Logger

from image_gateway.errors import ProviderError
from image_gateway.health.breaker import (
    BreakerPolicy,
    Outcome,
    Ticket,
    admission,
    after_call,
    by_health,
    claim_trial,
    release_trial,
    usable,
)
from image_gateway.health.circuit import Circuit, CircuitState
from image_gateway.health.measure import (
    Bucket,
    Measured,
    Sample,
    seconds_between,
    summarise,
    verdict,
    window_start,
)
from image_gateway.models.request import Operation, Resolution
from image_gateway.models.task import Task
from image_gateway.ports import Dependencies, EventPublishError

logger = Logger(child=True)

_NOT_THE_PROVIDERS_FAULT = frozenset({"provider_disabled", "provider_key_missing"})
_WRITE_ATTEMPTS = 3
_KEEP_SECONDS = 86400.0  # an idle provider's record is forgotten (TTL) a day after its last write


def counts_against(error: ProviderError) -> bool:
    """Whether a failed call counts against the provider's health: its retryable failures and
    its answers that break its own documentation; never moderation or invalid input, nor our
    own configuration (disabled, no key)."""
    if error.code in _NOT_THE_PROVIDERS_FAULT:
        return False
    return error.retryable or error.code == "provider_bad_response"


def policy_for(deps: Dependencies, provider: str) -> BreakerPolicy:
    """The provider's thresholds: the providers parameter's, else the timing policy's, scaled."""
    configured = deps.directory.breaker(provider)
    timing = deps.timing
    return BreakerPolicy(
        failures=configured.failures or timing.breaker_failures,
        window_seconds=deps.settings.scaled(
            configured.window_seconds or timing.breaker_window_seconds
        ),
        cooldown_seconds=deps.settings.scaled(
            configured.cooldown_seconds or timing.breaker_cooldown_seconds
        ),
        recent_calls=timing.breaker_recent_calls,
    )


def read_circuits(deps: Dependencies) -> dict[str, Circuit]:
    """Every provider's circuit: the one read of a routing decision."""
    return deps.health.circuits.all()


def order_by_health(
    deps: Dependencies, names: list[str], circuits: dict[str, Circuit] | None = None
) -> list[str]:
    """``names`` with providers whose breaker lets a call through first (see ``by_health``)."""
    if len(names) < 2:  # nothing to reorder: no read
        return names
    found = read_circuits(deps) if circuits is None else circuits
    return by_health(names, found, deps.health.now())


def record_measurements(deps: Dependencies, task: Task) -> int:
    """Count each attempt of a task that just ended in its provider's measurements (only the
    winning writer of the terminal status calls this); the number of samples written. A store
    failure is logged, never raised: the task has ended whatever routing learns from it."""
    tier, now, written = task.request.tier(), deps.health.now(), 0
    for attempt in task.attempts:
        error = attempt.error
        answered = verdict(
            attempt.outcome, error.code if error else None, error.retryable if error else False
        )
        if answered is None:
            continue
        seconds = (
            seconds_between(attempt.at, attempt.finished_at)
            if attempt.outcome == "completed"
            else None
        )
        sample = Sample(
            attempt.provider,
            task.operation,
            tier,
            now,
            answered,
            seconds,
            slot_wait_seconds=attempt.slot_wait_seconds,
        )
        _emit(deps, sample)
        try:
            deps.health.measurements.add(sample)
        except Exception:  # routing loses one sample; the task is unaffected
            logger.exception("measurement not recorded", extra={"task_id": task.task_id})
            continue
        written += 1
    return written


def _emit(deps: Dependencies, sample: Sample) -> None:
    """The dashboard's view of one sample (per provider only: few series): answered as 1 or 0
    (its average is the success rate), time to done and slot wait."""
    provider = {"Provider": sample.provider}
    deps.metrics.put("ProviderAttemptAnswered", int(sample.answered), "Count", provider)
    if sample.seconds is not None:
        deps.metrics.put("ProviderAttemptSeconds", sample.seconds, "Seconds", provider)
    if sample.slot_wait_seconds is not None:
        deps.metrics.put("ProviderSlotWaitSeconds", sample.slot_wait_seconds, "Seconds", provider)


def measured(
    deps: Dependencies,
    provider: str,
    *,
    operation: Operation | None = None,
    tier: Resolution | None = None,
) -> Measured:
    """A provider's figures over the window, for one operation and tier or (None) all."""
    buckets = deps.health.measurements.window(provider, window_start(deps.health.now()))
    return summarise(
        [
            b
            for b in buckets
            if (operation is None or b.operation is operation) and (tier is None or b.tier == tier)
        ]
    )


def measured_by_tier(deps: Dependencies, provider: str) -> tuple[Measured, list[Bucket]]:
    """A provider's figures over the window (every operation and tier) and its records."""
    buckets = deps.health.measurements.window(provider, window_start(deps.health.now()))
    return summarise(buckets), buckets


@dataclass
class Gate:
    """A call let through to ``provider`` for ``holder`` (a task), and how."""

    provider: str
    holder: str
    ticket: Ticket
    circuit: Circuit
    recorded: bool = False


def admit(
    deps: Dependencies,
    task: Task,
    circuits: dict[str, Circuit],
    fallbacks: Callable[[], list[str]],
    lease_seconds: float,
) -> Gate | None:
    """Let the call of ``task`` to its provider through, or None: skip it for the next one.

    A half-open breaker's trial is claimed here (a conditional write: of concurrent callers one
    wins, the others skip or, with every fallback open too, call anyway). ``fallbacks`` gives
    the providers left to the task, usable for its request, asked only when needed.
    """
    provider, now = task.provider, deps.health.now()
    circuit = circuits.get(provider) or Circuit(provider)
    left = [] if usable(circuit, now) else fallbacks()
    ticket = admission(circuits, provider, left, now)
    if ticket == "trial":
        won = _change(
            deps,
            circuit,
            lambda c: claim_trial(c, task.task_id, now, lease_seconds),
            task_id=task.task_id,
            reason="the cool-down ended: one trial call",
        )
        if won is None:  # another caller has the trial
            circuit = deps.health.circuits.get(provider)
            left = fallbacks()
            ticket = admission({**circuits, provider: circuit}, provider, left, now)
        else:
            circuit = won
    if ticket is None:
        logger.info("provider skipped: its breaker is open", extra={"task_id": task.task_id})
        return None
    return Gate(provider, task.task_id, ticket, circuit)


def record_call(deps: Dependencies, gate: Gate, error: ProviderError | None) -> None:
    """Count the call's outcome against its provider (``error`` None: it succeeded)."""
    if error is not None and error.code in _NOT_THE_PROVIDERS_FAULT:
        return  # the provider was never called: a trial is given back by ``release``
    gate.recorded = True
    outcome: Outcome = (
        "success" if error is None else "failure" if counts_against(error) else "neutral"
    )
    policy, now = policy_for(deps, gate.provider), deps.health.now()
    _change(
        deps,
        gate.circuit,
        lambda c: after_call(
            c, outcome, ticket=gate.ticket, holder=gate.holder, policy=policy, now=now
        ),
        task_id=gate.holder,
        reason=_reason(outcome, gate.ticket, policy, error),
    )


def release(deps: Dependencies, gate: Gate) -> None:
    """A trial that never reached the provider (crash of our own side): free it for another."""
    if gate.ticket == "trial" and not gate.recorded:
        now = deps.health.now()
        _change(deps, gate.circuit, lambda c: release_trial(c, gate.holder, now), announce=False)


def _reason(
    outcome: Outcome, ticket: Ticket, policy: BreakerPolicy, error: ProviderError | None
) -> str:
    code = error.code if error is not None else None
    if ticket == "trial":
        return (
            f"the trial call {'failed: ' + str(code) if outcome == 'failure' else 'went through'}"
        )
    if ticket == "forced":
        return "a call made while every candidate was open succeeded"
    return (
        f"{policy.failures} retryable failures within {policy.window_seconds:g} s "
        f"(the last: {code})"
    )


def _change(
    deps: Dependencies,
    circuit: Circuit,
    step: Callable[[Circuit], Circuit | None],
    *,
    task_id: str | None = None,
    reason: str = "",
    announce: bool = True,
) -> Circuit | None:
    """Apply ``step`` by a conditional write, reading again when another writer got there
    first; the circuit written (the one seen when nothing needed writing), None when ``step``
    refused or every attempt lost. A change of state is announced by its writer."""
    store = deps.health.circuits
    for _ in range(_WRITE_ATTEMPTS):
        after = step(circuit)
        if after is None:
            return None
        if replace(after, version=circuit.version) == circuit:
            return circuit  # nothing changed: nothing to write
        expires_at = max(deps.health.now(), after.open_until or 0, after.trial_until or 0)
        if store.put(after, expires_at=expires_at + _KEEP_SECONDS):
            if announce and after.state is not circuit.state:
                _announce(deps, circuit.state, after, reason=reason, task_id=task_id)
            return after
        circuit = store.get(circuit.provider)
    logger.warning("provider circuit not updated: contention", extra={"task_id": task_id})
    return None


def _announce(
    deps: Dependencies, before: CircuitState, after: Circuit, *, reason: str, task_id: str | None
) -> None:
    from image_gateway.models.circuits import (
        CircuitChangedDetail,  # a change is rare: not at import
    )

    detail = CircuitChangedDetail.of(before, after, reason=reason, task_id=task_id)
    logger.warning(
        "provider circuit changed",
        extra={"provider": after.provider, "state": after.state.value, "reason": reason},
    )
    deps.metrics.put(
        "ProviderCircuitChanged",
        1,
        "Count",
        {"Provider": after.provider, "State": after.state.value},
    )
    try:
        deps.health.events.publish(detail)
    except EventPublishError:  # the state is stored and the metric counted: log, go on
        logger.exception("Provider Circuit Changed event refused", extra={"task_id": task_id})
