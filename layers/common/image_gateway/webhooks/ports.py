"""Ports of the signed webhooks to callers (``Dependencies.webhooks``), each a small Protocol.

Like :mod:`image_gateway.ports`: one AWS (or HTTP) adapter each, one in-memory fake in
``tests/fakes/webhooks.py``, one contract suite in ``tests/contract``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from image_gateway.webhooks.models import DeliveryMessage, WebhookFailedDetail


@dataclass(frozen=True)
class WebhookSecretSet:
    """A client's webhook secrets: the current one, and the previous one during a rollover."""

    current: str
    previous: str | None = None
    previous_until: datetime | None = None

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a delivery made at ``now`` is signed with (current first)."""
        if self.previous and self.previous_until and now < self.previous_until:
            return [self.current, self.previous]
        return [self.current]


class WebhookSecrets(Protocol):
    """Per-client ``whsec_`` secrets, stored encrypted, never logged."""

    def get(self, client_id: str) -> WebhookSecretSet:
        """The client's secrets, creating the first one on first use."""
        ...

    def rotate(self, client_id: str, *, previous_until: datetime) -> WebhookSecretSet:
        """A new current secret; the old one keeps signing until ``previous_until``."""
        ...


class WebhookDeliveries(Protocol):
    """The delivery queue (one message per attempt) and its dead-letter queue."""

    def send(self, message: DeliveryMessage, *, delay_seconds: int = 0) -> None:
        """Queue an attempt (at most 900 s later; QueueUnavailable when refused)."""
        ...

    def dead_letter(self, message: DeliveryMessage) -> None:
        """Park a delivery whose last attempt failed (QueueUnavailable when refused)."""
        ...


class WebhookTransport(Protocol):
    """POSTs to callers' URLs under the SSRF rules of every fetch (UnsafeUrl, DownloadFailed)."""

    def check_url(self, url: str) -> None:
        """Refuse a URL that can never be delivered to."""
        ...

    def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> int:
        """The HTTP status of one POST (redirects are not followed)."""
        ...


class WebhookFailures(Protocol):
    """``Image Task Webhook Failed`` events on the bus (EventPublishError when refused)."""

    def publish(self, detail: WebhookFailedDetail) -> None:
        """Announce a delivery that will not be tried again."""
        ...


class WebhookPorts(Protocol):
    """The three webhook ports together."""

    @property
    def secrets(self) -> WebhookSecrets:
        """Per-client webhook secrets."""
        ...

    @property
    def deliveries(self) -> WebhookDeliveries:
        """The delivery queue."""
        ...

    @property
    def transport(self) -> WebhookTransport:
        """POSTs to callers' URLs."""
        ...

    @property
    def failures(self) -> WebhookFailures:
        """Events of deliveries given up."""
        ...
