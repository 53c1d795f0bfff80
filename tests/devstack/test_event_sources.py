"""devstack's SQS event sources on moto: a FIFO queue's message groups are handled one message at
a time (as Lambda's event source does), other groups in parallel; a failed record comes back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from devstack.event_sources import EventSources, QueueSource
from devstack.local_aws import LocalAws
from devstack.runtime import LocalFunction
from tests.devstack.support import wait_until

REGION = "us-east-1"


class RecordingRuntime:
    """A runtime whose one function records which message groups it is handling right now."""

    concurrency = 4

    def __init__(self, hold_s: float = 0.2, fail_first: bool = False) -> None:
        self.hold_s = hold_s
        self.fail_first = fail_first
        self.handled: list[str] = []
        self.overlaps: list[tuple[str, str]] = []  # (group, group) handled at the same time
        self.calls = 0
        self._busy: list[str] = []
        self._lock = threading.Lock()

    def register(self, function: LocalFunction) -> None:
        """Not used."""

    def get(self, name: str) -> LocalFunction:
        """Not used."""
        raise KeyError(name)

    def stop(self) -> None:
        """Nothing to stop."""

    def invoke(self, name: str, event: Any) -> Any:
        """Handle one batch: hold it a while, noting what else is being handled meanwhile."""
        groups = [r["attributes"]["MessageGroupId"] for r in event["Records"]]
        with self._lock:
            self.calls += 1
            first = self.calls == 1
            self.overlaps += [(g, other) for g in groups for other in self._busy]
            self._busy += groups
        time.sleep(self.hold_s)
        with self._lock:
            for g in groups:
                self._busy.remove(g)
            if first and self.fail_first:
                return {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
            self.handled += [json.loads(r["body"])["n"] for r in event["Records"]]
        return {"batchItemFailures": []}


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    """moto in server mode, and clients pointed at it."""
    local = LocalAws(REGION)
    local.start()
    with pytest.MonkeyPatch.context() as env:
        for name, value in local.environment.items():
            env.setenv(name, value)
        yield local
    local.stop()


def fifo_source(visibility_timeout: int = 30) -> QueueSource:
    sqs = boto3.client("sqs", region_name=REGION)
    name = f"events-{time.monotonic_ns()}.fifo"
    url = sqs.create_queue(
        QueueName=name,
        Attributes={"FifoQueue": "true", "VisibilityTimeout": str(visibility_timeout)},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return QueueSource(
        "fn", url, arn, batch_size=1, visibility_timeout=visibility_timeout, fifo=True
    )


def send(source: QueueSource, group: str, n: str) -> None:
    boto3.client("sqs", region_name=REGION).send_message(
        QueueUrl=source.queue_url,
        MessageBody=json.dumps({"n": n}),
        MessageGroupId=group,
        MessageDeduplicationId=n,
    )


def run(runtime: RecordingRuntime, source: QueueSource, expected: int) -> None:
    sources = EventSources(runtime, region=REGION, time_scale=0.1, queues=[source])
    sources.start()
    try:
        wait_until(lambda: len(runtime.handled) >= expected, timeout_s=30)
    finally:
        sources.stop()
        sources.join()


def test_a_fifo_groups_messages_are_handled_one_at_a_time_and_groups_in_parallel(
    aws: LocalAws,
) -> None:
    # Given three messages for each of two tasks (message groups) on a FIFO queue
    source = fifo_source()
    for n in range(3):
        send(source, "task-a", f"a{n}")
        send(source, "task-b", f"b{n}")
    runtime = RecordingRuntime()
    # When the queue's four pollers deliver them
    run(runtime, source, expected=6)
    # Then every message is handled once, a group's in order, never two of one group at once
    assert sorted(runtime.handled) == ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert [n for n in runtime.handled if n.startswith("a")] == ["a0", "a1", "a2"]
    assert all(g != other for g, other in runtime.overlaps), runtime.overlaps
    # and the two groups did run side by side
    assert runtime.overlaps


def test_a_failed_fifo_record_comes_back_after_the_scaled_visibility_timeout(
    aws: LocalAws,
) -> None:
    # Given a FIFO queue whose visibility timeout is 10 s (1 s at the time scale of 0.1)
    source = fifo_source(visibility_timeout=10)
    send(source, "task-a", "a0")
    send(source, "task-a", "a1")
    runtime = RecordingRuntime(hold_s=0.0, fail_first=True)
    started = time.monotonic()
    # When the first delivery fails
    run(runtime, source, expected=2)
    # Then it is delivered again, before the next message of its group
    assert runtime.handled == ["a0", "a1"]
    assert runtime.calls == 3
    assert time.monotonic() - started >= 1.0


def test_a_held_functions_messages_wait_in_the_queue_until_it_is_released(
    aws: LocalAws,
) -> None:
    # Given a queue whose pollers run, and its function held
    source = fifo_source()
    runtime = RecordingRuntime(hold_s=0.0)
    sources = EventSources(runtime, region=REGION, time_scale=0.1, queues=[source])
    sources.start()
    try:
        with sources.held("fn"):
            # When a message arrives while it is held
            send(source, "task-a", "a0")
            sqs = boto3.client("sqs", region_name=REGION)
            # Then the message is still there to be taken (the function never saw it)
            taken = sqs.receive_message(QueueUrl=source.queue_url, WaitTimeSeconds=2)
            assert [json.loads(m["Body"])["n"] for m in taken.get("Messages", [])] == ["a0"]
            assert runtime.calls == 0
            sqs.delete_message(
                QueueUrl=source.queue_url, ReceiptHandle=taken["Messages"][0]["ReceiptHandle"]
            )
        # and once released, the next message is handled as before
        send(source, "task-a", "a1")
        wait_until(lambda: runtime.handled == ["a1"], timeout_s=30)
    finally:
        sources.stop()
        sources.join()
