"""dispatch_hedge: start a task's hedge, from its delayed dispatch-queue message
(``{"task_id", "provider", "hedge": true}``, queued by ``service.hedging.schedule_hedge`` when
the task's provider took it). The rules are ``health.hedging``'s; docs/routing.md says the same.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from image_gateway.errors import ProviderError
from image_gateway.health.circuit import Circuit, CircuitState
from image_gateway.health.hedging import (
    first_started,
    hedge_accepted,
    hedge_due,
    open_hedge,
    start_hedge,
)
from image_gateway.log_context import working_on
from image_gateway.models.task import FinishPath, ProviderAttempt, Task, utc_now
from image_gateway.ports import Dependencies
from image_gateway.providers.base import Mode
from image_gateway.service.dispatch import call_timeout
from image_gateway.service.handoff import after_failure, callback_url
from image_gateway.service.health import Gate, read_circuits, record_call, release
from image_gateway.service.hedging import end_hedge
from image_gateway.service.refresh import finalize_success
from image_gateway.service.routing import Candidate, qualify
from image_gateway.service.staging import input_opener, provider_inputs

logger = Logger(child=True)


def dispatch_hedge(deps: Dependencies, task_id: str, provider: str) -> Task | None:
    """Start the hedge of ``task_id`` at ``provider`` (``service.hedging``), if the task is
    still with its first provider; the task afterwards (None if unknown).

    A hedge is an extra: a provider that cannot honour the request, whose breaker is not
    closed, or that is at its concurrency limit is not hedged with (no waiting: the hedge
    exists to save time). Its failure closes its attempt and leaves the task to its first
    provider. Raises :class:`RetryLater` like :func:`dispatch` for our own side's failures.
    """
    task = deps.tasks.get(task_id)
    if task is None:
        return None
    working_on(task.task_id, task.request_id)
    if not hedge_due(task, provider):
        logger.info("hedge: nothing to do", extra={"status": task.status, "hedge": provider})
        return task
    usable = qualify(deps, [provider], task.request)[0]
    circuit = read_circuits(deps).get(provider) or Circuit(provider)
    if not usable or circuit.state is not CircuitState.CLOSED:
        logger.info("hedge skipped: provider unusable now", extra={"hedge": provider})
        return task
    candidate = usable[0]
    as_hedge = task.model_copy(update={"provider": provider})
    lease = call_timeout(deps, candidate, task) + deps.timing.slot_lease_margin_seconds
    slot = deps.slots.acquire(
        provider, task_id, limit=deps.directory.concurrency(provider), lease_seconds=lease
    )
    if slot is None:
        deps.metrics.put("HedgesSkipped", 1, "Count", {"Provider": provider})
        logger.info("hedge skipped: provider at its concurrency limit", extra={"hedge": provider})
        return task
    gate = Gate(provider, task_id, "closed", circuit)
    try:
        sync = candidate.provider.mode(task.request) is Mode.SYNC
        elapsed = (utc_now() - first_started(task)).total_seconds()
        attempt = ProviderAttempt(
            provider=provider,
            at=utc_now(),
            outcome="submitted",
            hedge=True,
            note=f"hedge: {task.provider} had not finished {elapsed:.1f} s after its dispatch",
            path="sync" if sync else None,
            size_sent=candidate.plan.sent,
        )
        started = deps.tasks.update(task_id, lambda t: _start(t, provider, attempt))
        if not hedge_due_started(started, provider):
            return started  # ended, or another delivery started it
        deps.metrics.put("HedgesStarted", 1, "Count", {"Provider": provider})
        if sync:
            return _hedge_sync(deps, as_hedge, candidate, gate, attempt)
        return _hedge_create(deps, as_hedge, candidate, gate)
    finally:
        release(deps, gate)
        deps.slots.release(slot)


def _start(task: Task, provider: str, attempt: ProviderAttempt) -> None:
    if hedge_due(task, provider):
        start_hedge(task, attempt)


def hedge_due_started(task: Task, provider: str) -> bool:
    """Whether the hedge at ``provider`` is open and not yet called (this delivery's to make)."""
    hedge = open_hedge(task)
    return hedge is not None and hedge.provider == provider


def _hedge_create(deps: Dependencies, as_hedge: Task, candidate: Candidate, gate: Gate) -> Task:
    provider = candidate.provider
    url = callback_url(deps, as_hedge, candidate)
    try:
        provider_task_id = deps.providers.client(provider.name).create(
            as_hedge.request, provider_inputs(deps, as_hedge.request), url
        )
    except ProviderError as error:
        record_call(deps, gate, error)
        return _hedge_failed(deps, as_hedge.task_id, as_hedge.provider, error)
    record_call(deps, gate, None)
    path: FinishPath = "callback" if url else "poll"
    changes: dict[str, object] = {
        "provider_task_id": provider_task_id,
        "path": path,
        "cost_estimate_usd": deps.directory.estimate(
            provider.name, as_hedge.request, candidate.plan
        ),
    }
    task = deps.tasks.update(as_hedge.task_id, lambda t: hedge_accepted(t, provider.name, changes))
    if url is None and not task.status.terminal:
        expected = provider.expected_latency_seconds(task.request)
        first_wait = max(1, round(deps.settings.scaled(expected)))
        deps.poll_loops.start(task.task_id, first_wait, hedge=True)
    logger.info("hedge handed to provider", extra={"hedge": provider.name, "path": path})
    return task


def _hedge_sync(
    deps: Dependencies,
    as_hedge: Task,
    candidate: Candidate,
    gate: Gate,
    attempt: ProviderAttempt,
) -> Task:
    provider = candidate.provider.name
    cost = deps.directory.estimate(provider, as_hedge.request, candidate.plan)
    deps.tasks.update(
        as_hedge.task_id,
        lambda t: hedge_accepted(t, provider, {"path": "sync", "cost_estimate_usd": cost}),
    )
    try:
        status = deps.providers.client(provider).run_sync(
            as_hedge.request,
            provider_inputs(deps, as_hedge.request),
            input_opener(deps, as_hedge.request),
        )
    except ProviderError as error:
        record_call(deps, gate, error)
        return _hedge_failed(deps, as_hedge.task_id, as_hedge.provider, error)
    record_call(deps, gate, None)
    with status:
        current = deps.tasks.require(as_hedge.task_id)
        hedge = next((a for a in current.attempts if a.hedge and a.provider == provider), attempt)
        if current.status.terminal or hedge.outcome != "submitted":
            logger.info("hedge result discarded: the task ended meanwhile")
            return current
        return finalize_success(deps, current, status.images, by="dispatch", attempt=hedge)


def _hedge_failed(deps: Dependencies, task_id: str, provider: str, error: ProviderError) -> Task:
    """A hedge's call failed: its attempt is closed; if it had become the task's own attempt
    (the first provider failed meanwhile), the failure takes the ordinary course."""
    task = deps.tasks.require(task_id)
    if provider == task.provider and not task.status.terminal:
        return after_failure(deps, task, error)
    return end_hedge(deps, task_id, provider, error)
