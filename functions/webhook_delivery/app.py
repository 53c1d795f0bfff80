"""Signed webhooks to callers, from SQS: one attempt of one delivery per record.

Each record of ``WebhookQueue`` is a ``DeliveryMessage``; the attempt is made, recorded on the
task, and the next one queued (or the delivery dead-lettered) by ``webhooks.delivery.deliver``.
A record that raises (DynamoDB or KMS down) is received again after the visibility timeout.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_gateway import log_context
from image_gateway.adapters.aws import lazy_dependencies
from image_gateway.metrics import expect_invocations_without_metrics
from image_gateway.sqs_batch import SqsRecord, process_batch
from image_gateway.webhooks.delivery import deliver
from image_gateway.webhooks.models import DeliveryMessage
from pydantic import ValidationError

logger = Logger()
log_context.follow(logger)  # every line names its task and the request behind it
metrics = Metrics()
expect_invocations_without_metrics(metrics)  # most invocations count nothing
DEPS = lazy_dependencies()


def record_handler(record: SqsRecord) -> None:
    """One attempt (or a chained wait passed on)."""
    try:
        message = DeliveryMessage.model_validate_json(record.body)
    except ValidationError:
        logger.error("malformed webhook message dropped", extra={"message_id": record.message_id})
        return
    logger.append_keys(task_id=message.task_id, webhook_id=message.webhook_id)
    if message.batch_id is not None:  # a batch.completed webhook (rare: imported here)
        from image_gateway.webhooks.batch_delivery import deliver_batch

        attempt = deliver_batch(DEPS.get(), message)
    else:
        attempt = deliver(DEPS.get(), message)
    if attempt is not None:
        metrics.add_metric(name=f"Webhook{attempt.outcome.title()}", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """SQS batch entry point (partial batch responses)."""
    return process_batch(event, record_handler)
