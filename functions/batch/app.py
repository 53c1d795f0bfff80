"""Batch work, from SQS: make a chunk of a batch's lines into tasks, cancel a batch's queued
tasks, or write a finished batch's results file and announce it.

Each record of ``BatchQueue`` is ``{"kind": "create", "batch_id", "start"}``,
``{"kind": "cancel", "batch_id"}``, ``{"kind": "finish", "batch_id"}`` or
``{"kind": "ingest", "batch_id", "line", "offset", "invalid", "estimate_usd"}`` (a segment of
an input file). Every step is safe to
repeat (fixed task ids, counters with per-task markers, a conditional final status), so a record
that raises is simply delivered again; after ``maxReceiveCount`` it rests in
``BatchDeadLetterQueue`` (alarmed).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_gateway.adapters.aws import lazy_dependencies
from image_gateway.batches.ports import IngestProgress
from image_gateway.service.batch_input import ingest_batch
from image_gateway.service.batch_results import finish_batch
from image_gateway.service.batches import cancel_queued, create_lines
from image_gateway.sqs_batch import SqsRecord, process_batch

logger = Logger()
DEPS = lazy_dependencies()


def record_handler(record: SqsRecord) -> None:
    """One piece of batch work."""
    try:
        message = json.loads(record.body)
        kind, batch_id = str(message["kind"]), str(message["batch_id"])
        start = int(message.get("start", 0))
        progress = IngestProgress.model_validate(message) if kind == "ingest" else None
    except (ValueError, KeyError, TypeError):  # pydantic's ValidationError is a ValueError
        logger.error("malformed batch message dropped", extra={"message_id": record.message_id})
        return
    logger.append_keys(batch_id=batch_id, kind=kind)
    deps = DEPS.get()
    if kind == "create":
        create_lines(deps, batch_id, start)
    elif kind == "cancel":
        cancel_queued(deps, batch_id)
    elif kind == "finish":
        finish_batch(deps, batch_id)
    elif progress is not None:
        ingest_batch(deps, batch_id, progress)
    else:
        logger.error("unknown batch message dropped", extra={"message_id": record.message_id})


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """SQS batch entry point (partial batch responses; batch size 1 in the template)."""
    return process_batch(event, record_handler)
