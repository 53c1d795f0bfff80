"""Every provider call, from SQS: one attempt at one provider per record.

Each record of ``DispatchQueue`` is ``{"task_id", "provider"}`` (with ``"hedge": true``, a hedge
beside the task's attempt: ``service.hedging``): an async provider's create call, or a sync
provider's one long call (it may take minutes) after which the image is stored and the
task finished; a retryable failure queues an attempt at the next provider. Records that raise
are delivered again after the
visibility timeout; after ``maxReceiveCount`` deliveries they move to ``DispatchDeadLetterQueue``,
whose records (same function, second event source) fail the task with ``dispatch_failed`` and
its event, so that no task is lost silently.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_gateway import log_context
from image_gateway.adapters.aws import lazy_dependencies
from image_gateway.metrics import expect_invocations_without_metrics
from image_gateway.service.dispatch import dispatch, give_up
from image_gateway.service.hedge_dispatch import dispatch_hedge
from image_gateway.sqs_batch import SqsRecord, process_batch

logger = Logger()
log_context.follow(logger)  # every line names its task and the request behind it
metrics = Metrics()
expect_invocations_without_metrics(metrics)  # most invocations count nothing
DEPS = lazy_dependencies()


def record_handler(record: SqsRecord) -> None:
    """One sync call, or (from the dead-letter queue) the give-up path."""
    try:
        message = json.loads(record.body)
        task_id, provider = str(message["task_id"]), str(message["provider"])
        hedge = message.get("hedge") is True
    except (ValueError, KeyError, TypeError):
        logger.error("malformed dispatch message dropped", extra={"message_id": record.message_id})
        return
    logger.append_keys(task_id=task_id, provider=provider)
    if record.event_source_arn == os.environ.get("DISPATCH_DEAD_LETTER_QUEUE_ARN"):
        if hedge:  # a hedge that failed on every delivery: the task has its own attempt
            logger.error("hedge gave up: the task goes on with its first provider")
            return
        give_up(DEPS.get(), task_id, provider)
        metrics.add_metric(name="DispatchGaveUp", unit=MetricUnit.Count, value=1)
        return
    if hedge:
        dispatch_hedge(DEPS.get(), task_id, provider)
        return
    task = dispatch(DEPS.get(), task_id, provider)
    if task is not None and task.status.terminal:
        metrics.add_metric(
            name=f"Dispatch{task.status.value.title()}", unit=MetricUnit.Count, value=1
        )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """SQS batch entry point (partial batch responses; batch size 1 in the template)."""
    return process_batch(event, record_handler)
