"""CircuitEvents contract: ``RecordingCircuitEvents`` and ``EventBridgeCircuitEvents``.

A publish puts one ``Provider Circuit Changed`` event with its versioned detail on the bus; an
event the bus refuses is an EventPublishError.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from image_gateway.adapters.eventbridge import EventBridgeCircuitEvents
from image_gateway.health.circuit import Circuit, CircuitState
from image_gateway.health.ports import CircuitEvents
from image_gateway.models.circuits import CIRCUIT_CHANGED_DETAIL_TYPE, CircuitChangedDetail
from image_gateway.ports import EventPublishError

from tests.contract.test_event_publisher import SOURCE, RefusingOnce
from tests.fakes import RecordingCircuitEvents

DETAIL = CircuitChangedDetail.of(
    CircuitState.CLOSED,
    Circuit(
        "apimart",
        state=CircuitState.OPEN,
        open_until=1_780_000_030.0,
        recent="SSFFFFF",
        changed_at=1_780_000_000.0,
        version=9,
    ),
    reason="5 retryable failures within 60 s (the last: provider_unavailable)",
    task_id="tsk_1",
)


@dataclass
class EventsUnderTest:
    """The port, what subscribers received, and a bus that refuses once."""

    events: CircuitEvents
    delivered: Callable[[], list[tuple[str, dict[str, Any]]]]
    refuse_next: Callable[[], None]


def _eventbridge(events: Any, sqs: Any) -> EventsUnderTest:
    bus = f"image-tasks-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=f"subscriber-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(Name="all", EventBusName=bus, EventPattern=json.dumps({"source": [SOURCE]}))
    events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    client = RefusingOnce(events)

    def delivered() -> list[tuple[str, dict[str, Any]]]:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        bodies = [json.loads(m["Body"]) for m in answer.get("Messages", [])]
        return [(b["detail-type"], b["detail"]) for b in bodies]

    def refuse_next() -> None:
        client.armed = True

    return EventsUnderTest(EventBridgeCircuitEvents(client, bus, SOURCE), delivered, refuse_next)


def _memory() -> EventsUnderTest:
    fake = RecordingCircuitEvents()

    def delivered() -> list[tuple[str, dict[str, Any]]]:
        published = [
            (CIRCUIT_CHANGED_DETAIL_TYPE, d.model_dump(mode="json")) for d in fake.published
        ]
        fake.refuse = False
        return published

    def refuse_next() -> None:
        fake.refuse = True

    return EventsUnderTest(fake, delivered, refuse_next)


@pytest.fixture
def bus(implementation: str, request: pytest.FixtureRequest) -> EventsUnderTest:
    """A bus with one subscriber: the fake, or EventBridge on moto."""
    if implementation == "memory":
        return _memory()
    return _eventbridge(request.getfixturevalue("events_client"), request.getfixturevalue("sqs"))


def test_given_a_change_then_one_event_with_its_detail(bus: EventsUnderTest) -> None:
    bus.events.publish(DETAIL)

    assert bus.delivered() == [(CIRCUIT_CHANGED_DETAIL_TYPE, DETAIL.model_dump(mode="json"))]
    assert DETAIL.event_id == "apimart:open:1780000000000"
    assert (DETAIL.recent_calls, DETAIL.success_rate) == (7, 0.286)


def test_given_a_refusing_bus_then_event_publish_error(bus: EventsUnderTest) -> None:
    bus.refuse_next()

    with pytest.raises(EventPublishError):
        bus.events.publish(DETAIL)
    assert bus.delivered() == []
