"""EventBridgePublisher: ``Image Task *`` events on the custom bus (``ports.EventPublisher``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from image_gateway.models.events import TaskEventDetail
from image_gateway.models.task import Task
from image_gateway.models.webhooks import WEBHOOK_FAILED_DETAIL_TYPE, WebhookFailedDetail
from image_gateway.ports import EventPublishError

if TYPE_CHECKING:  # the circuit model is imported when one changes (rare): not at cold start
    from image_gateway.models.circuits import CircuitChangedDetail


class EventBridgePublisher:
    """Puts one event per terminal (and submitted) status; checks FailedEntryCount."""

    def __init__(self, events_client: Any, bus_name: str, source: str) -> None:
        self._events = events_client
        self._bus = bus_name
        self._source = source

    def publish(self, task: Task) -> TaskEventDetail:
        """Emit the event for the task's current status and return its detail."""
        detail = TaskEventDetail.from_task(task)
        entry = {
            "EventBusName": self._bus,
            "Source": self._source,
            "DetailType": detail.detail_type,
            "Detail": detail.model_dump_json(),
            "Resources": [],
        }
        try:
            answer = self._events.put_events(Entries=[entry])
        except (BotoCoreError, ClientError) as exc:  # throttled past retries, bus gone, network
            raise EventPublishError(f"PutEvents failed for {detail.event_id}: {exc}") from exc
        if answer.get("FailedEntryCount", 0):
            failed = answer["Entries"][0]
            raise EventPublishError(
                f"PutEvents refused {detail.event_id}: "
                f"{failed.get('ErrorCode')} {failed.get('ErrorMessage')}"
            )
        return detail


class EventBridgeWebhookFailures:
    """Puts ``Image Task Webhook Failed`` on the custom bus (``webhook_ports.WebhookFailures``)."""

    def __init__(self, events_client: Any, bus_name: str, source: str) -> None:
        self._events = events_client
        self._bus = bus_name
        self._source = source

    def publish(self, detail: WebhookFailedDetail) -> None:
        """Emit the event; EventPublishError when the bus refuses it."""
        entry = {
            "EventBusName": self._bus,
            "Source": self._source,
            "DetailType": WEBHOOK_FAILED_DETAIL_TYPE,
            "Detail": detail.model_dump_json(),
            "Resources": [],
        }
        try:
            answer = self._events.put_events(Entries=[entry])
        except (BotoCoreError, ClientError) as exc:
            raise EventPublishError(f"PutEvents failed for {detail.event_id}: {exc}") from exc
        if answer.get("FailedEntryCount", 0):
            raise EventPublishError(f"PutEvents refused {detail.event_id}")


class EventBridgeCircuitEvents:
    """Puts ``Provider Circuit Changed`` on the custom bus (``health.ports.CircuitEvents``)."""

    def __init__(self, events_client: Any, bus_name: str, source: str) -> None:
        self._events = events_client
        self._bus = bus_name
        self._source = source

    def publish(self, detail: CircuitChangedDetail) -> None:
        """Emit the event; EventPublishError when the bus refuses it."""
        from image_gateway.models import circuits

        entry = {
            "EventBusName": self._bus,
            "Source": self._source,
            "DetailType": circuits.CIRCUIT_CHANGED_DETAIL_TYPE,
            "Detail": detail.model_dump_json(),
            "Resources": [],
        }
        try:
            answer = self._events.put_events(Entries=[entry])
        except (BotoCoreError, ClientError) as exc:
            raise EventPublishError(f"PutEvents failed for {detail.event_id}: {exc}") from exc
        if answer.get("FailedEntryCount", 0):
            raise EventPublishError(f"PutEvents refused {detail.event_id}")
