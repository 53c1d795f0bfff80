"""A finished batch's results file and its one announcement.

``finish_batch`` runs in the batch function when the change that ended a batch's last task won
its finish (``service.batch_counts``). It writes ``results.jsonl`` (one line per request, in
order, read 100 tasks a call), emits ``Image Batch Completed`` and queues the signed
``batch.completed`` webhook, then moves the batch to its final status. A batch made from an
inbox manifest also gets ``<path>.results.jsonl`` and ``<path>.errors.jsonl`` (its lines that
did not succeed: ``custom_id``, ``task_id``, ``status``, ``error``) next to the manifest in the
inbox (``write_manifest_files``). A crash before that last write makes the queue deliver the
message again: the files are written again (the same lines) and the event sent again with the
same ``event_id`` (at least once, as task events).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from image_gateway.batches.events import BatchEventDetail, BatchResultsFile
from image_gateway.batches.ports import Batch, BatchLine, BatchStatus
from image_gateway.models.batches import BatchResultLine, BatchResultOutput
from image_gateway.models.task import TaskStatus, utc_now
from image_gateway.ports import Dependencies
from image_gateway.webhooks.batch_delivery import announce_batch

logger = Logger(child=True)
_SUCCEEDED = TaskStatus.SUCCEEDED.value


def _announce(
    deps: Dependencies, batch: Batch, status: BatchStatus, at: datetime, key: str
) -> None:
    """The event (raises when the bus refuses: the message is delivered again) and the
    webhook."""
    results = BatchResultsFile(bucket=deps.images.bucket, key=key)
    deps.batches.events.publish(BatchEventDetail.of(batch, status, at, results))
    announce_batch(deps, batch)


def results_key(batch: Batch) -> str:
    """Where a batch's results file is stored in the images bucket (an inbox manifest's batch
    names its own place, next to its outputs)."""
    return batch.results_to or f"batches/{batch.client_id}/{batch.batch_id}/results.jsonl"


def finish_batch(deps: Dependencies, batch_id: str) -> Batch | None:
    """Write results.jsonl (one line per request, in order) and move the batch to its final
    status; the caller that moves it announces it. None when it was final already."""
    batch = deps.batches.store.get(batch_id)
    if batch is None or batch.status.final:
        return None
    rows = list(_result_rows(deps, batch))
    body = b"".join(row.model_dump_json().encode() + b"\n" for row in rows)
    key = results_key(batch)
    deps.images.put_file(key, body, content_type="application/x-ndjson")
    errors = [_error_row(row) for row in rows if row.status != _SUCCEEDED]
    write_manifest_files(deps, batch, body, errors)
    counts = batch.counts
    if batch.status is BatchStatus.CANCELLING:
        final = BatchStatus.CANCELLED
    elif counts.created and counts.expired == counts.created:
        final = BatchStatus.EXPIRED
    else:
        final = BatchStatus.COMPLETED
    completed_at = utc_now()
    _announce(deps, batch, final, completed_at, key)
    moved = deps.batches.store.set_status(
        batch_id,
        final,
        allowed_from=frozenset(
            {BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS, BatchStatus.CANCELLING}
        ),
        completed_at=completed_at,
        results_key=key,
    )
    if not moved:
        return None
    logger.info("batch completed", extra={"batch_id": batch_id, "status": final.value})
    return deps.batches.store.get(batch_id)


def _error_row(row: BatchResultLine) -> dict[str, Any]:
    return {
        "custom_id": row.custom_id,
        "task_id": row.task_id,
        "status": row.status,
        "error": row.error,
    }


def write_manifest_files(
    deps: Dependencies, batch: Batch, results: bytes | None, errors: list[dict[str, Any]]
) -> None:
    """Beside an inbox manifest (nothing for other batches): its results file (none for a
    failed batch, which has no results) and its errors file (one line per request that did not
    succeed, empty when all did; a failed batch's one line says why)."""
    manifest = batch.inbox_manifest
    if manifest is None:
        return
    files = deps.batches.files
    if results is not None:
        files.put(manifest.bucket, manifest.results_key, results)
    files.put(manifest.bucket, manifest.errors_key, b"".join(_jsonl(row) for row in errors))
    logger.info(
        "manifest files written",
        extra={"batch_id": batch.batch_id, "key": manifest.key, "errors": len(errors)},
    )


def _jsonl(row: dict[str, Any]) -> bytes:
    return json.dumps(row, separators=(",", ":")).encode() + b"\n"


def _result_rows(deps: Dependencies, batch: Batch) -> Iterator[BatchResultLine]:
    ttl = deps.settings.output_url_ttl_seconds
    page: list[BatchLine] = []

    def flush() -> Iterator[BatchResultLine]:
        tasks = deps.tasks.get_many([line.task_id for line in page if line.task_id])
        for line in page:
            task = tasks.get(line.task_id or "")
            if line.error is not None:
                yield BatchResultLine(
                    custom_id=line.custom_id,
                    task_id=None,
                    status="invalid",
                    outputs=[],
                    error=line.error.model_dump(exclude_none=True),
                )
            elif task is None:
                error = {"code": "batch_cancelled", "message": "cancelled before it became a task"}
                yield BatchResultLine(
                    custom_id=line.custom_id,
                    task_id=None,
                    status=TaskStatus.CANCELLED.value,
                    outputs=[],
                    error=error,
                )
            else:
                yield BatchResultLine(
                    custom_id=line.custom_id,
                    task_id=task.task_id,
                    status=task.status.value,
                    outputs=[
                        BatchResultOutput(
                            bucket=o.bucket,
                            key=o.key,
                            size=o.bytes,
                            sha256=o.sha256,
                            url=deps.images.presigned_get_url(o.key, ttl),
                        )
                        for o in task.outputs
                    ],
                    error=None if task.error is None else task.error.model_dump(exclude_none=True),
                )

    for line in deps.batches.store.lines(batch.batch_id):
        page.append(line)
        if len(page) == 100:
            yield from flush()
            page = []
    yield from flush()
