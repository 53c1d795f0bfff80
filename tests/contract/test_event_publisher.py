"""EventPublisher contract: ``RecordingEventPublisher`` and ``EventBridgePublisher`` (moto).

A publish puts the versioned event of the task's current status on the bus and returns its
detail; an event the bus refuses (PutEvents' FailedEntryCount) is an EventPublishError, and
nothing reaches subscribers. Delivery through a rule (envelope, default bus untouched) is
pinned in tests/integration/domain/test_event_publisher_eventbridge.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from image_gateway.adapters.eventbridge import EventBridgePublisher
from image_gateway.models.events import TaskEventDetail
from image_gateway.models.task import Task, TaskError, TaskStatus
from image_gateway.ports import EventPublisher, EventPublishError

from tests.fakes import RecordingEventPublisher

SOURCE = "image-gateway"
TaskFactory = Callable[..., Task]


@dataclass
class PublisherUnderTest:
    """The publisher, what subscribers of the bus received, and a bus that refuses once."""

    publisher: EventPublisher
    delivered: Callable[[], list[dict[str, Any]]]
    """``(detail-type, detail)`` of every event the bus delivered, as JSON."""
    refuse_next: Callable[[], None]


class RefusingOnce:
    """An EventBridge client whose next PutEvents answer reports the entry as failed.

    That is how PutEvents refuses (HTTP 200, ``FailedEntryCount``), e.g. when throttled; moto
    raises for a missing bus instead, so the answer is made here and the call never reaches it.
    """

    def __init__(self, events: Any) -> None:
        self._events = events
        self.armed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._events, name)

    def put_events(self, **kwargs: Any) -> Any:
        """Refuse every entry once when armed; pass through otherwise."""
        if not self.armed:
            return self._events.put_events(**kwargs)
        self.armed = False
        failed = {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
        return {"FailedEntryCount": len(kwargs["Entries"]), "Entries": [failed]}


def _eventbridge_under_test(events: Any, sqs: Any) -> PublisherUnderTest:
    bus = f"image-tasks-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=f"subscriber-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(Name="all", EventBusName=bus, EventPattern=json.dumps({"source": [SOURCE]}))
    events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    client = RefusingOnce(events)

    def delivered() -> list[dict[str, Any]]:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        bodies = [json.loads(m["Body"]) for m in answer.get("Messages", [])]
        return [{"detail-type": b["detail-type"], "detail": b["detail"]} for b in bodies]

    def refuse_next() -> None:
        client.armed = True

    return PublisherUnderTest(EventBridgePublisher(client, bus, SOURCE), delivered, refuse_next)


def _recording_under_test() -> PublisherUnderTest:
    fake = RecordingEventPublisher()

    def delivered() -> list[dict[str, Any]]:
        return [
            {"detail-type": e.detail_type, "detail": json.loads(e.model_dump_json())}
            for e in fake.published
        ]

    def refuse_next() -> None:
        fake.refuse_next += 1

    return PublisherUnderTest(fake, delivered, refuse_next)


@pytest.fixture
def bus(implementation: str, request: pytest.FixtureRequest) -> PublisherUnderTest:
    """A publisher on an empty bus: the fake, or EventBridge on moto with one subscriber."""
    if implementation == "memory":
        return _recording_under_test()
    return _eventbridge_under_test(
        request.getfixturevalue("events_client"), request.getfixturevalue("sqs")
    )


def test_given_a_succeeded_task_when_published_then_its_detail_comes_back(
    bus: PublisherUnderTest, make_task: TaskFactory
) -> None:
    task = make_task(status=TaskStatus.SUCCEEDED)

    detail = bus.publisher.publish(task)

    assert detail == TaskEventDetail.from_task(task)
    assert (detail.detail_type, detail.event_id) == (
        "Image Task Succeeded",
        f"{task.task_id}:succeeded",
    )


def test_given_a_failed_task_when_published_then_subscribers_get_the_failed_event(
    bus: PublisherUnderTest, make_task: TaskFactory
) -> None:
    error = TaskError(code="moderation_blocked", message="refused", provider="apimart")
    task = make_task(status=TaskStatus.FAILED, error=error)

    bus.publisher.publish(task)

    (event,) = bus.delivered()
    assert event["detail-type"] == "Image Task Failed"
    assert event["detail"] == json.loads(TaskEventDetail.from_task(task).model_dump_json())


@pytest.mark.parametrize("status", [TaskStatus.QUEUED, TaskStatus.RUNNING], ids=str)
def test_given_a_status_without_an_event_when_published_then_it_is_refused_and_not_sent(
    bus: PublisherUnderTest, make_task: TaskFactory, status: TaskStatus
) -> None:
    with pytest.raises(KeyError):
        bus.publisher.publish(make_task(status=status))

    assert bus.delivered() == []


def test_given_the_bus_refuses_when_publishing_then_event_publish_error_names_the_event(
    bus: PublisherUnderTest, make_task: TaskFactory
) -> None:
    task = make_task(status=TaskStatus.SUCCEEDED)
    bus.refuse_next()

    with pytest.raises(EventPublishError, match=f"{task.task_id}:succeeded"):
        bus.publisher.publish(task)


def test_given_the_bus_refused_once_when_publishing_again_then_only_the_retry_is_delivered(
    bus: PublisherUnderTest, make_task: TaskFactory
) -> None:
    task = make_task(status=TaskStatus.SUCCEEDED)
    bus.refuse_next()
    with pytest.raises(EventPublishError):
        bus.publisher.publish(task)

    bus.publisher.publish(task)

    assert [e["detail"]["event_id"] for e in bus.delivered()] == [f"{task.task_id}:succeeded"]
