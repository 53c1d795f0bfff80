"""Lambda's event sources, run locally: SQS queue pollers and EventBridge schedules.

moto delivers messages to SQS for real but runs no event source mapping and no schedule, so
devstack does both, invoking through the function runtime like Lambda's pollers would.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import boto3

from devstack.runtime import FunctionError, FunctionRuntime

_log = logging.getLogger("devstack")

MIN_SCHEDULE_INTERVAL_S: Final = 0.2
"""A scaled schedule never fires more often than this (the sweeper at x0.02 runs every 1.2 s)."""

_RATE_UNITS: Final = {
    "minute": 60,
    "minutes": 60,
    "hour": 3600,
    "hours": 3600,
    "day": 86400,
    "days": 86400,
}


def sqs_event_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of Lambda's SQS event, made from a ``ReceiveMessage`` message (with its
    ``Attributes``), as Lambda's poller hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


@dataclass(frozen=True)
class QueueSource:
    """An SQS event source of a function (Events: Type: SQS)."""

    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    visibility_timeout: int
    fifo: bool = False
    """A FIFO queue: its pollers receive one at a time (see :meth:`EventSources._poll_queue`)."""


@dataclass(frozen=True)
class Schedule:
    """A schedule of a function (Events: Type: Schedule), in real-world seconds."""

    function: str
    every_seconds: float


def rate_seconds(expression: str) -> float:
    """Seconds between two runs of ``rate(N unit)``."""
    amount, unit = expression.removeprefix("rate(").removesuffix(")").split()
    return float(amount) * _RATE_UNITS[unit]


class EventSources:
    """Runs the stack's queue pollers and schedules in background threads.

    Each queue gets as many pollers as the runtime runs invocations of one function at once,
    so a slow batch (a sync provider call) does not hold up the next messages.
    """

    def __init__(
        self,
        runtime: FunctionRuntime,
        *,
        region: str,
        time_scale: float,
        queues: Sequence[QueueSource] = (),
        schedules: Sequence[Schedule] = (),
    ) -> None:
        self._runtime = runtime
        self._region = region
        self._time_scale = time_scale
        self._queues = list(queues)
        self._schedules = list(schedules)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # Functions whose queues are held (see :meth:`held`), and each one's pollers at work.
        self._holding = threading.Condition()
        self._held: set[str] = set()
        self._busy: dict[str, int] = {}

    def start(self) -> None:
        """Start polling every queue and running every schedule."""
        for schedule in self._schedules:
            interval = max(MIN_SCHEDULE_INTERVAL_S, schedule.every_seconds * self._time_scale)
            name = f"schedule-{schedule.function}"
            self._spawn(name, self._run_every, schedule.function, interval)
        for source in self._queues:
            receiving = threading.Lock() if source.fifo else None
            for index in range(self._runtime.concurrency):
                self._spawn(
                    f"poller-{source.function}-{index}", self._poll_queue, source, receiving
                )

    def stop(self) -> None:
        """Ask every poller and schedule to stop (returns at once; see :meth:`join`)."""
        self._stop.set()

    def join(self, timeout: float = 5.0) -> None:
        """Wait (bounded, per thread) for the threads to finish after :meth:`stop`."""
        for thread in self._threads:
            thread.join(timeout=timeout)

    @contextlib.contextmanager
    def held(self, function: str) -> Iterator[None]:
        """While inside, no poller of ``function``'s queues (its physical name, as the queue
        sources name it) receives: its messages wait in the
        queue (for a benchmark to take them as a function's first event). On entering, a
        receive or invocation already under way ends first."""
        with self._holding:
            self._held.add(function)
            while self._busy.get(function, 0):
                self._holding.wait()
        try:
            yield
        finally:
            with self._holding:
                self._held.discard(function)
                self._holding.notify_all()

    @contextlib.contextmanager
    def _at_work(self, function: str) -> Iterator[bool]:
        """A poller's turn: False (after a short wait) while its function is held."""
        with self._holding:
            if function in self._held:
                self._holding.wait(timeout=0.1)
                at_work = False
            else:
                self._busy[function] = self._busy.get(function, 0) + 1
                at_work = True
        try:
            yield at_work
        finally:
            if at_work:
                with self._holding:
                    self._busy[function] -= 1
                    self._holding.notify_all()

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _run_every(self, function: str, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self._runtime.invoke(
                    function, {"source": "aws.events", "detail-type": "Scheduled Event"}
                )
            except FunctionError as error:  # the worker already logged the handler's traceback
                if not self._stop.is_set():
                    _log.warning("scheduled %s failed: %s", function, error)
            except Exception:
                if not self._stop.is_set():
                    _log.exception("scheduled %s failed", function)

    def _poll_queue(self, source: QueueSource, receiving: threading.Lock | None) -> None:
        """What Lambda's SQS event source does: receive a batch, invoke, delete what succeeded.

        Failed records (batchItemFailures, or the whole batch when the function raised) become
        visible again after the queue's visibility timeout under the stack's time scale.
        ``receiving`` (FIFO queues) makes this queue's pollers receive one at a time: SQS hands
        out no message of a group while another of it is in flight, and moto decides that per
        request from the messages in flight when the request starts, so two requests at once
        could each take one of the same group. Invocations still run in parallel.
        """
        sqs = boto3.client("sqs", region_name=self._region)
        retry_after = max(1, round(source.visibility_timeout * self._time_scale))
        while not self._stop.is_set():
            with self._at_work(source.function) as at_work:
                if at_work:
                    self._poll_once(sqs, source, receiving, retry_after)

    def _poll_once(
        self, sqs: Any, source: QueueSource, receiving: threading.Lock | None, retry_after: int
    ) -> None:
        """One receive, its invocation, and the deletes or retries it leads to."""
        try:
            with receiving or contextlib.nullcontext():
                if self._stop.is_set():  # stopped while waiting for the other pollers
                    return
                batch = sqs.receive_message(
                    QueueUrl=source.queue_url,
                    MaxNumberOfMessages=source.batch_size,
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                ).get("Messages", [])
            if not batch:
                return
            failed = self._invoke_with_batch(source, batch)
            for message in batch:
                if message["MessageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=source.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=retry_after,
                    )
                else:
                    sqs.delete_message(
                        QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
        except Exception:
            if self._stop.is_set():
                return
            _log.exception("polling %s failed", source.queue_url)
            self._stop.wait(0.5)

    def _invoke_with_batch(self, source: QueueSource, batch: list[dict[str, Any]]) -> set[str]:
        """Invoke the function with an SQS event; the ids of the records that failed."""
        event = {"Records": [sqs_event_record(m, source.queue_arn, self._region) for m in batch]}
        try:
            answer = self._runtime.invoke(source.function, event) or {}
        except FunctionError as error:  # the worker already logged the handler's traceback
            if not self._stop.is_set():
                _log.warning("%s failed a batch: %s", source.function, error)
            return {m["MessageId"] for m in batch}
        except Exception:
            if not self._stop.is_set():
                _log.exception("%s failed a batch", source.function)
            return {m["MessageId"] for m in batch}
        return {str(f["itemIdentifier"]) for f in answer.get("batchItemFailures", [])}
