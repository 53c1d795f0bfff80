"""EventPublisher against moto EventBridge, delivered through a rule to SQS (events.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest
from image_gateway.adapters.eventbridge import EventBridgePublisher as EventPublisher
from image_gateway.models.events import TaskEventDetail
from image_gateway.models.task import ImageOutput, Task, TaskError, TaskStatus
from image_gateway.ports import EventPublishError

SOURCE = "image-gateway"
TaskFactory = Callable[..., Task]


class Subscriber:
    """A custom bus with one rule that sends ``Image Task *`` events of SOURCE to a queue."""

    def __init__(self, events: Any, sqs: Any, bus_name: str) -> None:
        self.events, self.sqs, self.bus_name = events, sqs, bus_name
        self.queue_url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:12]}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name="image-tasks",
            EventBusName=bus_name,
            EventPattern=json.dumps(
                {"source": [SOURCE], "detail-type": [{"prefix": "Image Task"}]}
            ),
        )
        events.put_targets(
            Rule="image-tasks", EventBusName=bus_name, Targets=[{"Id": "q", "Arn": queue_arn}]
        )

    def received(self) -> list[dict[str, Any]]:
        """Every event the queue holds now (the whole EventBridge envelope)."""
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        return [json.loads(message["Body"]) for message in answer.get("Messages", [])]


@pytest.fixture
def events(aws: None) -> Any:
    return boto3.client("events", region_name="us-east-1")


@pytest.fixture
def subscriber(events: Any) -> Subscriber:
    bus_name = f"stack-image-tasks-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=bus_name)
    return Subscriber(events, boto3.client("sqs", region_name="us-east-1"), bus_name)


@pytest.fixture
def publisher(events: Any, subscriber: Subscriber) -> EventPublisher:
    return EventPublisher(events, subscriber.bus_name, SOURCE)


@pytest.fixture
def succeeded_task(make_task: TaskFactory) -> Task:
    task = make_task(status=TaskStatus.SUCCEEDED)
    return task.model_copy(
        update={
            "submitted_at": task.created_at + timedelta(seconds=1),
            "finished_at": task.created_at + timedelta(seconds=31),
            "outputs": [
                ImageOutput(
                    bucket="images",
                    key=f"outputs/client-a/2025/05/01/{task.task_id}/0.png",
                    content_type="image/png",
                    width=1024,
                    height=1024,
                    bytes=2048,
                    sha256="0f" * 32,
                )
            ],
        }
    )


def test_given_a_succeeded_task_when_published_then_the_subscriber_gets_its_detail(
    publisher: EventPublisher, subscriber: Subscriber, succeeded_task: Task
) -> None:
    publisher.publish(succeeded_task)

    (event,) = subscriber.received()
    assert event["detail"] == json.loads(
        TaskEventDetail.from_task(succeeded_task).model_dump_json()
    )


def test_given_a_succeeded_task_when_published_then_the_envelope_names_source_and_type(
    publisher: EventPublisher, subscriber: Subscriber, succeeded_task: Task
) -> None:
    publisher.publish(succeeded_task)

    (event,) = subscriber.received()
    assert (event["source"], event["detail-type"]) == (SOURCE, "Image Task Succeeded")
    assert event["detail"]["version"] == "1"
    assert event["detail"]["event_id"] == f"{succeeded_task.task_id}:succeeded"


def test_given_a_published_event_when_returned_then_it_is_the_detail_that_was_sent(
    publisher: EventPublisher, subscriber: Subscriber, succeeded_task: Task
) -> None:
    detail = publisher.publish(succeeded_task)

    (event,) = subscriber.received()
    assert TaskEventDetail.model_validate(event["detail"]) == detail


def test_given_a_failed_task_when_published_then_the_error_reaches_the_subscriber(
    publisher: EventPublisher, subscriber: Subscriber, make_task: TaskFactory
) -> None:
    error = TaskError(code="moderation_blocked", message="refused", provider="apimart")
    task = make_task(status=TaskStatus.FAILED, error=error)

    publisher.publish(task)

    (event,) = subscriber.received()
    assert event["detail-type"] == "Image Task Failed"
    assert TaskError.model_validate(event["detail"]["error"]) == error


def test_given_a_rule_on_the_default_bus_when_publishing_then_only_the_custom_bus_gets_it(
    publisher: EventPublisher, subscriber: Subscriber, events: Any, succeeded_task: Task
) -> None:
    on_default_bus = Subscriber(events, subscriber.sqs, "default")

    publisher.publish(succeeded_task)

    assert (len(subscriber.received()), on_default_bus.received()) == (1, [])


def test_given_a_bus_that_does_not_exist_when_publishing_then_event_publish_error(
    events: Any, succeeded_task: Task
) -> None:
    publisher = EventPublisher(events, "no-such-bus", SOURCE)

    with pytest.raises(EventPublishError, match=succeeded_task.task_id):
        publisher.publish(succeeded_task)
