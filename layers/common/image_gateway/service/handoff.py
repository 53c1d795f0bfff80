"""Hand-off to a provider: try each candidate in order until one takes the task.

Async providers get their create call here (with a callback URL where they support one, else
the task's poll loop is started); sync providers are queued for the dispatch function. Every
try is recorded in ``task.attempts``; retryable failures move on to the next candidate.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from aws_lambda_powertools import Logger

from image_gateway.errors import ProviderError
from image_gateway.models.task import ProviderAttempt, Task, TaskError, TaskStatus, utc_now
from image_gateway.ports import Dependencies, QueueUnavailable
from image_gateway.providers.base import Mode, ProviderInputs
from image_gateway.service.lifecycle import change_status, fail_task
from image_gateway.service.routing import Candidate

logger = Logger(child=True)


def hand_to_provider(
    deps: Dependencies,
    task: Task,
    candidates: list[Candidate],
    inputs: ProviderInputs,
    callback_base_url: str | None,
    *,
    by: str = "api",
) -> Task:
    """Try each candidate in order; retryable failures move on, others end the task.

    Sync providers are queued for the dispatch function (their retryable failures fall back
    from there, with the names left in ``fallbacks``).
    """
    attempts = list(task.attempts)
    last_error: ProviderError | None = None
    for index, candidate in enumerate(candidates):
        provider = candidate.provider
        remaining = [c.provider.name for c in candidates[index + 1 :]]
        if provider.mode(task.request) is Mode.SYNC:
            return _queue_sync(deps, task, candidate, remaining, attempts, by=by)
        callback_url = _callback_url(deps, task, candidate, callback_base_url)
        try:
            provider_task_id = deps.providers.client(provider.name).create(
                task.request, inputs, callback_url
            )
        except ProviderError as error:
            logger.warning(
                "provider refused the task",
                extra={"task_id": task.task_id, "provider": provider.name, "code": error.code},
            )
            last_error = error
            attempts.append(failed_attempt(provider.name, error))
            if error.retryable:
                continue
            break
        attempts.append(
            ProviderAttempt(
                provider=provider.name,
                provider_task_id=provider_task_id,
                at=utc_now(),
                outcome="submitted",
            )
        )
        return _submitted(
            deps, task, candidate, provider_task_id, attempts, callback_url, remaining, by=by
        )
    assert last_error is not None
    return fail_with_attempts(deps, task.task_id, last_error, attempts, by=by)


def _callback_url(
    deps: Dependencies, task: Task, candidate: Candidate, callback_base_url: str | None
) -> str | None:
    """The provider's callback URL with the task's HMAC token, when it takes callbacks."""
    base = deps.settings.public_base_url or callback_base_url
    if not (candidate.provider.supports_callback and base):
        return None
    name = candidate.provider.name
    token = deps.signer.token(name, task.task_id)
    return f"{base.rstrip('/')}/webhooks/{name}/{task.task_id}/{token}"


def fail_with_attempts(
    deps: Dependencies,
    task_id: str,
    error: ProviderError,
    attempts: list[ProviderAttempt],
    *,
    by: str,
) -> Task:
    """End the task as failed by ``error``, keeping the record of every attempt."""
    final_error = TaskError.from_provider_error(error)

    def record_failure(t: Task) -> None:
        t.error = final_error
        t.attempts = attempts
        t.provider = attempts[-1].provider if attempts else t.provider

    return change_status(deps, task_id, TaskStatus.FAILED, by=by, change=record_failure).task


def failed_attempt(provider: str, error: ProviderError) -> ProviderAttempt:
    """The record of one try that failed with ``error``."""
    return ProviderAttempt(
        provider=provider,
        at=utc_now(),
        outcome="failed",
        error=TaskError.from_provider_error(error),
    )


class _TaskEnded(Exception):
    """The task ended (cancelled) while we were talking to a provider."""


def _record_submission(
    deps: Dependencies, task_id: str, record: Callable[[Task], None], *, by: str
) -> tuple[Task, bool]:
    """Apply ``record``: queued -> submitted (with its event), or in place for a fallback made
    after submission (the dispatch function). The task, and False when it ended meanwhile."""
    current = deps.tasks.require(task_id)
    if current.status is TaskStatus.QUEUED:
        outcome = change_status(deps, task_id, TaskStatus.SUBMITTED, by=by, change=record)
        return outcome.task, outcome.changed

    def guarded(t: Task) -> None:
        if t.status.terminal:
            raise _TaskEnded
        record(t)

    try:
        return deps.tasks.update(task_id, guarded), True
    except _TaskEnded:
        return deps.tasks.require(task_id), False


def _queue_sync(
    deps: Dependencies,
    task: Task,
    candidate: Candidate,
    remaining: list[str],
    attempts: list[ProviderAttempt],
    *,
    by: str,
) -> Task:
    """Hand a sync provider's call to the dispatch queue (never made inside an API request)."""
    provider = candidate.provider

    def record(t: Task) -> None:
        t.provider = provider.name
        t.provider_task_id = None
        t.path = "sync"
        t.size_sent = candidate.plan.sent
        t.fallbacks = remaining
        t.attempts = attempts
        t.cost_estimate_usd = deps.directory.estimate(provider.name, t.request, candidate.plan)
        t.submitted_at = t.submitted_at or utc_now()

    queued, recorded = _record_submission(deps, task.task_id, record, by=by)
    if not recorded:
        return queued
    try:
        deps.dispatch_queue.send(task.task_id, provider.name)
    except QueueUnavailable as exc:  # nothing was spent: end it, with its event
        logger.exception("dispatch queue unavailable", extra={"task_id": task.task_id})
        error = TaskError(
            code="dispatch_unavailable",
            message=f"the task could not be queued for {provider.name}: {exc}",
            provider=provider.name,
            retryable=True,
        )
        return fail_task(deps, task.task_id, error, by=by).task
    logger.info("queued for dispatch", extra={"task_id": task.task_id, "provider": provider.name})
    return queued


def _submitted(
    deps: Dependencies,
    task: Task,
    candidate: Candidate,
    provider_task_id: str,
    attempts: list[ProviderAttempt],
    callback_url: str | None,
    remaining: list[str],
    *,
    by: str,
) -> Task:
    provider = candidate.provider
    expected = provider.expected_latency_seconds(task.request)
    uses_callback = callback_url is not None

    def record(t: Task) -> None:
        t.provider = provider.name
        t.provider_task_id = provider_task_id
        t.path = "callback" if uses_callback else "poll"
        t.size_sent = candidate.plan.sent
        t.fallbacks = remaining
        t.attempts = attempts
        t.cost_estimate_usd = deps.directory.estimate(provider.name, t.request, candidate.plan)
        t.submitted_at = t.submitted_at or utc_now()
        if uses_callback:  # the sweeper polls once if the callback is late
            grace = deps.settings.scaled(deps.timing.callback_grace(expected))
            t.check_at = utc_now() + timedelta(seconds=grace)

    submitted, recorded = _record_submission(deps, task.task_id, record, by=by)
    if recorded and not uses_callback:
        wait = max(1, round(deps.settings.scaled(expected)))
        deps.poll_loops.start(submitted.task_id, wait)
    return submitted
