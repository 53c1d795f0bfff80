"""In-memory fakes of the webhook ports: secrets, the delivery queue, the HTTP transport."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable
from datetime import datetime

from image_gateway.errors import DownloadFailed, UnsafeUrl
from image_gateway.ports import EventPublishError, QueueUnavailable
from image_gateway.webhooks.models import DeliveryMessage, WebhookFailedDetail
from image_gateway.webhooks.ports import WebhookSecretSet
from image_gateway.webhooks.signing import new_secret


class InMemoryWebhookSecrets:
    """Secrets in a dict (the adapter encrypts them; the behaviour is the same)."""

    def __init__(self) -> None:
        self._sets: dict[str, WebhookSecretSet] = {}
        self._lock = threading.Lock()

    def get(self, client_id: str) -> WebhookSecretSet:
        """The client's secrets, creating the first one on first use."""
        with self._lock:
            return self._sets.setdefault(client_id, WebhookSecretSet(current=new_secret()))

    def rotate(self, client_id: str, *, previous_until: datetime) -> WebhookSecretSet:
        """A new current secret; the old one keeps signing until ``previous_until``."""
        old = self.get(client_id)
        with self._lock:
            rotated = WebhookSecretSet(
                current=new_secret(), previous=old.current, previous_until=previous_until
            )
            self._sets[client_id] = rotated
            return rotated


class InMemoryWebhookDeliveries:
    """Queued attempts with their delays, and the dead-letter queue, in lists."""

    def __init__(self) -> None:
        self.messages: list[tuple[DeliveryMessage, int]] = []
        self.dead_letters: list[DeliveryMessage] = []
        self.unavailable = False

    def send(self, message: DeliveryMessage, *, delay_seconds: int = 0) -> None:
        """Queue an attempt (at most 900 s later)."""
        if self.unavailable:
            raise QueueUnavailable("the webhook queue is unavailable")
        self.messages.append((message, max(0, min(900, delay_seconds))))

    def dead_letter(self, message: DeliveryMessage) -> None:
        """Park a given-up delivery."""
        if self.unavailable:
            raise QueueUnavailable("the webhook dead-letter queue is unavailable")
        self.dead_letters.append(message)

    def take(self) -> list[DeliveryMessage]:
        """Every queued message, removing them (what the delivery function receives)."""
        taken, self.messages = self.messages, []
        return [message for message, _delay in taken]


Receiver = Callable[[str, bytes, dict[str, str]], int]


class RecordingWebhookTransport:
    """Receives POSTs in memory: ``answer`` decides each status; refuses private-looking URLs.

    The SSRF rules themselves are SafeFetcher's, tested in tests/unit/test_fetch*; this fake
    refuses ``http://`` and hosts under ``.internal`` so flows can exercise a refusal.
    """

    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []
        self.answer: Receiver = lambda _url, _body, _headers: 200

    def check_url(self, url: str) -> None:
        """Refuse what the fake deems unsafe."""
        if not url.startswith("https://"):
            raise UnsafeUrl("only https URLs can be fetched", reason="scheme")
        host = url.split("/")[2].rsplit(":", 1)[0].strip("[]")
        try:
            private = not ipaddress.ip_address(host).is_global
        except ValueError:  # a name: ``.internal`` ones stand for names resolving privately
            private = host.endswith(".internal")
        if private:
            raise UnsafeUrl("private addresses are refused", reason="private_address")
        if "nxdomain" in url:
            raise DownloadFailed("could not resolve the host", retryable=False)

    def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> int:
        """Record the POST; its status from ``answer`` (which may raise DownloadFailed)."""
        self.check_url(url)
        self.posts.append((url, body, dict(headers)))
        return self.answer(url, body, headers)


class RecordingWebhookFailures:
    """Keeps every ``Image Task Webhook Failed`` detail; ``refuse`` makes publish fail."""

    def __init__(self) -> None:
        self.published: list[WebhookFailedDetail] = []
        self.refuse = False

    def publish(self, detail: WebhookFailedDetail) -> None:
        """Record the event (EventPublishError when refusing)."""
        if self.refuse:
            raise EventPublishError(f"refused {detail.event_id}")
        self.published.append(detail)


class FakeWebhooks:
    """The three webhook fakes together (``Dependencies.webhooks``)."""

    def __init__(self) -> None:
        self.secrets = InMemoryWebhookSecrets()
        self.deliveries = InMemoryWebhookDeliveries()
        self.transport = RecordingWebhookTransport()
        self.failures = RecordingWebhookFailures()
