"""The signed ``batch.completed`` webhook: queued by a batch's finisher, attempted by the
delivery function like a task's (same queue, retries, signing and SSRF checks), with the batch
as ``GET /v1/batches/{id}`` answers it as its body."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

from aws_lambda_powertools import Logger

from image_gateway.batches.events import BatchWebhookPayload
from image_gateway.batches.ports import Batch
from image_gateway.models.batches import BatchView
from image_gateway.models.task import DeliveryRecord, TaskStatus, utc_now
from image_gateway.ports import Dependencies, QueueUnavailable
from image_gateway.webhooks.delivery import post_signed, waits_on
from image_gateway.webhooks.models import DeliveryMessage

logger = Logger(child=True)


def announce_batch(deps: Dependencies, batch: Batch) -> None:
    """Queue the ``batch.completed`` delivery of a batch that asked for one."""
    if batch.callback_url is None:
        return
    message = DeliveryMessage(
        webhook_id=f"msg_{batch.batch_id}_completed",
        task_id=batch.batch_id,
        status=TaskStatus.SUCCEEDED,
        attempt=1,
        batch_id=batch.batch_id,
    )
    try:
        deps.webhooks.deliveries.send(message)
    except QueueUnavailable:
        logger.exception("batch webhook not queued", extra={"batch_id": batch.batch_id})


def deliver_batch(
    deps: Dependencies,
    message: DeliveryMessage,
    *,
    now: Callable[[], datetime] = utc_now,
    draw: Callable[[], float] = random.random,
) -> DeliveryRecord | None:
    """One attempt of a ``batch.completed`` webhook, once the batch is final (its finisher
    queues it just before it marks it so: until then the message waits a little)."""
    started = now()
    if waits_on(deps, message, started):
        return None
    batch = deps.batches.store.get(message.batch_id or "")
    if batch is None or batch.callback_url is None:
        return None
    if not batch.status.final:
        deps.webhooks.deliveries.send(message, delay_seconds=5)
        return None
    ttl = deps.settings.output_url_ttl_seconds
    view = BatchView.from_batch(batch, presign=lambda k: deps.images.presigned_get_url(k, ttl))
    body = BatchWebhookPayload(timestamp=batch.completed_at or started, data=view)
    record = post_signed(
        deps, message, batch.client_id, batch.callback_url, body.model_dump_json().encode(),
        started, draw,
    )  # fmt: skip
    deps.metrics.put("WebhookAttempts", 1, "Count", {"Outcome": record.outcome})
    logger.info(
        "batch webhook attempt",
        extra={"batch_id": batch.batch_id, "attempt": message.attempt, "outcome": record.outcome},
    )
    return record
