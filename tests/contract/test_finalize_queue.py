"""FinalizeQueue contract: ``InMemoryFinalizeQueue`` and ``SqsFinalizeQueue`` (FIFO, on moto).

A send queues one ``{"task_id", "provider"}`` message in the task's message group; copies of one
callback (same task and digest) are one message; another callback of the same task waits until
the first is settled (one finaliser per task at a time) while other tasks' messages flow; a
queue that does not take the message is QueueUnavailable (the webhook answers 503).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from image_gateway.adapters.sqs_finalize import SqsFinalizeQueue
from image_gateway.ports import FinalizeQueue, QueueUnavailable

from devstack.template import load_template
from tests.fakes import InMemoryFinalizeQueue

Message = dict[str, str]


@dataclass
class QueueUnderTest:
    """The queue and, as the finalize function's event source sees it, receiving and deleting."""

    queue: FinalizeQueue
    receive: Callable[[], Message | None]
    """The next message SQS would hand out now (it stays in flight until ``delete``)."""
    delete: Callable[[Message], None]
    make_unavailable: Callable[[], None]


def _sqs_under_test(sqs: Any) -> QueueUnderTest:
    properties = load_template()["Resources"]["FinalizeQueue"]["Properties"]
    attributes = {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in properties.items()
        if name in ("FifoQueue", "DeduplicationScope", "FifoThroughputLimit")
    }
    url = sqs.create_queue(
        QueueName=f"finalize-{uuid.uuid4().hex[:12]}.fifo", Attributes=attributes
    )["QueueUrl"]
    handles: dict[str, str] = {}

    def receive() -> Message | None:
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"], VisibilityTimeout=60
        )
        messages = answer.get("Messages", [])
        if not messages:
            return None
        body: Message = json.loads(messages[0]["Body"])
        body["group"] = messages[0]["Attributes"]["MessageGroupId"]
        handles[body["group"]] = messages[0]["ReceiptHandle"]
        return body

    def delete(message: Message) -> None:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=handles.pop(message["group"]))

    def make_unavailable() -> None:
        sqs.delete_queue(QueueUrl=url)

    return QueueUnderTest(SqsFinalizeQueue(sqs, url), receive, delete, make_unavailable)


def _memory_under_test() -> QueueUnderTest:
    fake = InMemoryFinalizeQueue()
    taken: dict[str, Any] = {}

    def receive() -> Message | None:
        message = fake.receive()
        if message is None:
            return None
        taken[message.task_id] = message
        return {"task_id": message.task_id, "provider": message.provider, "group": message.task_id}

    def delete(message: Message) -> None:
        fake.settle(taken.pop(message["group"]), succeeded=True)

    def make_unavailable() -> None:
        fake.unavailable = True

    return QueueUnderTest(fake, receive, delete, make_unavailable)


@pytest.fixture
def finalize(implementation: str, request: pytest.FixtureRequest) -> QueueUnderTest:
    """An empty finalize queue: the fake, or a FIFO queue on moto like the template's."""
    if implementation == "memory":
        return _memory_under_test()
    return _sqs_under_test(request.getfixturevalue("sqs"))


def test_given_a_callback_when_sent_then_one_message_names_the_task_in_its_own_group(
    finalize: QueueUnderTest,
) -> None:
    finalize.queue.send("task-1", "apimart", "digest-a")

    assert finalize.receive() == {"task_id": "task-1", "provider": "apimart", "group": "task-1"}


def test_given_twenty_copies_of_one_callback_when_sent_then_one_message(
    finalize: QueueUnderTest,
) -> None:
    for _ in range(20):
        finalize.queue.send("task-1", "apimart", "digest-a")

    first = finalize.receive()
    assert first is not None
    finalize.delete(first)
    assert finalize.receive() is None


def test_given_two_callbacks_of_one_task_then_the_second_waits_for_the_first(
    finalize: QueueUnderTest,
) -> None:
    finalize.queue.send("task-1", "apimart", "digest-a")
    finalize.queue.send("task-1", "apimart", "digest-b")

    first = finalize.receive()
    assert first is not None and first["task_id"] == "task-1"
    assert finalize.receive() is None  # one message of a task in flight at a time
    finalize.delete(first)
    second = finalize.receive()
    assert second is not None and second["task_id"] == "task-1"


def test_given_callbacks_of_two_tasks_then_both_are_handed_out_at_once(
    finalize: QueueUnderTest,
) -> None:
    finalize.queue.send("task-1", "apimart", "digest-a")
    finalize.queue.send("task-2", "apimodels", "digest-a")

    first, second = finalize.receive(), finalize.receive()

    assert first is not None and second is not None
    assert {first["task_id"], second["task_id"]} == {"task-1", "task-2"}


def test_given_an_unavailable_queue_when_sending_then_queue_unavailable(
    finalize: QueueUnderTest,
) -> None:
    finalize.make_unavailable()

    with pytest.raises(QueueUnavailable):
        finalize.queue.send("task-1", "apimart", "digest-a")
