"""SqsWebhookDeliveries: webhook attempts on the delivery queue
(``webhooks.ports.WebhookDeliveries``)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from image_gateway.ports import QueueUnavailable
from image_gateway.webhooks.models import DeliveryMessage


class SqsWebhookDeliveries:
    """One message per attempt on ``queue_url``; given-up deliveries on ``dead_letter_url``."""

    def __init__(self, sqs_client: Any, queue_url: str | None, dead_letter_url: str | None) -> None:
        self._sqs = sqs_client
        self._url = queue_url
        self._dead_letter_url = dead_letter_url

    def send(self, message: DeliveryMessage, *, delay_seconds: int = 0) -> None:
        """Queue an attempt (SQS delays up to 15 minutes); QueueUnavailable when refused."""
        self._put(self._url, message, max(0, min(900, delay_seconds)))

    def dead_letter(self, message: DeliveryMessage) -> None:
        """Park a delivery whose last attempt failed."""
        self._put(self._dead_letter_url, message, 0)

    def _put(self, url: str | None, message: DeliveryMessage, delay: int) -> None:
        if not url:
            raise QueueUnavailable("the webhook queue is not configured for this function")
        try:
            self._sqs.send_message(
                QueueUrl=url, MessageBody=message.model_dump_json(), DelaySeconds=delay
            )
        except (BotoCoreError, ClientError) as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc
