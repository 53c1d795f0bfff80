"""In-memory fakes of every port, and ``FakeDependencies`` that wires them for flow tests.

Each fake passes the same contract suite as its adapter (``tests/contract``), so a flow test on
the fakes tests the flow, not a mock. No sockets, no sleeps, no AWS.
"""

from __future__ import annotations

import json
from typing import Any

from image_gateway.auth import WebhookSigner
from image_gateway.config import Settings
from image_gateway.providers.directory import ProviderDirectory
from image_gateway.timing import DEFAULT_TIMING, TimingPolicy

from tests.fakes.batches import FakeBatches, InMemoryBatchQueue, InMemoryBatchStore
from tests.fakes.health import (
    FakeHealth,
    InMemoryCircuitStore,
    InMemoryMeasurementStore,
    RecordingCircuitEvents,
)
from tests.fakes.inbox import FakeInboxDependencies, InMemoryInbox
from tests.fakes.limits import InMemoryUsageLedger, ManualClock
from tests.fakes.messaging import (
    InMemoryDispatchQueue,
    InMemoryFetcher,
    InMemoryFinalizeQueue,
    InMemoryPollLoops,
    InMemoryProviderSlots,
    RecordingEventPublisher,
)
from tests.fakes.metrics import MetricPoint, RecordingMetrics
from tests.fakes.providers import ProviderScript, ScriptedProviders, unavailable
from tests.fakes.stores import (
    InMemoryApiKeys,
    InMemoryDueIndex,
    InMemoryIdempotencyStore,
    InMemoryImageStore,
    InMemoryTaskStore,
)
from tests.fakes.webhooks import (
    FakeWebhooks,
    InMemoryWebhookDeliveries,
    InMemoryWebhookSecrets,
    RecordingWebhookTransport,
)

__all__ = [
    "FakeDependencies",
    "FakeHealth",
    "FakeInboxDependencies",
    "FakeWebhooks",
    "InMemoryApiKeys",
    "InMemoryCircuitStore",
    "InMemoryDispatchQueue",
    "InMemoryDueIndex",
    "InMemoryFetcher",
    "InMemoryFinalizeQueue",
    "InMemoryIdempotencyStore",
    "InMemoryImageStore",
    "InMemoryInbox",
    "InMemoryMeasurementStore",
    "InMemoryPollLoops",
    "InMemoryProviderSlots",
    "InMemoryTaskStore",
    "InMemoryUsageLedger",
    "InMemoryWebhookDeliveries",
    "InMemoryWebhookSecrets",
    "ManualClock",
    "MetricPoint",
    "ProviderScript",
    "RecordingCircuitEvents",
    "RecordingEventPublisher",
    "RecordingMetrics",
    "RecordingWebhookTransport",
    "ScriptedProviders",
    "fake_settings",
    "unavailable",
]

PUBLIC_BASE_URL = "https://gateway.example"


def fake_settings(**overrides: Any) -> Settings:
    """Settings of a stack with every registered provider, callbacks to a public URL."""
    values: dict[str, Any] = {
        "table_name": "tasks",
        "bucket_name": "images",
        "event_bus_name": "bus",
        "webhook_secret_arn": "webhook-secret",
        "provider_keys_secret_arn": "provider-keys",
        "default_providers": ["apimart", "mountsea-async", "mountsea-compat"],
        "public_base_url": PUBLIC_BASE_URL,
        "dispatch_queue_url": "https://queue.example/dispatch",
        "state_machine_arn": "arn:aws:states:us-east-1:1:stateMachine:poll",
    }
    values.update(overrides)
    return Settings(**values)


class FakeDependencies:
    """Every port as an in-memory fake (satisfies ``ports.Dependencies``).

    ``providers_document`` is the providers parameter (order, disabled, options, prices);
    change it with :meth:`configure` as an operator would edit the SSM parameter.
    """

    def __init__(
        self,
        *,
        default_image: bytes,
        settings: Settings | None = None,
        timing: TimingPolicy = DEFAULT_TIMING,
    ) -> None:
        self._settings = settings or fake_settings()
        self._timing = timing
        self.providers_document: dict[str, Any] = {"version": 1}
        self._directory = ProviderDirectory(
            self._settings, lambda: json.dumps(self.providers_document), ttl_seconds=0
        )
        self._tasks = InMemoryTaskStore(write_attempts=timing.task_write_attempts)
        self._images = InMemoryImageStore(
            self._settings.bucket_name, max_bytes=self._settings.max_image_bytes
        )
        self._events = RecordingEventPublisher()
        self._dispatch_queue = InMemoryDispatchQueue()
        self._finalize_queue = InMemoryFinalizeQueue()
        self._poll_loops = InMemoryPollLoops()
        self._slots = InMemoryProviderSlots()
        self._idempotency = InMemoryIdempotencyStore()
        self._api_keys = InMemoryApiKeys()
        self.clock = ManualClock()
        self._usage = InMemoryUsageLedger(clock=self.clock)
        self._providers = ScriptedProviders(self._directory, default_image)
        self._fetcher = InMemoryFetcher(max_bytes=self._settings.max_image_bytes)
        self._signer = WebhookSigner(b"fake-webhook-secret")
        self._metrics = RecordingMetrics()
        self._webhooks = FakeWebhooks()
        self._health = FakeHealth()
        self._batches = FakeBatches(InMemoryBatchStore(), InMemoryBatchQueue())

    def configure(self, **document: Any) -> None:
        """Replace the providers parameter's content (applies at once: no cache)."""
        self.providers_document = {"version": 1, **document}

    @property
    def settings(self) -> Settings:
        """Settings."""
        return self._settings

    @property
    def timing(self) -> TimingPolicy:
        """The timing policy."""
        return self._timing

    @property
    def tasks(self) -> InMemoryTaskStore:
        """Tasks."""
        return self._tasks

    @property
    def images(self) -> InMemoryImageStore:
        """Images."""
        return self._images

    @property
    def events(self) -> RecordingEventPublisher:
        """Events."""
        return self._events

    @property
    def dispatch_queue(self) -> InMemoryDispatchQueue:
        """The dispatch queue."""
        return self._dispatch_queue

    @property
    def slots(self) -> InMemoryProviderSlots:
        """Per-provider concurrency."""
        return self._slots

    @property
    def finalize_queue(self) -> InMemoryFinalizeQueue:
        """The finalize queue (verified callbacks; also makes this a CallbackDependencies)."""
        return self._finalize_queue

    @property
    def poll_loops(self) -> InMemoryPollLoops:
        """Poll loops."""
        return self._poll_loops

    @property
    def idempotency(self) -> InMemoryIdempotencyStore:
        """Idempotency keys."""
        return self._idempotency

    @property
    def api_keys(self) -> InMemoryApiKeys:
        """API keys."""
        return self._api_keys

    @property
    def due(self) -> InMemoryDueIndex:
        """What the sweeper's first look reads (over ``tasks`` and ``usage``)."""
        return InMemoryDueIndex(self._tasks, self._usage)

    @property
    def usage(self) -> InMemoryUsageLedger:
        """Per-client limits and counters (``clock`` moves their windows and days)."""
        return self._usage

    @property
    def directory(self) -> ProviderDirectory:
        """The provider directory over ``providers_document``."""
        return self._directory

    @property
    def providers(self) -> ScriptedProviders:
        """Scripted providers."""
        return self._providers

    @property
    def fetcher(self) -> InMemoryFetcher:
        """URL fetches."""
        return self._fetcher

    @property
    def signer(self) -> WebhookSigner:
        """Callback tokens."""
        return self._signer

    @property
    def metrics(self) -> RecordingMetrics:
        """Operator metrics."""
        return self._metrics

    @property
    def webhooks(self) -> FakeWebhooks:
        """Webhook secrets, the delivery queue and callers' receivers, in memory."""
        return self._webhooks

    @property
    def batches(self) -> FakeBatches:
        """Batches and the batch function's queue (messages recorded)."""
        return self._batches

    @property
    def health(self) -> FakeHealth:
        """Provider circuit breakers, their events and a clock, in memory."""
        return self._health
