"""A batch's input file (``input_file`` of ``POST /v1/batches``, or an inbox manifest), read by
the batch function, never by the API.

``ingest_batch`` handles one ``ingest`` message. The first one surveys the whole file, streamed
(its size, its line count, every line a ``{"custom_id", "body"}`` object, no custom_id twice:
what an inline batch's request model checks); a file that fails the survey fails the batch
(``failed`` with the error's code, announced) and spends nothing. Then segments of
``INGEST_LINES`` lines, each from the byte offset where the previous one stopped: every line is
validated like an inline line (a bad body is an ``invalid`` error row) and stored, and the
sums so far ride in the next message. After the last segment the whole estimate is prepaid
(over the budget: the batch fails ``budget_exceeded``, nothing spent), the counts are set once
(a conditional write, so a repeated message prepays nothing twice: the loser refunds) and the
chunks are queued as for an inline batch.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from image_gateway.batches.events import BatchEventDetail
from image_gateway.batches.ports import (
    MAX_BATCH_LINES,
    Batch,
    BatchLine,
    BatchStatus,
    IngestProgress,
)
from image_gateway.errors import NotFound, TooManyRequests
from image_gateway.models.batches import BatchLineRequest, repeated_ids
from image_gateway.models.task import TaskError, utc_now
from image_gateway.models.uploads import MAX_BATCH_FILE_BYTES
from image_gateway.ports import Dependencies
from image_gateway.service.batch_counts import finish_when_done
from image_gateway.service.batch_lines import prepay, validate_line
from image_gateway.service.batch_results import write_manifest_files
from image_gateway.service.batches import CHUNK_LINES, cancel_queued
from image_gateway.webhooks.batch_delivery import announce_batch

logger = Logger(child=True)

INGEST_LINES = 5_000
"""Lines one ``ingest`` message validates and stores (well inside the function's timeout)."""
_S3_REF = re.compile(r"^s3://([^/]+)/(.+)$")


class InputFileRefused(Exception):
    """The input file cannot be a batch's lines: the batch fails with this code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error = TaskError(code=code, message=message[:1000])


@dataclass(frozen=True)
class _RawLine:
    """One non-blank line of the file and the byte offset just after it."""

    number: int
    data: bytes
    end: int


def ingest_batch(deps: Dependencies, batch_id: str, progress: IngestProgress) -> None:
    """Read one segment of the batch's input file (see the module)."""
    batch = deps.batches.store.get(batch_id)
    if batch is None or batch.input_file is None or batch.ingested or batch.status.final:
        return  # a repeated message of work already done
    try:
        if progress.line == 0:
            _survey(deps, batch)
        lines, after, more = _segment(deps, batch, progress)
    except InputFileRefused as refused:
        fail_batch(deps, batch, refused.error)
        return
    deps.batches.store.add_lines(batch_id, lines)
    if more:
        deps.batches.queue.ingest(batch_id, after)
        return
    _commit(deps, batch, after)


def _commit(deps: Dependencies, batch: Batch, progress: IngestProgress) -> None:
    """Prepay the estimate, set the counts once, queue the chunks."""
    store, batch_id = deps.batches.store, batch.batch_id
    estimate = round(progress.estimate_usd, 6)
    now = store.get(batch_id) or batch
    day: str | None = None
    if now.status is not BatchStatus.CANCELLING:  # a cancelled batch holds nothing
        try:
            day = prepay(deps, batch.client_id, estimate)
        except TooManyRequests as refused:
            fail_batch(deps, batch, TaskError(code=refused.code, message=refused.message))
            return
    committed = store.commit_input(
        batch_id,
        total=progress.line,
        invalid=progress.invalid,
        estimate_usd=estimate,
        prepaid_day=day,
    )
    if not committed:  # another delivery of this message committed first: hold nothing twice
        if day is not None:
            deps.usage.refund(batch.client_id, day, estimate)
        return
    logger.info(
        "batch input read",
        extra={"batch_id": batch_id, "lines": progress.line, "invalid": progress.invalid},
    )
    after = store.get(batch_id)
    if after is not None and after.status is BatchStatus.CANCELLING:
        cancel_queued(deps, batch_id)  # the cancel's own message found nothing to do yet
        return
    if progress.invalid == progress.line:
        finish_when_done(deps, batch_id, by="submit")
        return
    for start in range(0, progress.line, CHUNK_LINES):
        deps.batches.queue.create_lines(batch_id, start)


def fail_batch(deps: Dependencies, batch: Batch, error: TaskError) -> None:
    """The batch ends ``failed`` with ``error`` (its input was refused; nothing was spent),
    announced once by the caller that moved it."""
    completed_at = utc_now()
    if not deps.batches.store.fail(batch.batch_id, error, completed_at=completed_at):
        return
    logger.warning("batch failed", extra={"batch_id": batch.batch_id, "code": error.code})
    failed = deps.batches.store.get(batch.batch_id) or batch
    why = {"custom_id": None, "task_id": None, "status": "failed", "error": error.model_dump()}
    write_manifest_files(deps, failed, None, [why])  # a manifest's batch: why, next to it
    deps.batches.events.publish(BatchEventDetail.of(failed, BatchStatus.FAILED, completed_at, None))
    announce_batch(deps, failed)


def _lines_of(deps: Dependencies, batch: Batch, progress: IngestProgress) -> Iterator[_RawLine]:
    """The file's non-blank lines from ``progress`` on (input_file_not_found when it is not
    an object of the caller's under inputs/ of the images bucket, or is missing)."""
    assert batch.input_file is not None
    match = _S3_REF.match(batch.input_file.ref)
    own = f"inputs/{batch.client_id}/"
    if (
        match is None
        or match.group(1) != deps.images.bucket
        or not batch.input_file.key.startswith(own)
    ):
        raise InputFileRefused(
            "input_file_not_found",
            f"no input file {batch.input_file.ref[:200]} of yours: upload it through "
            "POST /v1/uploads (content_type application/x-ndjson) and send its ref",
        )
    try:
        yield from _split(
            deps.images.open_stream(batch.input_file.key, start=progress.offset),
            first=progress.line,
            offset=progress.offset,
        )
    except NotFound:
        raise InputFileRefused(
            "input_file_not_found",
            f"the input file {batch.input_file.ref[:200]} does not exist (was it uploaded? "
            "upload slots expire)",
        ) from None


def _split(chunks: Iterator[bytes], *, first: int, offset: int) -> Iterator[_RawLine]:
    pending = b""
    number = first
    position = offset
    for chunk in chunks:
        if position + len(pending) + len(chunk) > MAX_BATCH_FILE_BYTES:
            raise InputFileRefused(
                "input_file_too_large",
                f"the input file is over {MAX_BATCH_FILE_BYTES} bytes: split it into batches",
            )
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            position += len(raw) + 1
            if raw.strip():
                number += 1
                yield _RawLine(number, raw, position)
    if pending.strip():
        yield _RawLine(number + 1, pending, position + len(pending))


def _parse(raw: _RawLine) -> BatchLineRequest:
    try:
        return BatchLineRequest.model_validate_json(raw.data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise InputFileRefused(
            "invalid_input_file",
            f"line {raw.number}: {where + ': ' if where else ''}{problem['msg']} (each line "
            'must be one JSON object {"custom_id": "...", "body": {...a POST /v1/images '
            "body}})",
        ) from None


def _survey(deps: Dependencies, batch: Batch) -> None:
    """The whole file, once, before any line is stored: its size and line count, every line
    an object of the right shape, no custom_id twice (memory: the ids, not the lines)."""
    ids: list[str] = []
    for raw in _lines_of(deps, batch, IngestProgress()):
        if raw.number > MAX_BATCH_LINES:
            raise InputFileRefused(
                "input_file_too_many_lines",
                f"the input file has more than {MAX_BATCH_LINES} lines: split it into batches",
            )
        ids.append(_parse(raw).custom_id)
    if not ids:
        raise InputFileRefused("invalid_input_file", "the input file has no lines")
    repeated = repeated_ids(ids)
    if repeated:
        raise InputFileRefused(
            "duplicate_custom_id",
            f"custom_id must be unique in a batch; repeated: {repeated}",
        )


def _segment(
    deps: Dependencies, batch: Batch, progress: IngestProgress
) -> tuple[list[BatchLine], IngestProgress, bool]:
    """Up to INGEST_LINES lines from ``progress``, validated; the progress after them, and
    whether lines are left."""
    lines: list[BatchLine] = []
    after = progress
    for raw in _lines_of(deps, batch, progress):
        if len(lines) == INGEST_LINES:
            return lines, after, True
        parsed = _parse(raw)
        line = validate_line(deps, batch.batch_id, raw.number - 1, parsed.custom_id, parsed.body)
        lines.append(line)
        after = IngestProgress(
            line=raw.number,
            offset=raw.end,
            invalid=after.invalid + (line.error is not None),
            estimate_usd=after.estimate_usd + line.estimate_usd,
        )
    return lines, after, False
