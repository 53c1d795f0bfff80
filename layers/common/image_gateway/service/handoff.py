"""Hand-off bookkeeping: what an attempt at a provider records, and what happens after a failure.

Every provider call is made by the dispatch function (``service.dispatch``), one attempt per
queue message. This module records an accepted attempt (the task becomes ``submitted``: its
provider task id, path, size sent and cost estimate), a failed one, and moves a retryable
failure on to the next provider left in ``task.fallbacks`` by queueing a new attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from aws_lambda_powertools import Logger

from image_gateway.errors import ProviderError
from image_gateway.health.circuit import Circuit
from image_gateway.health.hedging import wants_hedge
from image_gateway.models.task import (
    FinishPath,
    ProviderAttempt,
    Task,
    TaskError,
    TaskStatus,
    utc_now,
)
from image_gateway.ports import Dependencies, QueueUnavailable
from image_gateway.service.health import order_by_health
from image_gateway.service.hedging import promote_hedge
from image_gateway.service.lifecycle import change_status, fail_task
from image_gateway.service.routing import Candidate, qualify

logger = Logger(child=True)


def queue_attempt(deps: Dependencies, task: Task, provider: str, *, delay_seconds: int = 0) -> Task:
    """Put the next attempt of ``task`` at ``provider`` on the dispatch queue.

    A queue that refuses fails the task (nothing was spent), with its event.
    """
    try:
        deps.dispatch_queue.send(task.task_id, provider, delay_seconds=delay_seconds)
    except QueueUnavailable as exc:
        logger.exception("dispatch queue unavailable", extra={"task_id": task.task_id})
        error = TaskError(
            code="dispatch_unavailable",
            message=f"the task could not be queued for {provider}: {exc}",
            provider=provider,
            retryable=True,
        )
        return fail_task(deps, task.task_id, error, by="dispatch").task
    return task


def callback_url(deps: Dependencies, task: Task, candidate: Candidate) -> str | None:
    """The provider's callback URL with the task's HMAC token, when it takes callbacks."""
    base = deps.settings.public_base_url or task.callback_base_url
    if not (candidate.provider.supports_callback and base):
        return None
    name = candidate.provider.name
    token = deps.signer.token(name, task.task_id)
    return f"{base.rstrip('/')}/webhooks/{name}/{task.task_id}/{token}"


def record_accepted(
    deps: Dependencies,
    task: Task,
    candidate: Candidate,
    *,
    path: FinishPath,
    provider_task_id: str | None = None,
    expected_seconds: float | None = None,
    slot_wait_seconds: float | None = None,
) -> tuple[Task, bool]:
    """The provider took the task: ``submitted`` (with its event), or in place for a task that
    already was (a fallback after a sync call). The task, and False when it ended meanwhile."""
    provider = candidate.provider
    attempt = ProviderAttempt(
        provider=provider.name,
        provider_task_id=provider_task_id,
        at=utc_now(),
        outcome="submitted",
        slot_wait_seconds=slot_wait_seconds,
    )

    def record(t: Task) -> None:
        t.provider = provider.name
        t.provider_task_id = provider_task_id
        t.path = path
        t.size_sent = candidate.plan.sent
        t.cost_estimate_usd = deps.directory.estimate(provider.name, t.request, candidate.plan)
        if t.submitted_at is None:  # its first attempt: the provider deadline starts now
            t.submitted_at = utc_now()
            budget = deps.settings.scaled(deps.settings.task_deadline_seconds)
            t.deadline_at = t.submitted_at + timedelta(seconds=budget)
            t.check_at = t.deadline_at
        if path != "sync":
            t.attempts.append(attempt)
        if path == "callback" and expected_seconds is not None:  # the sweeper polls a late one
            grace = max(
                deps.timing.callback_grace_floor_seconds,
                deps.settings.scaled(deps.timing.callback_grace(expected_seconds)),
            )
            t.check_at = min(utc_now() + timedelta(seconds=grace), t.deadline_at or utc_now())

    return _apply(deps, task, record)


def _apply(deps: Dependencies, task: Task, record: Callable[[Task], None]) -> tuple[Task, bool]:
    """``record`` on the task: ``submitted`` from ``queued``, else in place unless it ended.

    ``task`` is the caller's last read; each write starts from it (no read first) and a stale one
    is read again by the store, so a task moved on meanwhile ends where a fresh read would have
    sent it: in place if it is still open, untouched (False) if it ended.
    """
    if task.status is TaskStatus.QUEUED:
        outcome = change_status(
            deps, task.task_id, TaskStatus.SUBMITTED, by="dispatch", change=record, known=task
        )
        if outcome.changed or outcome.task.status.terminal:
            return outcome.task, outcome.changed
        task = outcome.task  # submitted by another attempt meanwhile: recorded in place

    def guarded(t: Task) -> None:
        if t.status.terminal:
            raise _TaskEnded
        record(t)

    try:
        return deps.tasks.update(task.task_id, guarded, known=task), True
    except _TaskEnded:
        return deps.tasks.require(task.task_id), False


class _TaskEnded(Exception):
    """The task ended (cancelled) while we were talking to a provider."""


def after_failure(
    deps: Dependencies,
    task: Task,
    error: ProviderError,
    circuits: dict[str, Circuit] | None = None,
) -> Task:
    """Record a failed attempt; a retryable one moves on to the next provider, if any is left
    (those whose breaker lets a call through first; ``circuits`` if already read). With a
    hedge running, the hedge becomes the task's attempt instead (``service.hedging``)."""
    logger.warning(
        "provider attempt failed",
        extra={"task_id": task.task_id, "provider": task.provider, "code": error.code},
    )
    if wants_hedge(task):  # a hedge running beside it carries the task on instead
        promoted = promote_hedge(deps, task.task_id, TaskError.from_provider_error(error))
        if promoted is not None:
            return promoted
    attempts = [*task.attempts, failed_attempt(task.provider, error)]
    # the providers left that are (still) enabled and able to honour the request, in order
    usable = [c.provider.name for c in qualify(deps, task.fallbacks, task.request)[0]]
    if error.retryable:
        usable = order_by_health(deps, usable, circuits)
    if error.retryable and usable:
        following, *rest = usable

        def move_on(t: Task) -> None:
            t.attempts = attempts
            t.provider = following
            t.fallbacks = rest

        moved = deps.tasks.update(task.task_id, move_on)
        if moved.status.terminal:  # cancelled during the call: send it nowhere else
            return moved
        return queue_attempt(deps, moved, following)
    return fail_with_attempts(deps, task.task_id, error, attempts)


def fail_with_attempts(
    deps: Dependencies, task_id: str, error: ProviderError, attempts: list[ProviderAttempt]
) -> Task:
    """End the task as failed by ``error``, keeping the record of every attempt."""
    final_error = TaskError.from_provider_error(error)

    def record_failure(t: Task) -> None:
        t.error = final_error
        t.attempts = attempts
        t.provider = attempts[-1].provider if attempts else t.provider

    outcome = change_status(deps, task_id, TaskStatus.FAILED, by="dispatch", change=record_failure)
    return outcome.task


def failed_attempt(provider: str, error: ProviderError) -> ProviderAttempt:
    """The record of one try that failed with ``error``."""
    now = utc_now()
    return ProviderAttempt(
        provider=provider,
        at=now,
        finished_at=now,
        outcome="failed",
        error=TaskError.from_provider_error(error),
    )
