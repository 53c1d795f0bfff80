"""refresh_task / finalize: ask the provider, and when it is done, mirror the image into S3.

Callbacks, the poll loop and the sweeper all come here; the body of a callback is never trusted.
Storing is idempotent (a fixed key per task and index), and only the writer that wins the
conditional status change emits the event, so duplicate or late callbacks are harmless.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from aws_lambda_powertools import Logger

from image_gateway.errors import (
    DownloadFailed,
    InvalidImage,
    PayloadTooLarge,
    ProviderError,
    UnsafeUrl,
)
from image_gateway.models.task import ImageOutput, Task, TaskError, TaskStatus, utc_now
from image_gateway.providers.base import ProviderState, ProviderStatus, ResultImage
from image_gateway.providers.registry import get_provider
from image_gateway.service.dependencies import Dependencies
from image_gateway.service.lifecycle import (
    change_status,
    expire_task,
    fail_task,
    publish_pending_event,
)
from image_gateway.tasks import TaskNotFound

logger = Logger(child=True)

MAX_BAD_RESPONSES = 3


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
    deps: Dependencies, task_id: str, *, by: str, status: ProviderStatus | None = None
) -> RefreshResult:
    """Bring the task up to date with its provider; finalise it when the provider is done.

    ``status`` is the provider's answer when the caller already has it (a batch query).
    Raises :class:`TaskNotFound` for an unknown id and :class:`RetryLater` when the provider
    or the download failed in a way worth retrying.
    """
    task = deps.tasks.get(task_id)
    if task is None:
        raise TaskNotFound(task_id)
    if task.status.terminal:
        return RefreshResult(publish_pending_event(deps, task))
    if task.provider_task_id is None:
        return RefreshResult(task)

    if status is None:
        try:
            status = deps.provider_client(task.provider).status(task.provider_task_id)
        except ProviderError as error:
            return RefreshResult(_provider_trouble(deps, task, error, by=by))

    with status:
        if status.state is ProviderState.PENDING:
            return RefreshResult(task)
        if status.state is ProviderState.RUNNING:
            if task.status is TaskStatus.RUNNING:
                return RefreshResult(task)
            running = change_status(deps, task_id, TaskStatus.RUNNING, by=by)
            return RefreshResult(running or deps.tasks.require(task_id))
        if status.state is ProviderState.FAILED:
            assert status.error is not None
            failed = fail_task(deps, task_id, TaskError.from_provider_error(status.error), by=by)
            return RefreshResult(failed or deps.tasks.require(task_id))
        return RefreshResult(finalize_success(deps, task, status.images, by=by))


def finalize_success(deps: Dependencies, task: Task, images: list[ResultImage], *, by: str) -> Task:
    """Store the provider's images in S3 and mark the task succeeded (one event).

    Bad bytes, an oversized or unsafe result fail the task; a transient download failure
    raises :class:`RetryLater`.
    """
    try:
        outputs = [_store_output(deps, task, index, image) for index, image in enumerate(images)]
    except (InvalidImage, PayloadTooLarge, UnsafeUrl) as exc:
        code = {
            InvalidImage: "provider_bad_image",
            PayloadTooLarge: "provider_image_too_large",
            UnsafeUrl: "provider_unsafe_url",
        }[type(exc)]
        error = TaskError(code=code, message=exc.message, provider=task.provider)
        return fail_task(deps, task.task_id, error, by=by) or deps.tasks.require(task.task_id)
    except DownloadFailed as exc:
        if exc.retryable:
            raise RetryLater(exc.message) from exc
        error = TaskError(
            code="provider_download_failed", message=exc.message, provider=task.provider
        )
        return fail_task(deps, task.task_id, error, by=by) or deps.tasks.require(task.task_id)

    def record(t: Task) -> None:
        t.outputs = outputs
        t.finalized_by = by

    finished = change_status(deps, task.task_id, TaskStatus.SUCCEEDED, by=by, change=record)
    if finished is None:
        logger.info("already finalised elsewhere", extra={"task_id": task.task_id, "by": by})
        return deps.tasks.require(task.task_id)
    return finished


def output_key_stem(task: Task, index: int) -> str:
    """Where output ``index`` goes (the extension follows the format).

    ``outputs/{client}/{yyyy}/{mm}/{dd}/{taskId}/{n}``, or the task's own ``output_key_stem``
    (inbox rules), with ``-{n}`` after the first output.
    """
    if task.output_key_stem is not None:
        return task.output_key_stem if index == 0 else f"{task.output_key_stem}-{index}"
    day = task.created_at
    return f"outputs/{task.client_id}/{day:%Y}/{day:%m}/{day:%d}/{task.task_id}/{index}"


def output_metadata(task: Task) -> dict[str, str]:
    """S3 user metadata that links an output to its task (and its inbox source, if any)."""
    metadata = {"task-id": task.task_id, "client-id": task.client_id, "provider": task.provider}
    if task.source is not None:  # S3 metadata is ASCII: the key is percent-encoded
        metadata["source-bucket"] = task.source.bucket
        metadata["source-key"] = quote(task.source.key, safe="/")
        if task.source.version_id:
            metadata["source-version-id"] = task.source.version_id
    return metadata


def _store_output(deps: Dependencies, task: Task, index: int, image: ResultImage) -> ImageOutput:
    metadata = output_metadata(task)
    stem = output_key_stem(task, index)
    with ExitStack() as stack:
        if image.url is not None:
            chunks = stack.enter_context(deps.fetcher.stream(image.url))
            stored = deps.images.store(chunks, stem, metadata=metadata)
        elif isinstance(image.b64, str):
            stored = deps.images.store_base64([image.b64], stem, metadata=metadata)
        elif image.b64 is not None:
            stored = deps.images.store_base64(image.b64.iter_chunks(), stem, metadata=metadata)
        else:
            raise InvalidImage("the provider result had no image")
    logger.info(
        "image stored",
        extra={"task_id": task.task_id, "key": stored.key, "bytes": stored.size_bytes},
    )
    return ImageOutput(
        bucket=stored.bucket,
        key=stored.key,
        content_type=stored.content_type,
        width=stored.width,
        height=stored.height,
        bytes=stored.size_bytes,
        sha256=stored.sha256,
    )


def _provider_trouble(deps: Dependencies, task: Task, error: ProviderError, *, by: str) -> Task:
    """Transient errors are retried later; a provider's garbage three times running fails it."""
    if error.retryable:
        raise RetryLater(error.message) from error
    if error.code != "provider_bad_response":
        return fail_task(
            deps, task.task_id, TaskError.from_provider_error(error), by=by
        ) or deps.tasks.require(task.task_id)

    def count(t: Task) -> None:
        t.bad_responses += 1

    counted = deps.tasks.update(task.task_id, count)
    logger.warning(
        "provider answered garbage",
        extra={"task_id": task.task_id, "count": counted.bad_responses, "error": error.message},
    )
    if counted.bad_responses >= MAX_BAD_RESPONSES:
        return fail_task(
            deps, task.task_id, TaskError.from_provider_error(error), by=by
        ) or deps.tasks.require(task.task_id)
    raise RetryLater(error.message) from error


@dataclass(frozen=True)
class PollDecision:
    """What the state machine does next."""

    done: bool
    wait_seconds: int


def poll_step(deps: Dependencies, task_id: str, attempt: int) -> PollDecision:
    """One iteration of the poll loop: refresh, expire past the deadline, else wait and retry."""
    try:
        result = refresh_task(deps, task_id, by="poll")
        task = result.task
    except RetryLater as transient:
        logger.warning("poll: try again later", extra={"task_id": task_id, "why": str(transient)})
        task = deps.tasks.require(task_id)
    except TaskNotFound:
        logger.error("poll: unknown task", extra={"task_id": task_id})
        return PollDecision(done=True, wait_seconds=0)
    if task.status.terminal:
        return PollDecision(done=True, wait_seconds=0)
    now = utc_now()
    if task.deadline_at is not None and now >= task.deadline_at:
        expire_or_current = _expire(deps, task_id, by="poll")
        return PollDecision(done=expire_or_current.status.terminal, wait_seconds=0)
    deps.tasks.update(task_id, _count_poll)
    interval = get_provider(task.provider).poll_interval_seconds * (1.5 ** min(attempt, 6))
    wait = deps.settings.scaled(min(interval, 30.0))
    if task.deadline_at is not None:
        wait = min(wait, (task.deadline_at - now).total_seconds() + 0.5)
    return PollDecision(done=False, wait_seconds=max(1, round(wait)))


def _count_poll(task: Task) -> None:
    task.polls += 1


def _expire(deps: Dependencies, task_id: str, *, by: str) -> Task:
    return expire_task(deps, task_id, by=by) or deps.tasks.require(task_id)


BATCH_SIZE = 20
"""Tasks per batch status query (apimart documents no limit; kept small)."""


def sweep(deps: Dependencies) -> list[str]:
    """Look at every task whose check time passed: emit missing events, poll late callbacks,
    expire what is past its deadline. Returns the ids it looked at.

    Tasks of a provider with a batch status query are read with one call per
    :data:`BATCH_SIZE` tasks instead of one each.
    """
    due = [task for task_id in deps.tasks.tasks_due(utc_now()) if (task := deps.tasks.get(task_id))]
    prefetched = _batch_statuses(deps, due)
    seen: list[str] = []
    try:
        for task in due:
            task_id = task.task_id
            seen.append(task_id)
            try:
                result = refresh_task(
                    deps, task_id, by="sweeper", status=prefetched.pop(task_id, None)
                )
                task = result.task
            except RetryLater:
                task = deps.tasks.require(task_id)
            except TaskNotFound:
                continue
            if task.status.terminal:
                continue
            if task.deadline_at is not None and utc_now() >= task.deadline_at:
                _expire(deps, task_id, by="sweeper")
                continue

            def later(t: Task) -> None:  # look again in a minute, or at the deadline
                step = timedelta(seconds=deps.settings.scaled(60))
                t.check_at = min(utc_now() + step, t.deadline_at or utc_now() + step)

            deps.tasks.update(task_id, later)
    finally:
        for status in prefetched.values():
            status.close()
    return seen


def _batch_statuses(deps: Dependencies, tasks: list[Task]) -> dict[str, ProviderStatus]:
    """Task id -> provider status, for open tasks of batch-capable providers (2+ per provider).

    A failed batch query is logged and skipped: those tasks are then read one by one.
    """
    groups: dict[str, list[Task]] = {}
    for task in tasks:
        if task.status.terminal or task.provider_task_id is None:
            continue
        if get_provider(task.provider).capabilities.batch_poll:
            groups.setdefault(task.provider, []).append(task)
    found: dict[str, ProviderStatus] = {}
    for provider, group in groups.items():
        if len(group) < 2:
            continue
        for start in range(0, len(group), BATCH_SIZE):
            chunk = group[start : start + BATCH_SIZE]
            ours = {t.provider_task_id: t.task_id for t in chunk if t.provider_task_id}
            try:
                answers = deps.provider_client(provider).batch_status(list(ours))
            except ProviderError as error:
                logger.warning(
                    "batch status failed; reading tasks one by one",
                    extra={"provider": provider, "error": error.message},
                )
                continue
            for provider_task_id, status in answers.items():
                if provider_task_id in ours:
                    found[ours[provider_task_id]] = status
                else:
                    status.close()
            logger.info("batch status", extra={"provider": provider, "tasks": len(chunk)})
    return found
