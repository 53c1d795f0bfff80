"""DispatchQueue contract: ``InMemoryDispatchQueue`` and ``SqsDispatchQueue`` (moto).

A send queues one ``{"task_id", "provider"}`` message for the dispatch function; a queue that
does not take it is QueueUnavailable (the caller fails the task: nothing was spent).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from image_gateway.adapters.sqs_dispatch import SqsDispatchQueue
from image_gateway.ports import DispatchQueue, QueueUnavailable

from tests.fakes import InMemoryDispatchQueue

Message = dict[str, str]


@dataclass
class QueueUnderTest:
    """The queue, what it holds (as the dispatch function would receive it), and its outage."""

    queue: DispatchQueue
    queued: Callable[[], list[Message]]
    make_unavailable: Callable[[], None]


def _sqs_under_test(sqs: Any) -> QueueUnderTest:
    url = sqs.create_queue(QueueName=f"dispatch-{uuid.uuid4().hex[:12]}")["QueueUrl"]

    def queued() -> list[Message]:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]

    def make_unavailable() -> None:
        sqs.delete_queue(QueueUrl=url)  # e.g. a stack whose queue was removed

    return QueueUnderTest(SqsDispatchQueue(sqs, url), queued, make_unavailable)


def _memory_under_test() -> QueueUnderTest:
    fake = InMemoryDispatchQueue()

    def make_unavailable() -> None:
        fake.unavailable = True

    def queued() -> list[Message]:
        return [{"task_id": task_id, "provider": provider} for task_id, provider in fake.messages]

    return QueueUnderTest(fake, queued, make_unavailable)


@pytest.fixture
def dispatch(implementation: str, request: pytest.FixtureRequest) -> QueueUnderTest:
    """An empty dispatch queue: the fake, or an SQS queue on moto."""
    if implementation == "memory":
        return _memory_under_test()
    return _sqs_under_test(request.getfixturevalue("sqs"))


def test_given_a_sync_call_when_sent_then_one_message_names_the_task_and_provider(
    dispatch: QueueUnderTest,
) -> None:
    dispatch.queue.send("task-1", "mountsea-compat")

    assert dispatch.queued() == [{"task_id": "task-1", "provider": "mountsea-compat"}]


def test_given_two_sync_calls_when_sent_then_each_is_its_own_message(
    dispatch: QueueUnderTest,
) -> None:
    dispatch.queue.send("task-1", "mountsea-compat")
    dispatch.queue.send("task-2", "openai")

    assert sorted(dispatch.queued(), key=lambda m: m["task_id"]) == [
        {"task_id": "task-1", "provider": "mountsea-compat"},
        {"task_id": "task-2", "provider": "openai"},
    ]


def test_given_an_unavailable_queue_when_sending_then_queue_unavailable(
    dispatch: QueueUnderTest,
) -> None:
    dispatch.make_unavailable()

    with pytest.raises(QueueUnavailable):
        dispatch.queue.send("task-1", "mountsea-compat")
