"""AwsWebhooks: the webhook ports on AWS (``webhooks.ports.WebhookPorts``), built on first use."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from image_gateway.adapters.kms_webhook_secrets import KmsWebhookSecrets
from image_gateway.adapters.sqs_webhooks import SqsWebhookDeliveries
from image_gateway.config import Settings
from image_gateway.timing import TimingPolicy

if TYPE_CHECKING:  # httpx: imported by the delivery function only (see transport)
    from image_gateway.adapters.eventbridge import EventBridgeWebhookFailures
    from image_gateway.webhooks.transport import SafePoster


class AwsWebhooks:
    """KMS-encrypted secrets in the tasks table, the SQS delivery queues, SSRF-safe POSTs."""

    def __init__(
        self,
        settings: Settings,
        timing: TimingPolicy,
        dynamodb: Any,
        client: Callable[[str], Any],
    ) -> None:
        self._settings = settings
        self._timing = timing
        self._dynamodb = dynamodb
        self._client = client

    @cached_property
    def secrets(self) -> KmsWebhookSecrets:
        """Per-client webhook secrets (KMS-encrypted, in the tasks table)."""
        key_id = self._settings.webhook_key_id
        if not key_id:
            raise RuntimeError("WEBHOOK_KEY_ID is not configured for this function")
        return KmsWebhookSecrets(
            self._dynamodb, self._client("kms"), self._settings.table_name, key_id
        )

    @cached_property
    def deliveries(self) -> SqsWebhookDeliveries:
        """The webhook delivery queue and its dead-letter queue."""
        return SqsWebhookDeliveries(
            self._client("sqs"),
            self._settings.webhook_queue_url,
            self._settings.webhook_dead_letter_queue_url,
        )

    @cached_property
    def transport(self) -> SafePoster:
        """SSRF-safe POSTs to callers' webhook URLs (no redirects).

        Imported here: only the delivery function posts, and the module imports httpx (about
        15 ms that the API's cold start would otherwise pay for the secret routes).
        """
        from image_gateway.webhooks.transport import SafePoster

        return SafePoster(
            self._settings.fetch_allow_private_hosts,
            timeout=self._timing.webhook_timeout_seconds,
            max_redirects=0,
        )

    @cached_property
    def failures(self) -> EventBridgeWebhookFailures:
        """``Image Task Webhook Failed`` events on the stack's bus.

        Imported here: only a delivery's last failed attempt publishes one, and the module (with
        the event models) is no part of a delivery function's first event.
        """
        from image_gateway.adapters.eventbridge import EventBridgeWebhookFailures

        settings = self._settings
        return EventBridgeWebhookFailures(
            self._client("events"), settings.event_bus_name, settings.event_source
        )
