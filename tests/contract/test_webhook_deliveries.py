"""WebhookDeliveries contract: ``InMemoryWebhookDeliveries`` and ``SqsWebhookDeliveries``.

``send`` queues one attempt for the delivery function; ``dead_letter`` parks a delivery whose
last attempt failed; a queue that does not take a message is QueueUnavailable.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from image_gateway.adapters.sqs_webhooks import SqsWebhookDeliveries
from image_gateway.models.task import TaskStatus
from image_gateway.ports import QueueUnavailable
from image_gateway.webhooks.models import DeliveryMessage
from image_gateway.webhooks.ports import WebhookDeliveries

from tests.fakes import InMemoryWebhookDeliveries

MESSAGE = DeliveryMessage(
    webhook_id="msg_task-1_succeeded", task_id="task-1", status=TaskStatus.SUCCEEDED, attempt=1
)


@dataclass
class DeliveriesUnderTest:
    """The port, what each queue holds, and an outage."""

    deliveries: WebhookDeliveries
    queued: Callable[[], list[DeliveryMessage]]
    dead: Callable[[], list[DeliveryMessage]]
    make_unavailable: Callable[[], None]


def _sqs(sqs: Any) -> DeliveriesUnderTest:
    url = sqs.create_queue(QueueName=f"webhooks-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    dead_url = sqs.create_queue(QueueName=f"webhooks-dlq-{uuid.uuid4().hex[:12]}")["QueueUrl"]

    def read(queue: str) -> Callable[[], list[DeliveryMessage]]:
        def messages() -> list[DeliveryMessage]:
            answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
            return [
                DeliveryMessage.model_validate_json(m["Body"]) for m in answer.get("Messages", [])
            ]

        return messages

    def make_unavailable() -> None:
        sqs.delete_queue(QueueUrl=url)
        sqs.delete_queue(QueueUrl=dead_url)

    return DeliveriesUnderTest(
        SqsWebhookDeliveries(sqs, url, dead_url), read(url), read(dead_url), make_unavailable
    )


def _memory() -> DeliveriesUnderTest:
    fake = InMemoryWebhookDeliveries()

    def make_unavailable() -> None:
        fake.unavailable = True

    return DeliveriesUnderTest(
        fake, lambda: [m for m, _ in fake.messages], lambda: fake.dead_letters, make_unavailable
    )


@pytest.fixture
def queues(implementation: str, request: pytest.FixtureRequest) -> DeliveriesUnderTest:
    """Empty delivery and dead-letter queues: the fake, or SQS on moto."""
    if implementation == "memory":
        return _memory()
    return _sqs(request.getfixturevalue("sqs"))


def test_given_an_attempt_when_sent_then_the_message_round_trips(
    queues: DeliveriesUnderTest,
) -> None:
    queues.deliveries.send(MESSAGE)

    assert queues.queued() == [MESSAGE]
    assert queues.dead() == []


def test_given_a_given_up_delivery_then_it_is_on_the_dead_letter_queue(
    queues: DeliveriesUnderTest,
) -> None:
    queues.deliveries.dead_letter(MESSAGE)

    assert queues.dead() == [MESSAGE]
    assert queues.queued() == []


def test_given_an_unavailable_queue_then_queue_unavailable(queues: DeliveriesUnderTest) -> None:
    queues.make_unavailable()

    with pytest.raises(QueueUnavailable):
        queues.deliveries.send(MESSAGE)
    with pytest.raises(QueueUnavailable):
        queues.deliveries.dead_letter(MESSAGE)
