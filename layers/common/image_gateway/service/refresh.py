"""Refresh and finalise: ask the provider, and when it is done, mirror the image into S3.

Callbacks, the poll loop and the sweeper all come here; the body of a callback is never trusted.
Storing is idempotent (a fixed key per task and index), and only the writer that wins the
conditional status change emits the event, so duplicate or late callbacks are harmless.

``service.hedging`` (and the routing it qualifies hedges with) is imported only on the paths
that meet a hedge: the finaliser and the poll step import this module at start, and most tasks
have none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aws_lambda_powertools import Logger

from image_gateway.errors import (
    DownloadFailed,
    InvalidImage,
    PayloadTooLarge,
    ProviderError,
    UnsafeUrl,
)
from image_gateway.health.hedging import (
    cost_with_open_hedge,
    open_hedge,
    wants_hedge,
    win_with,
)
from image_gateway.log_context import working_on
from image_gateway.models.task import (
    ImageOutput,
    ProviderAttempt,
    Task,
    TaskError,
    TaskStatus,
    utc_now,
)
from image_gateway.ports import Dependencies, TaskNotFound
from image_gateway.providers.base import ProviderState, ProviderStatus, ResultImage
from image_gateway.service.lifecycle import change_status, fail_task, publish_pending_event
from image_gateway.service.outputs import discard_unnamed, store_output

logger = Logger(child=True)


class RetryLater(Exception):
    """A transient failure (provider down, download timed out): ask again later."""


@dataclass(frozen=True)
class RefreshResult:
    """The task after the refresh, and whether it is finished."""

    task: Task

    @property
    def done(self) -> bool:
        """True once the task is terminal."""
        return self.task.status.terminal


def refresh_task(
    deps: Dependencies,
    task_id: str,
    *,
    by: str,
    status: ProviderStatus | None = None,
    emit_missing_event: bool = False,
    learned_at: datetime | None = None,
) -> RefreshResult:
    """Bring the task up to date with its provider; finalise it when the provider is done.

    ``status`` is the provider's answer when the caller already has it (a batch query).
    ``emit_missing_event`` (the sweeper) re-emits the current status's event if the bus refused
    it earlier; callbacks and polls never do, so losers of a race add no duplicate.
    ``learned_at``: when the gateway heard that the provider may be done (a callback's arrival);
    by default, when the provider's answer is read. The gateway's overhead is measured from it.
    Raises :class:`TaskNotFound` for an unknown id and :class:`RetryLater` when the provider
    or the download failed in a way worth retrying.
    """
    task = deps.tasks.get(task_id)
    if task is None:
        if status is not None:
            status.close()
        raise TaskNotFound(task_id)
    working_on(task.task_id, task.request_id)
    if emit_missing_event:
        task = publish_pending_event(deps, task)
    if task.status.terminal or task.provider_task_id is None:
        if status is not None:
            status.close()
        if task.status.terminal:
            return RefreshResult(task)
        return RefreshResult(_refresh_hedge(deps, task, by=by, learned_at=learned_at))

    if status is None:
        try:
            status = deps.providers.client(task.provider).status(task.provider_task_id)
        except ProviderError as error:
            return RefreshResult(_provider_trouble(deps, task, error, by=by))

    with status:
        if task.bad_responses:  # the limit counts garbage answers in a row
            task = deps.tasks.update(task_id, _reset_bad_responses)
        if status.state is ProviderState.PENDING:
            return RefreshResult(_refresh_hedge(deps, task, by=by, learned_at=learned_at))
        if status.state is ProviderState.RUNNING:
            if task.status is not TaskStatus.RUNNING:
                task = change_status(deps, task_id, TaskStatus.RUNNING, by=by).task
            return RefreshResult(_refresh_hedge(deps, task, by=by, learned_at=learned_at))
        if status.state is ProviderState.FAILED:
            assert status.error is not None
            failure = TaskError.from_provider_error(status.error)
            promoted = None
            if wants_hedge(task):
                from image_gateway.service.hedging import promote_hedge  # see the module

                promoted = promote_hedge(deps, task_id, failure)
            if promoted is not None:  # the hedge carries the task on
                return RefreshResult(_refresh_hedge(deps, promoted, by=by, learned_at=learned_at))
            return RefreshResult(fail_task(deps, task_id, failure, by=by).task)
        return RefreshResult(
            finalize_success(deps, task, status.images, by=by, learned_at=learned_at)
        )


def _refresh_hedge(deps: Dependencies, task: Task, *, by: str, learned_at: datetime | None) -> Task:
    """Ask a hedge running beside the task's provider (``service.hedging``), if any, and
    finalise the task with its image when it is done. A provider error is only logged: the
    next look (poll loop, callback, sweeper) asks again; a hedge's failure closes its attempt."""
    hedge = open_hedge(task)
    if task.status.terminal or hedge is None or hedge.provider_task_id is None:
        return task
    try:
        status = deps.providers.client(hedge.provider).status(hedge.provider_task_id)
    except ProviderError as error:
        logger.warning(
            "hedge status not read", extra={"task_id": task.task_id, "error": error.message}
        )
        return task
    with status:
        if status.state in (ProviderState.PENDING, ProviderState.RUNNING):
            return task
        if status.state is ProviderState.FAILED:
            assert status.error is not None
            from image_gateway.service.hedging import end_hedge  # see the module

            return end_hedge(deps, task.task_id, hedge.provider, status.error)
        return finalize_success(
            deps, task, status.images, by=by, learned_at=learned_at, attempt=hedge
        )


def finalize_success(
    deps: Dependencies,
    task: Task,
    images: list[ResultImage],
    *,
    by: str,
    learned_at: datetime | None = None,
    attempt: ProviderAttempt | None = None,
) -> Task:
    """Store the provider's images in S3 and mark the task succeeded (one event).

    ``attempt``: the hedge that made the images (``service.hedging``; None: the task's own
    provider). A hedge's images are stored at their own keys (``HEDGE_STEM_SUFFIX``), so two
    attempts finishing at once never write the same object; the one that wins the conditional
    status change names its outputs and provider on the task, the other's objects are deleted.

    ``learned_at`` (default: now) is when the gateway learned the provider was done; the time
    from it to the published event is the ``GatewayOverheadSeconds`` metric.

    Bad bytes, an oversized or unsafe result fail the task; a transient download failure
    raises :class:`RetryLater` (what was stored stays: the retry writes the same keys) until it
    happened ``timing.max_download_failures`` times, which fails it (an unreachable host). Outputs
    the finished task does not name (it failed, or someone else finished it first: a cancel, an
    expiry) are deleted again, so nothing is left in the bucket with no task pointing at it.
    """
    learned_at = learned_at or utc_now()
    stored: list[ImageOutput] = []
    hedged = attempt is not None and attempt.hedge
    try:
        for index, image in enumerate(images):
            stored.append(store_output(deps, task, index, image, hedge=attempt if hedged else None))
    except (InvalidImage, PayloadTooLarge, UnsafeUrl) as exc:
        code = {
            InvalidImage: "provider_bad_image",
            PayloadTooLarge: "provider_image_too_large",
            UnsafeUrl: "provider_unsafe_url",
        }[type(exc)]
        error = TaskError(code=code, message=exc.message, provider=task.provider)
        return discard_unnamed(deps, fail_task(deps, task.task_id, error, by=by).task, stored)
    except DownloadFailed as exc:
        message = exc.message
        if exc.retryable:
            failures = count_download_failure(deps, task)
            if failures < deps.timing.max_download_failures:
                raise RetryLater(exc.message) from exc
            message = f"{exc.message} ({failures} tries)"
        error = TaskError(code="provider_download_failed", message=message, provider=task.provider)
        return discard_unnamed(deps, fail_task(deps, task.task_id, error, by=by).task, stored)

    def record(t: Task) -> None:
        t.outputs = stored
        t.finalized_by = by
        if attempt is not None and attempt.provider != t.provider:
            win_with(t, attempt.provider)  # the hedge was first: the task is its attempt's
        else:
            t.cost_estimate_usd = cost_with_open_hedge(t)

    finished = change_status(
        deps, task.task_id, TaskStatus.SUCCEEDED, by=by, change=record, known=task
    )
    if finished.changed:
        _measure_overhead(deps, finished.task, learned_at)
        return finished.task  # its thumbnail: the thumbnail function, from its event
    logger.info("already finalised elsewhere", extra={"task_id": task.task_id, "by": by})
    return discard_unnamed(deps, finished.task, stored)


def count_download_failure(deps: Dependencies, task: Task) -> int:
    """Count one more failed download for the task (its inputs or its result); the count so far."""

    def count(t: Task) -> None:
        t.download_failures += 1

    counted = deps.tasks.update(task.task_id, count)
    logger.warning(
        "download failed",
        extra={"task_id": task.task_id, "count": counted.download_failures},
    )
    return counted.download_failures


def _measure_overhead(deps: Dependencies, task: Task, learned_at: datetime) -> None:
    """The gateway's own time: provider done (as the gateway learned it) -> event published."""
    if TaskStatus.SUCCEEDED not in task.events_published:
        return  # the bus refused it: the sweeper re-emits it later, overhead not measured
    seconds = max(0.0, (utc_now() - learned_at).total_seconds())
    dimensions = {"Provider": task.provider, "Path": task.path or "none"}
    deps.metrics.put("GatewayOverheadSeconds", seconds, "Seconds", dimensions)


def _reset_bad_responses(task: Task) -> None:
    task.bad_responses = 0


def _provider_trouble(deps: Dependencies, task: Task, error: ProviderError, *, by: str) -> Task:
    """Transient errors are retried later; a provider's garbage three times running fails it."""
    if error.retryable:
        raise RetryLater(error.message) from error
    if error.code != "provider_bad_response":
        return fail_task(deps, task.task_id, TaskError.from_provider_error(error), by=by).task

    def count(t: Task) -> None:
        t.bad_responses += 1

    counted = deps.tasks.update(task.task_id, count)
    logger.warning(
        "provider answered garbage",
        extra={"task_id": task.task_id, "count": counted.bad_responses, "error": error.message},
    )
    if counted.bad_responses >= deps.timing.max_bad_responses:
        return fail_task(deps, task.task_id, TaskError.from_provider_error(error), by=by).task
    raise RetryLater(error.message) from error
