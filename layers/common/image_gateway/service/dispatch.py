"""dispatch: one attempt at one provider, from the dispatch queue (every provider call is here).

``POST /v1/images`` only records the task (``queued``) and queues ``{"task_id", "provider"}``;
the dispatch function makes the call, within the provider's concurrency limit:
- an async provider gets its create call (with a callback URL where it takes one); the task
  becomes ``submitted`` and, without a callback, its poll loop starts;
- a sync provider gets its one long call; the task goes ``submitted`` -> ``running`` and is
  finalised like a callback would.
A retryable failure (5xx, 429, timeout, connection, a provider disabled meanwhile) queues an
attempt at the next provider left in ``task.fallbacks``; anything else fails the task. A
provider at its concurrency limit gets the attempt queued again later, each wait longer than
the last (jittered, capped: no requeue storm), and after ``provider_busy_spill_seconds`` of
waiting the attempt spills to the next provider in ``fallbacks``: a rate limit becomes
queueing, not failures. If the function dies mid-call, SQS delivers the message again;
after the queue's ``maxReceiveCount`` deliveries the dead-letter queue's record fails the task
(:func:`give_up`).

A redelivered message calls the provider again: a call that succeeded at the provider but
crashed before it was recorded may be paid twice. That is the price of not losing tasks.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

from aws_lambda_powertools import Logger

from image_gateway.errors import (
    DownloadFailed,
    InvalidImage,
    NotFound,
    PayloadTooLarge,
    ProviderError,
    Unprocessable,
    UnsafeUrl,
)
from image_gateway.health.circuit import Circuit
from image_gateway.log_context import working_on
from image_gateway.models.task import (
    ProviderAttempt,
    Task,
    TaskError,
    TaskStatus,
    utc_now,
)
from image_gateway.ports import Dependencies
from image_gateway.providers.base import Mode, ProviderState
from image_gateway.service.handoff import (
    after_failure,
    callback_url,
    queue_attempt,
    record_accepted,
)
from image_gateway.service.health import Gate, admit, read_circuits, record_call, release
from image_gateway.service.hedging import schedule_hedge
from image_gateway.service.lifecycle import change_status, fail_task
from image_gateway.service.refresh import RetryLater, count_download_failure, finalize_success
from image_gateway.service.routing import Candidate, qualify
from image_gateway.service.staging import input_opener, provider_inputs
from image_gateway.timing import TimingPolicy

logger = Logger(child=True)


def dispatch(
    deps: Dependencies, task_id: str, provider: str, *, known: Task | None = None
) -> Task | None:
    """Make the attempt of ``task_id`` at ``provider``; the task afterwards (None if unknown).

    ``known``: the task as the caller just wrote it (the OpenAI-compatible call, right after its
    submit), used instead of reading it again; every write of the attempt is conditional on the
    version it starts from, so a stale one is only read again.

    Raises :class:`RetryLater` for a transient failure of our own side (input or result
    download) so that SQS delivers the message again.
    """
    task = known if known is not None and known.task_id == task_id else deps.tasks.get(task_id)
    if task is None:
        logger.error("dispatch: unknown task", extra={"task_id": task_id})
        return None
    working_on(task.task_id, task.request_id)
    if not _attempt_due(task, provider):
        logger.info(  # finished, already taken, or handed to another provider: a stale message
            "dispatch: nothing to do",
            extra={"task_id": task_id, "status": task.status, "provider": task.provider},
        )
        return task
    circuits = read_circuits(deps)  # every breaker, one read: this decision and the fallback's
    usable, refusals, _ = qualify(deps, [provider], task.request)
    if not usable:  # disabled, or unable to honour it since submit: on to the next provider
        refusal = refusals[0] if refusals else None
        error = ProviderError(
            refusal.message if refusal else f"{provider} is disabled in this stack",
            provider=provider,
            retryable=True,
            code=refusal.code if refusal else "provider_disabled",
        )
        return after_failure(deps, task, error, circuits)
    candidate = usable[0]
    lease = call_timeout(deps, candidate, task) + deps.timing.slot_lease_margin_seconds
    gate = admit(
        deps,
        task,
        circuits,
        lambda: [c.provider.name for c in qualify(deps, task.fallbacks, task.request)[0]],
        lease,
    )
    if gate is None:  # its breaker is open and another provider is ready: go there, unpaid
        skipped = ProviderError(
            f"{provider} was skipped: its circuit breaker is open after repeated failures",
            provider=provider,
            retryable=True,
            code="provider_circuit_open",
        )
        return after_failure(deps, task, skipped, circuits)
    slot = deps.slots.acquire(
        provider, task_id, limit=deps.directory.concurrency(provider), lease_seconds=lease
    )
    if slot is None:  # the provider is at its concurrency limit: wait in the queue
        release(deps, gate)
        return _provider_busy(deps, task, provider, circuits)
    waited = max(0.0, (utc_now() - waiting_since(task)).total_seconds())  # queueing at slots
    try:
        if candidate.provider.mode(task.request) is Mode.SYNC:
            return _call_sync(deps, task, candidate, gate, waited)
        return _create(deps, task, candidate, gate, waited)
    finally:
        release(deps, gate)
        deps.slots.release(slot)


def _provider_busy(
    deps: Dependencies, task: Task, provider: str, circuits: dict[str, Circuit]
) -> Task:
    """Wait for a slot again later (a growing, jittered delay), or, once the attempt has waited
    ``provider_busy_spill_seconds``, move on to the next provider of the fallbacks."""
    timing = deps.timing
    waited = (utc_now() - waiting_since(task)).total_seconds()
    deps.metrics.put("ProviderSlotWaits", 1, "Count", {"Provider": provider})
    spill = waited >= deps.settings.scaled(timing.provider_busy_spill_seconds)
    if spill and qualify(deps, task.fallbacks, task.request)[0]:
        logger.info("provider busy too long: on to the next", extra={"task_id": task.task_id})
        busy = ProviderError(
            f"{provider} stayed at its concurrency limit for {waited:.0f} s",
            provider=provider,
            retryable=True,
            code="provider_busy",
        )
        return after_failure(deps, task, busy, circuits)
    delay = busy_delay(timing, deps.settings.scaled, waited)
    logger.info("provider busy: attempt queued again", extra={"task_id": task.task_id})
    return queue_attempt(deps, task, provider, delay_seconds=delay)


def waiting_since(task: Task) -> datetime:
    """When the current provider got the task's attempt: its last failed attempt at another
    provider, else when it left its client's queue (else when it was submitted)."""
    ended = [a.finished_at or a.at for a in task.attempts]
    return max([task.admitted_at or task.created_at, *ended])


def busy_delay(timing: TimingPolicy, scaled: Callable[[float], float], waited: float) -> int:
    """Whole seconds (SQS DelaySeconds, at least 1) before a busy provider is tried again:
    the base or a share of the wait so far, capped, jittered; ``waited`` is real (scaled)."""
    base = scaled(timing.provider_busy_retry_seconds)
    cap = scaled(timing.provider_busy_retry_cap_seconds)
    delay = min(cap, max(base, waited * timing.provider_busy_growth))
    jitter = timing.provider_busy_jitter_fraction
    return max(1, round(delay * random.uniform(1 - jitter, 1 + jitter)))


def _attempt_due(task: Task, provider: str) -> bool:
    """Whether this message is the task's current attempt (not stale, not finished)."""
    if task.status.terminal or task.provider != provider:
        return False
    if task.status is TaskStatus.QUEUED:
        return True
    # already with a provider: only a sync call that was interrupted is made again
    return task.path == "sync" and task.provider_task_id is None


def call_timeout(deps: Dependencies, candidate: Candidate, task: Task) -> float:
    """How long the call to ``candidate`` may take (a sync call's long timeout)."""
    if candidate.provider.mode(task.request) is Mode.SYNC:
        return deps.settings.provider_sync_timeout_seconds
    return deps.settings.provider_timeout_seconds


def _create(
    deps: Dependencies, task: Task, candidate: Candidate, gate: Gate, waited: float
) -> Task:
    """An async provider's create call; submitted (poll loop started) or on to the next one."""
    provider = candidate.provider
    url = callback_url(deps, task, candidate)
    try:
        provider_task_id = deps.providers.client(provider.name).create(
            task.request, provider_inputs(deps, task.request), url
        )
    except ProviderError as error:
        record_call(deps, gate, error)
        return after_failure(deps, task, error)
    record_call(deps, gate, None)
    expected = provider.expected_latency_seconds(task.request)
    submitted, recorded = record_accepted(
        deps,
        task,
        candidate,
        path="callback" if url else "poll",
        provider_task_id=provider_task_id,
        expected_seconds=expected,
        slot_wait_seconds=waited,
    )
    if recorded and url is None:
        deps.poll_loops.start(task.task_id, max(1, round(deps.settings.scaled(expected))))
    if recorded:
        schedule_hedge(deps, submitted)
    logger.info(
        "handed to provider",
        extra={"task_id": task.task_id, "provider": provider.name, "path": submitted.path},
    )
    return submitted


def _call_sync(
    deps: Dependencies, task: Task, candidate: Candidate, gate: Gate, waited: float
) -> Task:
    """A sync provider's one long call; the image is stored like a callback's would be."""
    provider = candidate.provider.name
    task, recorded = record_accepted(deps, task, candidate, path="sync")
    if not recorded:  # cancelled meanwhile
        return task
    if task.status is TaskStatus.SUBMITTED:
        running = change_status(
            deps, task.task_id, TaskStatus.RUNNING, by="dispatch", known=task
        )  # from the task just written (a stale one is read again)
        if not running.changed:  # cancelled meanwhile
            return running.task
        task = running.task
    schedule_hedge(deps, task)

    inputs = provider_inputs(deps, task.request)
    opener = input_opener(deps, task.request)
    called_at = utc_now()
    try:
        status = deps.providers.client(provider).run_sync(task.request, inputs, opener)
    except ProviderError as error:
        record_call(deps, gate, error)
        return after_failure(deps, task, error)
    except DownloadFailed as exc:  # an input URL: retried until timing.max_download_failures
        if exc.retryable and count_download_failure(deps, task) < deps.timing.max_download_failures:
            raise RetryLater(exc.message) from exc
        return _input_failed(deps, task, "input_download_failed", exc.message)
    except (InvalidImage, PayloadTooLarge, UnsafeUrl, NotFound) as exc:
        return _input_failed(deps, task, exc.code, exc.message)
    except Unprocessable as exc:  # the provider's options or capabilities changed meanwhile
        refusal = TaskError(code=exc.code, message=exc.message, provider=provider)
        return fail_task(deps, task.task_id, refusal, by="dispatch").task

    record_call(deps, gate, None)
    with status:
        if status.state is not ProviderState.SUCCEEDED:  # parse_sync only returns successes
            raise RuntimeError(f"{provider} sync answer in state {status.state}")
        attempt = ProviderAttempt(
            provider=provider,
            at=called_at,
            finished_at=utc_now(),
            outcome="completed",
            slot_wait_seconds=waited,
        )

        def record(t: Task) -> None:
            if not t.status.terminal:  # a hedge won meanwhile: it recorded this attempt
                t.attempts.append(attempt)

        # from the task as running wrote it (a hedge or a cancel meanwhile: read again)
        recorded_task = deps.tasks.update(task.task_id, record, known=task)
        if recorded_task.status.terminal:
            logger.info("sync result discarded: the task ended meanwhile (a hedge won)")
            return recorded_task
        return finalize_success(deps, recorded_task, status.images, by="dispatch")


def give_up(deps: Dependencies, task_id: str, provider: str) -> Task | None:
    """A message the dispatch function failed on every delivery: fail the task, with its event."""
    task = deps.tasks.get(task_id)
    if task is not None:
        working_on(task.task_id, task.request_id)
    if task is None or task.status.terminal or task.provider != provider:
        return task
    error = TaskError(
        code="dispatch_failed",
        message=f"the call to {provider} failed on every delivery of the dispatch queue "
        "(the dispatch function crashed or timed out); see its logs",
        provider=provider,
    )
    logger.error("dispatch gave up", extra={"task_id": task_id, "provider": provider})
    return fail_task(deps, task_id, error, by="dispatch").task


def _input_failed(deps: Dependencies, task: Task, code: str, message: str) -> Task:
    error = TaskError(code=code, message=f"an input image could not be sent: {message}")
    return fail_task(deps, task.task_id, error, by="dispatch").task
