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

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from image_gateway.batches.ports import (
    Batch,
    BatchCounters,
    BatchLine,
    BatchStatus,
    line_task_id,
    new_batch_id,
)
from image_gateway.errors import Conflict, GatewayError, NotFound, TooManyRequests
from image_gateway.idempotency import check_key, fingerprint
from image_gateway.limits.ports import LimitKind, next_utc_day, seconds_until
from image_gateway.models.batches import BatchCreateRequest
from image_gateway.models.request import ImageRequest
from image_gateway.models.task import TaskError, TaskStatus, utc_now
from image_gateway.ports import Dependencies, TaskExists
from image_gateway.service.batch_counts import finish_when_done
from image_gateway.service.lifecycle import change_status
from image_gateway.service.limits import client_limits, reserved_estimate
from image_gateway.service.routing import route
from image_gateway.service.submit import submit_task
from image_gateway.webhooks.delivery import check_callback_url

logger = Logger(child=True)

CHUNK_LINES = 50
"""Lines one message of the batch function makes into tasks (well inside its timeout); a
batch's chunks are queued at once, so several environments make them in parallel."""
LINE_MAKERS = 8
"""Lines of a chunk made at once (threads): the batch function waits on I/O, not CPU."""
MAX_LINE_BODY_BYTES = 300_000
"""A line's body is kept in one DynamoDB item (400 KB): images go by URL or upload."""


@dataclass(frozen=True)
class BatchSubmission:
    """What create_batch did: the batch, and whether it is an earlier one (Idempotency-Key)."""

    batch: Batch
    replayed: bool = False


def _error_of(exc: Exception) -> TaskError:
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        ]
        return TaskError(code="validation_error", message="; ".join(parts)[:1000])
    if isinstance(exc, GatewayError):
        return TaskError(code=exc.code, message=str(exc)[:1000])
    raise exc


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


def _create(
    deps: Dependencies,
    body: BatchCreateRequest,
    client_id: str,
    batch_id: str,
    idempotency_key: str | None,
    request_id: str | None,
) -> Batch:
    lines: list[BatchLine] = []
    for index, line in enumerate(body.requests):
        try:
            if len(json.dumps(line.body)) > MAX_LINE_BODY_BYTES:
                raise _TooLarge
            request = ImageRequest.model_validate(line.body)
            # which providers qualify and the dearest estimate: the order among them (the
            # client's routing policy, read per task when it is made) changes neither
            routed = route(deps, request, token=line_task_id(batch_id, index))
            check_callback_url(deps, request.callback_url)
            estimate = reserved_estimate(deps, request, routed.candidates)
            lines.append(
                BatchLine(
                    index=index,
                    custom_id=line.custom_id,
                    body=request.model_dump(mode="json", exclude_unset=True),
                    estimate_usd=estimate,
                )
            )
        except _TooLarge:
            error = TaskError(
                code="line_too_large",
                message=f"a line's body may be at most {MAX_LINE_BODY_BYTES} bytes: send images "
                "as https URLs or uploads (POST /v1/uploads, s3://), not data URLs",
            )
            lines.append(BatchLine(index=index, custom_id=line.custom_id, error=error))
        except (ValidationError, GatewayError) as exc:
            lines.append(BatchLine(index=index, custom_id=line.custom_id, error=_error_of(exc)))
    estimate = round(sum(line.estimate_usd for line in lines), 6)
    limits = client_limits(deps, client_id)
    day = deps.usage.prepay(client_id, limits=limits, cost_usd=estimate) if estimate else None
    if estimate and day is None:
        deps.metrics.put("RequestsThrottled", 1, "Count", {"Code": LimitKind.BUDGET.value})
        now = time.time()
        raise TooManyRequests(
            f"this batch's estimated ${estimate} would take the client past its daily budget "
            f"of ${limits.daily_budget_usd}: nothing was submitted; send fewer or cheaper "
            "requests, retry after midnight UTC (Retry-After), or ask the operator to raise it",
            code=LimitKind.BUDGET.value,
            retry_after_seconds=seconds_until(now, next_utc_day(now)),
            estimated_cost_usd=estimate,
        )
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
        if invalid == len(lines):  # nothing to run: its results are the error rows
            finish_when_done(deps, batch_id, by="submit")
        else:  # every chunk at once: the batch function makes them in parallel
            for start in range(0, len(lines), CHUNK_LINES):
                if any(line.error is None for line in lines[start : start + CHUNK_LINES]):
                    deps.batches.queue.create_lines(batch_id, start)
    except Exception:
        if day is not None:
            deps.usage.refund(client_id, day, estimate)
        raise
    logger.info(
        "batch created",
        extra={"batch_id": batch_id, "client_id": client_id, "lines": len(lines)},
    )
    return batch


class _TooLarge(Exception):
    """A line's body over MAX_LINE_BODY_BYTES."""


def create_lines(deps: Dependencies, batch_id: str, start: int) -> None:
    """Make the lines of the chunk holding line ``start`` (from it to the chunk's end) into
    tasks.

    A retried message finds the lines it made (their fixed task ids) and counts nothing twice.
    A limit that passes with time (the minute's rate, a full client queue) leaves the rest of
    the chunk to a later message from the line it stopped at. A cancelled batch skips what is
    left.
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
    waits = [_make_task(deps, batch, line) for line in todo[:1]]
    with ThreadPoolExecutor(max_workers=LINE_MAKERS) as pool:
        waits += pool.map(lambda line: _make_task(deps, batch, line), todo[1:])
    refused = [(line.index, wait) for line, wait in zip(todo, waits, strict=True) if wait]
    if refused:  # the rest of the chunk later, from the first line refused
        index, wait = min(refused)
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
    if batch is None:
        return
    _skip_rest(deps, batch, 0)
    ids = [line.task_id for line in deps.batches.store.lines(batch_id) if line.task_id]
    for start in range(0, len(ids), 100):
        for task in deps.tasks.get_many(ids[start : start + 100]).values():
            if task.status is TaskStatus.QUEUED and task.submitted_at is None:
                change_status(deps, task.task_id, TaskStatus.CANCELLED, by="cancel")
