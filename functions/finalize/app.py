"""Finalise tasks whose provider called back, from the FIFO finalize queue.

Each record is ``{"task_id", "provider"}``, queued by the webhook once the callback's token was
right: ask the provider, and when it is done, store the image and finish the task (the same
flow as the poll loop and the sweeper). SQS hands out one message of a task at a time (the
message group is the task id), so two finalisers never download one task's image together.
A transient failure (provider down, download cut) fails the record: SQS delivers it again after
the visibility timeout, up to ``maxReceiveCount`` times, then parks it in the dead-letter queue;
the sweeper still finishes such a task (late callbacks get a poll) or expires it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_gateway import log_context
from image_gateway.adapters.aws import lazy_dependencies
from image_gateway.ports import TaskNotFound
from image_gateway.service.refresh import RetryLater, refresh_task
from image_gateway.sqs_batch import SqsRecord, process_batch

logger = Logger()
log_context.follow(logger)  # every line names its task and the request behind it
DEPS = lazy_dependencies()


def record_handler(record: SqsRecord) -> None:
    """One verified callback: refresh the task now (RetryLater fails the record)."""
    try:
        task_id = str(json.loads(record.body)["task_id"])
    except (ValueError, KeyError, TypeError):
        logger.error("malformed finalize message dropped", extra={"message_id": record.message_id})
        return
    logger.append_keys(task_id=task_id)
    try:
        result = refresh_task(DEPS.get(), task_id, by="callback", learned_at=_sent_at(record))
    except TaskNotFound:
        logger.warning("callback for a task that does not exist")
        return
    except RetryLater as transient:
        logger.warning("finalisation failed for now; SQS retries", extra={"why": str(transient)})
        raise
    logger.info("callback handled", extra={"status": result.task.status.value})


def _sent_at(record: SqsRecord) -> datetime | None:
    """When the webhook queued the callback (SQS's SentTimestamp): the gateway's overhead is
    measured from the callback's arrival, so it includes the queue hop."""
    sent = record.sent_timestamp
    try:
        return None if sent is None else datetime.fromtimestamp(int(sent) / 1000, UTC)
    except (ValueError, OverflowError):
        return None


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """SQS FIFO batch entry point (partial batch responses; batch size 1 in the template)."""
    # A failed record stops only the rest of its own task's messages (other tasks go on).
    return process_batch(event, record_handler, skip_group_on_error=True)
