"""Batches: many ordinary tasks of one client under one id (issue 21).

``create_batch`` (the API) validates every line like a single request (a bad line becomes an
error row, spends nothing), prepays the whole estimate in the client's daily budget (refused at
once with 429 ``budget_exceeded``, nothing written) and stores the batch and its lines; the
batch function then makes the lines into tasks in chunks (``create_lines``: each an ordinary
``submit_task``, same routing, limits and queueing, its reservation prepaid), so no API request
makes thousands of tasks. Each task's status changes are counted on the batch
(``service.batch_counts``); the change that ends the last task queues ``finish_batch``, which
writes ``results.jsonl`` and announces the batch once. ``cancel_batch`` stops the lines not yet
made and cancels the queued tasks; running ones finish.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from image_gateway.batches.ports import (
    Batch,
    BatchCounters,
    BatchInput,
    BatchLine,
    BatchStatus,
    InboxManifest,
    IngestProgress,
    line_task_id,
    new_batch_id,
)
from image_gateway.errors import Conflict, GatewayError, NotFound, TooManyRequests
from image_gateway.idempotency import check_key, fingerprint
from image_gateway.models.batches import BatchCreateRequest
from image_gateway.models.request import ImageRequest
from image_gateway.models.task import TaskStatus, utc_now
from image_gateway.ports import Dependencies, TaskExists
from image_gateway.service.batch_counts import finish_when_done
from image_gateway.service.batch_lines import prepay, validate_line
from image_gateway.service.lifecycle import change_status
from image_gateway.service.submit import submit_task
from image_gateway.webhooks.delivery import check_callback_url

logger = Logger(child=True)

CHUNK_LINES = 50
"""Lines one message of the batch function makes into tasks (well inside its timeout); a
batch's chunks are queued at once, so several environments make them in parallel."""
LINE_MAKERS = 8
"""Lines of a chunk made at once (threads): the batch function waits on I/O, not CPU."""
CHUNK_RESERVE_SECONDS = 40.0
"""A line is begun only with more than this left of the invocation: a chunk slowed down (a
throttled table; devstack's moto under load took over 120 s for 50 lines) ends early and
queues its untried lines at once, instead of timing out and being redelivered whole."""
_UNTRIED = -1


@dataclass(frozen=True)
class BatchSubmission:
    """What create_batch did: the batch, and whether it is an earlier one (Idempotency-Key)."""

    batch: Batch
    replayed: bool = False


def create_batch(
    deps: Dependencies,
    body: BatchCreateRequest,
    *,
    client_id: str,
    idempotency_key: str | None = None,
    request_id: str | None = None,
) -> BatchSubmission:
    """Validate every line, prepay the estimate, store the batch and queue its first chunk."""
    if idempotency_key is not None:
        check_key(idempotency_key)  # 400 invalid_idempotency_key, as POST /v1/images
    check_callback_url(deps, body.callback_url)
    batch_id = new_batch_id()
    key = idempotency_key
    owner = f"{client_id}#batches"  # a key of its own namespace: POST /v1/images may reuse it
    if key is not None:
        earlier = deps.idempotency.claim(owner, key, fingerprint(body.model_dump_json()), batch_id)
        if earlier is not None:
            found = deps.batches.store.get(earlier)
            if found is None:
                raise Conflict(
                    "a batch with this Idempotency-Key is still being created; retry shortly",
                    code="idempotency_in_progress",
                )
            return BatchSubmission(found, replayed=True)
    try:
        return BatchSubmission(_create(deps, body, client_id, batch_id, key, request_id))
    except Exception:
        if key is not None:
            deps.idempotency.release(owner, key, batch_id)
        raise


def queue_chunks(deps: Dependencies, batch_id: str, lines: list[BatchLine]) -> None:
    """Queue every chunk holding a good line at once (the batch function makes them in
    parallel), or, when no line is good, finish the batch: its results are the error rows."""
    queued = False
    for start in range(0, len(lines), CHUNK_LINES):
        if any(line.error is None for line in lines[start : start + CHUNK_LINES]):
            deps.batches.queue.create_lines(batch_id, start)
            queued = True
    if not queued:
        finish_when_done(deps, batch_id, by="submit")


def _create(
    deps: Dependencies,
    body: BatchCreateRequest,
    client_id: str,
    batch_id: str,
    idempotency_key: str | None,
    request_id: str | None,
) -> Batch:
    if body.input_file is not None:  # read by the batch function, never here
        return new_file_batch(
            deps,
            client_id=client_id,
            batch_id=batch_id,
            ref=body.input_file,
            metadata=body.metadata,
            callback_url=body.callback_url,
            idempotency_key=idempotency_key,
            request_id=request_id,
        )
    lines = [
        validate_line(deps, batch_id, index, line.custom_id, line.body)
        for index, line in enumerate(body.requests)
    ]
    estimate = round(sum(line.estimate_usd for line in lines), 6)
    day = prepay(deps, client_id, estimate)
    invalid = sum(1 for line in lines if line.error is not None)
    batch = Batch(
        batch_id=batch_id,
        client_id=client_id,
        counts=BatchCounters(total=len(lines), invalid=invalid),
        metadata=body.metadata,
        callback_url=body.callback_url,
        estimated_cost_usd=estimate,
        prepaid_day=day,
        idempotency_key=idempotency_key,
        request_id=request_id,
        created_at=utc_now(),
    )
    try:
        deps.batches.store.create(batch, lines)
        queue_chunks(deps, batch_id, lines)
    except Exception:
        if day is not None:
            deps.usage.refund(client_id, day, estimate)
        raise
    logger.info(
        "batch created",
        extra={"batch_id": batch_id, "client_id": client_id, "lines": len(lines)},
    )
    return batch


def new_file_batch(
    deps: Dependencies,
    *,
    client_id: str,
    batch_id: str,
    ref: str,
    metadata: dict[str, str] | None = None,
    callback_url: str | None = None,
    idempotency_key: str | None = None,
    request_id: str | None = None,
    results_to: str | None = None,
    inbox_manifest: InboxManifest | None = None,
) -> Batch:
    """Store a batch whose lines are in the file ``ref`` (``s3://bucket/key``) and queue its
    reading. The file is checked to be in the images bucket under ``inputs/`` only by the
    batch function (a bad one fails the batch, with its error)."""
    _, _, key = ref.removeprefix("s3://").partition("/")
    batch = Batch(
        batch_id=batch_id,
        client_id=client_id,
        metadata=metadata or {},
        callback_url=callback_url,
        idempotency_key=idempotency_key,
        request_id=request_id,
        created_at=utc_now(),
        input_file=BatchInput(key=key, ref=ref),
        results_to=results_to,
        inbox_manifest=inbox_manifest,
    )
    deps.batches.store.create(batch, [])
    deps.batches.queue.ingest(batch_id, IngestProgress())
    logger.info("batch created from a file", extra={"batch_id": batch_id, "client_id": client_id})
    return batch


def create_lines(
    deps: Dependencies,
    batch_id: str,
    start: int,
    *,
    seconds_left: Callable[[], float] | None = None,
) -> None:
    """Make the lines of the chunk holding line ``start`` (from it to the chunk's end) into
    tasks.

    A retried message finds the lines it made (their fixed task ids) and counts nothing twice.
    A limit that passes with time (the minute's rate, a full client queue) leaves the rest of
    the chunk to a later message from the line it stopped at, and so does the invocation's
    time running short (``seconds_left`` under ``CHUNK_RESERVE_SECONDS``: the rest at once).
    A cancelled batch skips what is left.
    """
    batch = deps.batches.store.get(batch_id)
    if batch is None or batch.status.final:
        return
    if batch.status is BatchStatus.CANCELLING:
        _skip_rest(deps, batch, 0)
        return
    end = (start // CHUNK_LINES + 1) * CHUNK_LINES
    todo = [
        line
        for line in deps.batches.store.lines(batch_id, start=start, limit=end - start)
        if line.error is None and line.task_id is None and not line.skipped
    ]

    # the first alone (it builds every client: botocore sessions are not thread-safe), then
    # the rest a few at a time: each line is ~9 sequential DynamoDB and SQS calls
    def attempt(line: BatchLine) -> int | None:
        if seconds_left is not None and seconds_left() < CHUNK_RESERVE_SECONDS:
            return _UNTRIED
        return _make_task(deps, batch, line)

    waits = [_make_task(deps, batch, line) for line in todo[:1]]  # always some progress
    with ThreadPoolExecutor(max_workers=LINE_MAKERS) as pool:
        waits += pool.map(attempt, todo[1:])
    later = [(line.index, max(wait, 0)) for line, wait in zip(todo, waits, strict=True) if wait]
    if later:  # the rest of the chunk later, from the first line refused or not tried
        index, wait = min(later)
        deps.batches.queue.create_lines(batch_id, index, delay_seconds=wait)
        return
    deps.batches.store.set_status(
        batch_id, BatchStatus.IN_PROGRESS, allowed_from=frozenset({BatchStatus.VALIDATING})
    )
    finish_when_done(deps, batch_id, by="create")  # its tasks may all have ended already


def _make_task(deps: Dependencies, batch: Batch, line: BatchLine) -> int | None:
    """The line's task (made now, or found from a retried message) counted as created; the
    seconds to wait when a limit that passes with time refused it."""
    task_id = line_task_id(batch.batch_id, line.index)
    if deps.tasks.get(task_id) is None:
        try:
            submit_task(
                deps,
                ImageRequest.model_validate(line.body),
                client_id=batch.client_id,
                task_id=task_id,
                request_id=batch.request_id,
                batch=(batch.batch_id, line.custom_id),
            )
        except TooManyRequests as refused:
            if refused.passes_with_time:
                return refused.retry_after_seconds or 1
            _refuse_line(deps, batch, line, refused)
            return None
        except GatewayError as refused:  # the line was fine at submit and is not now
            _refuse_line(deps, batch, line, refused)
            return None
        except TaskExists:  # another delivery of the same chunk made it meanwhile
            pass
    deps.batches.store.record_created(batch.batch_id, line.index, task_id)
    return None


def _refuse_line(deps: Dependencies, batch: Batch, line: BatchLine, why: GatewayError) -> None:
    """A line refused when its task was made: skipped, its prepaid estimate refunded."""
    logger.warning(
        "batch line refused",
        extra={"batch_id": batch.batch_id, "line": line.index, "code": why.code},
    )
    if deps.batches.store.record_skipped(batch.batch_id, line.index) and batch.prepaid_day:
        deps.usage.refund(batch.client_id, batch.prepaid_day, line.estimate_usd)


def _skip_rest(deps: Dependencies, batch: Batch, start: int) -> None:
    refund = 0.0
    for line in deps.batches.store.lines(batch.batch_id, start=start):
        unmade = line.error is None and line.task_id is None and not line.skipped
        if unmade and deps.batches.store.record_skipped(batch.batch_id, line.index):
            refund += line.estimate_usd
    if refund and batch.prepaid_day:
        deps.usage.refund(batch.client_id, batch.prepaid_day, refund)
    finish_when_done(deps, batch.batch_id, by="cancel")


def own_batch(deps: Dependencies, client_id: str, batch_id: str) -> Batch:
    """The caller's batch, or 404 (another client's batch does not exist)."""
    batch = deps.batches.store.get(batch_id) if len(batch_id) <= 64 else None
    if batch is None or batch.client_id != client_id:
        raise NotFound(f"no batch {batch_id[:64]}", code="batch_not_found")
    return batch


def cancel_batch(deps: Dependencies, client_id: str, batch_id: str) -> Batch:
    """Stop the batch: lines not yet made are skipped and queued tasks cancelled (by the batch
    function); running tasks finish. 409 once the batch is final."""
    own_batch(deps, client_id, batch_id)
    moved = deps.batches.store.set_status(
        batch_id,
        BatchStatus.CANCELLING,
        allowed_from=frozenset({BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS}),
    )
    batch = own_batch(deps, client_id, batch_id)
    if not moved and batch.status is not BatchStatus.CANCELLING:
        raise Conflict(
            f"batch is already {batch.status.value} and cannot be cancelled",
            code="batch_not_cancellable",
            status=batch.status.value,
        )
    if moved:
        deps.batches.queue.cancel(batch_id)
    return batch


def cancel_queued(deps: Dependencies, batch_id: str) -> None:
    """The batch function's part of a cancel: skip unmade lines, cancel tasks still queued."""
    batch = deps.batches.store.get(batch_id)
    if batch is None or not batch.lines_counted:
        return  # its input file is still being read: the reader cancels once it has counted
    _skip_rest(deps, batch, 0)
    ids = [line.task_id for line in deps.batches.store.lines(batch_id) if line.task_id]
    for start in range(0, len(ids), 100):
        for task in deps.tasks.get_many(ids[start : start + 100]).values():
            if task.status is TaskStatus.QUEUED and task.submitted_at is None:
                change_status(deps, task.task_id, TaskStatus.CANCELLED, by="cancel")
