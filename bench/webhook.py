"""Figure 6: how long a provider waits for the webhook's answer, and how long until the event.

**Ack.** ``calls`` tasks at apimart, each finished by the simulator at once and never called
back by it; the benchmark sends each one's callback to the warm webhook in-process (API
Gateway's event) and times the invocation itself (the call recorder's duration, inside the
runtime, so a finaliser holding the inline runtime does not count). Baseline, same run, same
tasks: the finalize function's invocation that the queue then triggers for each, which is the
work the webhook used to do inside the provider's request (re-fetch, download, store, write,
event).

**Callback to event.** Tasks the simulator calls back about by itself (after 0.3 s): from the
moment it starts the callback POST (its journal) to the moment a subscriber queue (an
EventBridge rule on the bus, as any consumer would have) hands out the ``Image Task Succeeded``
event: the local HTTP API, the webhook, the FIFO queue, the event source's poll, the finaliser,
EventBridge. Baseline, same run: tasks finalised the old way, the finalise invoked in-process
the moment the provider is done (its image drawn, as before a callback), to the same
subscriber's receipt (the synchronous webhook's path, without its HTTP hop).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import httpx

from bench.stack import BenchStack
from bench.stats import percentile, summary
from devstack.stack import SIMULATOR_API_KEY
from devstack.waiting import wait_until

CALLBACK_DELAY_S = 0.3
SUBSCRIBER = "bench-subscriber"


class Subscriber:
    """An SQS queue behind an EventBridge rule on the bus; when each task's Succeeded arrived."""

    def __init__(self, bench: BenchStack) -> None:
        self._sqs = boto3.client("sqs")
        events = boto3.client("events")
        self._url = self._sqs.create_queue(QueueName=SUBSCRIBER)["QueueUrl"]
        self._sqs.purge_queue(QueueUrl=self._url)
        arn = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name=SUBSCRIBER,
            EventBusName=bench.info.event_bus_name,
            EventPattern=json.dumps({"detail-type": ["Image Task Succeeded"]}),
        )
        events.put_targets(
            Rule=SUBSCRIBER,
            EventBusName=bench.info.event_bus_name,
            Targets=[{"Id": "queue", "Arn": arn}],
        )
        self.received: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="bench-subscriber", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            batch = self._sqs.receive_message(
                QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            now = time.time()
            for message in batch:
                task_id = json.loads(message["Body"])["detail"]["task_id"]
                self.received.setdefault(task_id, now)
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])

    def wait_for(self, task_id: str, timeout: float = 30) -> float:
        """When the task's Succeeded event was received (bounded wait)."""
        deadline = time.monotonic() + timeout
        while task_id not in self.received:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Succeeded event for {task_id}")
            time.sleep(0.002)
        return self.received[task_id]

    def close(self) -> None:
        """Stop draining."""
        self._stop.set()
        self._thread.join(timeout=5)


def _task(bench: BenchStack, prompt: str) -> str:
    body = {"prompt": prompt, "provider": "apimart", "aspect_ratio": "1:1", "resolution": "1K"}
    return str(bench.submit(body)["task_id"])


def _render(bench: BenchStack, task_id: str) -> None:
    """Ask the simulator about the task once, so it has drawn the image before the clock starts
    (as it has when it calls back: it draws the image to write the callback)."""
    # submit is storage-first: the dispatch function hands the task to apimart just after
    provider_task_id = wait_until(
        lambda: bench.task(task_id).get("provider_task_id"), timeout=30, interval=0.01
    )
    httpx.get(
        f"{bench.info.simulator_url}/apimart/v1/tasks/{provider_task_id}",
        headers={"Authorization": f"Bearer {SIMULATOR_API_KEY}"},
    ).raise_for_status()


def _durations(bench: BenchStack, function: str) -> list[float]:
    return [i.duration_ms for i in bench.recorder.invocations if i.function == function]


def ack(bench: BenchStack, calls: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Webhook invocations vs the finaliser invocations they hand the work to."""
    runtime = bench.devstack.runtime
    tasks = [_task(bench, f"ack {i} [sim:latency=0] [sim:no-callback]") for i in range(calls + 3)]
    for task_id in tasks:
        _render(bench, task_id)
    for task_id in tasks[:3]:  # warm the webhook and the finaliser (clients, connections)
        runtime.invoke(*bench.callback_event("apimart", task_id))
    bench.wait_settled(tasks[:3])
    bench.recorder.reset()
    for index, task_id in enumerate(tasks[3:]):
        answer = runtime.invoke(*bench.callback_event("apimart", task_id))
        if answer["statusCode"] != 202:
            raise RuntimeError(f"callback answered {answer['statusCode']}: {answer['body']}")
        if (index + 1) % 25 == 0:
            progress(f"  webhook ack: {index + 1}/{calls} callbacks")
    bench.wait_settled(tasks[3:], timeout=300)
    acks, finals = _durations(bench, "WebhookFunction"), _durations(bench, "FinalizeFunction")
    return {
        "calls": len(acks),
        "p50_ms": percentile(acks, 50),
        "p99_ms": percentile(acks, 99),
        "floor_p50_ms": percentile(finals, 50),
        "floor_p99_ms": percentile(finals, 99),
        "ratio_p50": percentile(acks, 50) / percentile(finals, 50),
        "ratio_p99": percentile(acks, 99) / percentile(finals, 99),
        "finalisations": len(finals),
        "baseline": "the finalise each callback triggers (what the webhook used to do in the "
        "provider's request)",
    }


def callback_to_event(
    bench: BenchStack, tasks: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Simulator callback -> subscriber, against finalising in-process when the task is done."""
    runtime = bench.devstack.runtime
    subscriber = Subscriber(bench)
    journal = f"{bench.info.simulator_url}/_sim/callbacks"
    queued: list[float] = []
    direct: list[float] = []
    try:
        for index in range(tasks + 1):
            task_id = _task(bench, f"c2e {index} [sim:latency={CALLBACK_DELAY_S}]")
            received = subscriber.wait_for(task_id)
            [first] = [
                c for c in httpx.get(journal).json() if task_id in c["url"] and c["delivery"] == 1
            ][:1]
            other = _task(bench, f"c2e-direct {index} [sim:latency=0] [sim:no-callback]")
            _render(bench, other)
            started = time.time()
            runtime.invoke("FinalizeFunction", bench.finalize_event("apimart", other))
            direct_received = subscriber.wait_for(other)
            if index == 0:
                continue  # warm-up
            queued.append((received - first["time"]) * 1000)
            direct.append((direct_received - started) * 1000)
            if index % 5 == 0:
                progress(f"  callback to event: {index}/{tasks}")
    finally:
        subscriber.close()
    return {
        "tasks": len(queued),
        "ms": summary(queued),
        "p99_ms": percentile(queued, 99),
        "floor_ms": summary(direct),
        "ratio": summary([q / d for q, d in zip(queued, direct, strict=True)]),
        "baseline": "finalise invoked in-process when the provider is done (the old synchronous "
        "webhook, without its HTTP hop)",
    }


def run(
    bench: BenchStack, calls: int, tasks: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Both parts of figure 6."""
    return {
        "ack": ack(bench, calls, progress),
        "callback_to_event": callback_to_event(bench, tasks, progress),
    }
