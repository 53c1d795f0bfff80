"""dispatch: make the one long call of a sync provider, from the dispatch queue.

The API queues a sync task (``path = "sync"``); the dispatch function receives it, marks it
running, calls the provider (minutes, never inside an API request), and finalises it like a
callback would. A retryable failure (5xx, 429, timeout, connection) falls back to the next
provider left in ``task.fallbacks``; anything else fails the task. If the function itself dies
mid-call (timeout, out of memory), SQS delivers the message again; after the queue's
``maxReceiveCount`` deliveries it lands on the dead-letter queue, whose records
:func:`give_up` turns into a failed task with its event.

A redelivered message calls the provider again: a call that succeeded at the provider but
crashed before the image reached S3 may be paid twice. That is the price of not losing tasks.
"""

from __future__ import annotations

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
from image_gateway.models.task import ProviderAttempt, Task, TaskError, TaskStatus, utc_now
from image_gateway.ports import Dependencies
from image_gateway.providers.base import ProviderState
from image_gateway.service.handoff import fail_with_attempts, failed_attempt, hand_to_provider
from image_gateway.service.lifecycle import change_status, fail_task
from image_gateway.service.refresh import RetryLater, finalize_success
from image_gateway.service.routing import qualify
from image_gateway.service.staging import input_opener, provider_inputs

logger = Logger(child=True)


def dispatch(deps: Dependencies, task_id: str, provider: str) -> Task | None:
    """Run the sync call of ``task_id`` at ``provider``; the task afterwards (None if unknown).

    Raises :class:`RetryLater` for a transient failure of our own side (input download,
    result download) so that SQS delivers the message again.
    """
    task = deps.tasks.get(task_id)
    if task is None:
        logger.error("dispatch: unknown task", extra={"task_id": task_id})
        return None
    if task.status.terminal or task.path != "sync" or task.provider != provider:
        logger.info(  # finished, or already handed to another provider: a stale message
            "dispatch: nothing to do",
            extra={"task_id": task_id, "status": task.status, "provider": task.provider},
        )
        return task
    if task.status is TaskStatus.SUBMITTED:
        running = change_status(deps, task_id, TaskStatus.RUNNING, by="dispatch")
        if not running.changed:  # cancelled meanwhile
            return running.task
        task = running.task

    inputs = provider_inputs(deps, task.request)
    opener = input_opener(deps, task.request)
    try:
        status = deps.providers.client(provider).run_sync(task.request, inputs, opener)
    except ProviderError as error:
        return _provider_failed(deps, task, error)
    except DownloadFailed as exc:
        if exc.retryable:
            raise RetryLater(exc.message) from exc
        return _input_failed(deps, task, "input_download_failed", exc.message)
    except (InvalidImage, PayloadTooLarge, UnsafeUrl, NotFound) as exc:
        return _input_failed(deps, task, exc.code, exc.message)
    except Unprocessable as exc:  # the provider's options or capabilities changed meanwhile
        refusal = TaskError(code=exc.code, message=exc.message, provider=provider)
        return fail_task(deps, task_id, refusal, by="dispatch").task

    with status:
        if status.state is not ProviderState.SUCCEEDED:  # parse_sync only returns successes
            raise RuntimeError(f"{provider} sync answer in state {status.state}")
        attempt = ProviderAttempt(provider=provider, at=utc_now(), outcome="completed")
        recorded = deps.tasks.update(task_id, lambda t: t.attempts.append(attempt))
        return finalize_success(deps, recorded, status.images, by="dispatch")


def give_up(deps: Dependencies, task_id: str, provider: str) -> Task | None:
    """A message the dispatch function failed on every delivery: fail the task, with its event."""
    task = deps.tasks.get(task_id)
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


def _provider_failed(deps: Dependencies, task: Task, error: ProviderError) -> Task:
    logger.warning(
        "sync provider call failed",
        extra={"task_id": task.task_id, "provider": task.provider, "code": error.code},
    )
    attempts = [*task.attempts, failed_attempt(task.provider, error)]
    if error.retryable:
        # the providers left to try that are (still) enabled and able to honour the request
        candidates = qualify(deps, task.fallbacks, task.request)[0]
        if candidates:
            task = deps.tasks.update(task.task_id, lambda t: setattr(t, "attempts", attempts))
            if task.status.terminal:  # cancelled during the call: send it nowhere else
                return task
            return hand_to_provider(
                deps, task, candidates, provider_inputs(deps, task.request), None, by="dispatch"
            )
    return fail_with_attempts(deps, task.task_id, error, attempts, by="dispatch")


def _input_failed(deps: Dependencies, task: Task, code: str, message: str) -> Task:
    error = TaskError(code=code, message=f"an input image could not be sent: {message}")
    return fail_task(deps, task.task_id, error, by="dispatch").task
