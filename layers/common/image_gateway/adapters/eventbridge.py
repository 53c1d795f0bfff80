"""EventBridgePublisher: ``Image Task *`` events on the custom bus (``ports.EventPublisher``)."""

from __future__ import annotations

from typing import Any

from image_gateway.models.events import TaskEventDetail
from image_gateway.models.task import Task
from image_gateway.ports import EventPublishError


class EventBridgePublisher:
    """Puts one event per terminal (and submitted) status; checks FailedEntryCount."""

    def __init__(self, events_client: Any, bus_name: str, source: str) -> None:
        self._events = events_client
        self._bus = bus_name
        self._source = source

    def publish(self, task: Task) -> TaskEventDetail:
        """Emit the event for the task's current status and return its detail."""
        detail = TaskEventDetail.from_task(task)
        answer = self._events.put_events(
            Entries=[
                {
                    "EventBusName": self._bus,
                    "Source": self._source,
                    "DetailType": detail.detail_type,
                    "Detail": detail.model_dump_json(),
                    "Resources": [],
                }
            ]
        )
        if answer.get("FailedEntryCount", 0):
            entry = answer["Entries"][0]
            raise EventPublishError(
                f"PutEvents refused {detail.event_id}: "
                f"{entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
            )
        return detail
