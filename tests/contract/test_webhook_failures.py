"""WebhookFailures contract: ``RecordingWebhookFailures`` and ``EventBridgeWebhookFailures``.

A publish puts one ``Image Task Webhook Failed`` event with its versioned detail on the bus; an
event the bus refuses is an EventPublishError.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from image_gateway.adapters.eventbridge import EventBridgeWebhookFailures
from image_gateway.ports import EventPublishError
from image_gateway.webhooks.models import WEBHOOK_FAILED_DETAIL_TYPE, WebhookFailedDetail
from image_gateway.webhooks.ports import WebhookFailures

from tests.contract.test_event_publisher import SOURCE, RefusingOnce
from tests.fakes.webhooks import RecordingWebhookFailures

DETAIL = WebhookFailedDetail(
    event_id="msg_t1_succeeded:failed",
    task_id="t1",
    client_id="client-a",
    webhook_id="msg_t1_succeeded",
    event="image_task.succeeded",
    attempts=11,
    last_error="HTTP 503",
    callback_url="https://receiver.example/hooks",
)


@dataclass
class FailuresUnderTest:
    """The port, what subscribers received, and a bus that refuses once."""

    failures: WebhookFailures
    delivered: Callable[[], list[tuple[str, dict[str, Any]]]]
    refuse_next: Callable[[], None]


def _eventbridge(events: Any, sqs: Any) -> FailuresUnderTest:
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

    return FailuresUnderTest(
        EventBridgeWebhookFailures(client, bus, SOURCE), delivered, refuse_next
    )


def _memory() -> FailuresUnderTest:
    fake = RecordingWebhookFailures()

    def delivered() -> list[tuple[str, dict[str, Any]]]:
        published = [
            (WEBHOOK_FAILED_DETAIL_TYPE, d.model_dump(mode="json")) for d in fake.published
        ]
        fake.refuse = False
        return published

    def refuse_next() -> None:
        fake.refuse = True

    return FailuresUnderTest(fake, delivered, refuse_next)


@pytest.fixture
def bus(implementation: str, request: pytest.FixtureRequest) -> FailuresUnderTest:
    """A bus with one subscriber: the fake, or EventBridge on moto."""
    if implementation == "memory":
        return _memory()
    return _eventbridge(request.getfixturevalue("events_client"), request.getfixturevalue("sqs"))


def test_given_a_given_up_delivery_then_one_event_with_its_detail(bus: FailuresUnderTest) -> None:
    bus.failures.publish(DETAIL)

    assert bus.delivered() == [(WEBHOOK_FAILED_DETAIL_TYPE, DETAIL.model_dump(mode="json"))]


def test_given_a_refusing_bus_then_event_publish_error(bus: FailuresUnderTest) -> None:
    bus.refuse_next()

    with pytest.raises(EventPublishError):
        bus.failures.publish(DETAIL)
    assert bus.delivered() == []
