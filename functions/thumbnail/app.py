"""Thumbnails of succeeded tasks, from SQS: one ``Image Task Succeeded`` event per record.

An EventBridge rule sends the gateway's own succeeded events to ``ThumbnailQueue``;
``service.thumbnails.make_task_thumbnail`` stores the first output's preview next to it and
names it on the task. A record that raises (S3 or DynamoDB down) is received again after the
visibility timeout, then dead-lettered. The cold path imports no pydantic, no httpx and no
settings (tests/unit/test_architecture.py): botocore, the two adapters, and Pillow at the first
thumbnail.
"""

from __future__ import annotations

from typing import Any

from image_gateway.adapters.thumbnails import lazy_thumbnail_dependencies
from image_gateway.json_log import JsonLogger
from image_gateway.service.thumbnails import ThumbnailOutcome, make_task_thumbnail
from image_gateway.sqs_batch import SqsRecord, process_batch

logger = JsonLogger()
DEPS = lazy_thumbnail_dependencies()


def _task_id(record: SqsRecord) -> str | None:
    """The task of the EventBridge event in the record's body (None: not such an event)."""
    try:
        event = record.json_body
    except ValueError:
        return None
    detail = event.get("detail") if isinstance(event, dict) else None
    task_id = detail.get("task_id") if isinstance(detail, dict) else None
    return task_id if isinstance(task_id, str) and task_id else None


def record_handler(record: SqsRecord) -> None:
    """One succeeded task's thumbnail (nothing when it has one)."""
    task_id = _task_id(record)
    if task_id is None:
        logger.error("malformed thumbnail message dropped", message_id=record.message_id)
        return
    logger.append_keys(task_id=task_id)
    outcome = make_task_thumbnail(DEPS.get(), task_id)
    if outcome is ThumbnailOutcome.UNREADABLE:
        logger.warning("thumbnail not made: Pillow cannot read the output", outcome=outcome.value)
    else:
        logger.info("thumbnail event handled", outcome=outcome.value)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    """SQS batch entry point (partial batch responses)."""
    logger.bind_invocation(context)
    return process_batch(event, record_handler)
