"""EventBridgePublisher: ``Image Task *`` events on the custom bus (``ports.EventPublisher``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from image_gateway.models.events import TaskEventDetail
from image_gateway.models.task import Task
from image_gateway.ports import EventPublishError
from image_gateway.webhooks.models import WEBHOOK_FAILED_DETAIL_TYPE, WebhookFailedDetail

if TYPE_CHECKING:  # the circuit model is imported when one changes (rare): not at cold start
    from image_gateway.batches.events import BatchEventDetail
    from image_gateway.models.circuits import CircuitChangedDetail


class _Bus:
    """One custom bus: puts one event and turns every way that fails into EventPublishError."""

    def __init__(self, events_client: Any, bus_name: str, source: str) -> None:
        self._events = events_client
        self._bus = bus_name
        self._source = source

    def _put(self, detail_type: str, detail_json: str, event_id: str) -> None:
        entry = {
            "EventBusName": self._bus,
            "Source": self._source,
            "DetailType": detail_type,
            "Detail": detail_json,
            "Resources": [],
        }
        try:
            answer = self._events.put_events(Entries=[entry])
        except (BotoCoreError, ClientError) as exc:  # throttled past retries, bus gone, network
            raise EventPublishError(f"PutEvents failed for {event_id}: {exc}") from exc
        if answer.get("FailedEntryCount", 0):
            failed = answer["Entries"][0]
            raise EventPublishError(
                f"PutEvents refused {event_id}: "
                f"{failed.get('ErrorCode')} {failed.get('ErrorMessage')}"
            )


class EventBridgePublisher(_Bus):
    """Puts one event per terminal (and submitted) status; checks FailedEntryCount."""

    def publish(self, task: Task) -> TaskEventDetail:
        """Emit the event for the task's current status and return its detail."""
        detail = TaskEventDetail.from_task(task)
        self._put(detail.detail_type, detail.model_dump_json(), detail.event_id)
        return detail


class EventBridgeWebhookFailures(_Bus):
    """Puts ``Image Task Webhook Failed`` on the custom bus (``webhooks.ports.WebhookFailures``)."""

    def publish(self, detail: WebhookFailedDetail) -> None:
        """Emit the event; EventPublishError when the bus refuses it."""
        self._put(WEBHOOK_FAILED_DETAIL_TYPE, detail.model_dump_json(), detail.event_id)


class EventBridgeCircuitEvents(_Bus):
    """Puts ``Provider Circuit Changed`` on the custom bus (``health.ports.CircuitEvents``)."""

    def publish(self, detail: CircuitChangedDetail) -> None:
        """Emit the event; EventPublishError when the bus refuses it."""
        from image_gateway.models import circuits

        self._put(circuits.CIRCUIT_CHANGED_DETAIL_TYPE, detail.model_dump_json(), detail.event_id)


class EventBridgeBatchEvents(_Bus):
    """Puts ``Image Batch Completed`` on the custom bus (``batches.events.BatchEvents``)."""

    def publish(self, detail: BatchEventDetail) -> None:
        """Emit the event; EventPublishError when the bus refuses it."""
        from image_gateway.batches.events import BATCH_DETAIL_TYPE

        self._put(BATCH_DETAIL_TYPE, detail.model_dump_json(), detail.event_id)
