"""Helpers for the e2e tests: the event log of a subscriber queue, and API shortcuts."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from PIL import Image

from devstack.demo import subscribe
from devstack.stack import DevStack, StackConfig, StackInfo

TERMINAL = {"succeeded", "failed", "cancelled", "expired"}


def e2e_stack_config(**changes: Any) -> StackConfig:
    """The e2e tests' devstack: deadline 500 s x 0.02 = 10 s (expiry is quick to test, and a
    loaded 2-core machine still finishes ordinary tasks well inside it); a provider call that
    hangs times out after 2 s, so failover fits in that deadline; metrics on (test_metrics reads
    the functions' EMF lines). ``changes``: other fields (a stack of a module's own writes no
    state file: ``state_file=None``)."""
    settings: dict[str, Any] = {
        "time_scale": 0.02,
        "task_deadline_seconds": 500,
        "provider_timeout_seconds": 2,
        "metrics": True,
    }
    return StackConfig(**{**settings, **changes})


def stack_fixtures(scope: str, **changes: Any) -> tuple[Callable[..., Any], ...]:
    """The ``stack``, ``info`` and ``events`` fixtures of a devstack with the e2e settings
    (``changes`` as for :func:`e2e_stack_config`), at ``scope``: the session's (tests/e2e), or
    a module's own (tests/e2e/own_stack). A conftest assigns them to those three names."""

    @pytest.fixture(scope=scope)  # type: ignore[call-overload]
    def stack() -> Iterator[DevStack]:
        """The running devstack."""
        with DevStack(e2e_stack_config(**changes)) as running:
            yield running

    @pytest.fixture(scope=scope)  # type: ignore[call-overload]
    def info(stack: DevStack) -> StackInfo:
        """Endpoints, names and the demo client's API key."""
        assert stack.info is not None
        return stack.info

    @pytest.fixture(scope=scope)  # type: ignore[call-overload]
    def events(info: StackInfo) -> Iterator[EventLog]:
        """Every task event, as a subscriber queue received it."""
        log = EventLog(subscribe(info))
        yield log
        log.close()

    return stack, info, events


class EventLog:
    """Drains the subscriber queue in the background; events grouped by task id."""

    def __init__(self, queue_url: str) -> None:
        self._sqs = boto3.client("sqs")
        self._queue_url = queue_url
        self._events: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._others: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            batch = self._sqs.receive_message(
                QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            for message in batch.get("Messages", []):
                event = json.loads(message["Body"])
                with self._lock:
                    if event["detail-type"].startswith("Image Task"):
                        self._events[event["detail"]["task_id"]].append(event)
                    else:  # about something else than one task (a provider's breaker)
                        self._others.append(event)
                self._sqs.delete_message(
                    QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def for_task(self, task_id: str) -> list[dict[str, Any]]:
        """Events received so far for one task."""
        with self._lock:
            return list(self._events[task_id])

    def for_source(self, key: str) -> list[dict[str, Any]]:
        """Events received so far whose task was made from the inbox object ``key``."""
        with self._lock:
            every = [e for events in self._events.values() for e in events]
        return [e for e in every if (e["detail"].get("source") or {}).get("key") == key]

    def wait_for_source(self, key: str, detail_type: str, timeout: float = 15) -> dict[str, Any]:
        """The first event of that type for the task made from inbox object ``key`` (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.for_source(key):
                if event["detail-type"] == detail_type:
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no {detail_type!r} event for {key}: {self.for_source(key)}")

    def wait_for(self, task_id: str, detail_type: str, timeout: float = 10) -> dict[str, Any]:
        """The first event of that type for the task (bounded wait)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.for_task(task_id):
                if event["detail-type"] == detail_type:
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no {detail_type!r} event for {task_id}: {self.for_task(task_id)}")

    def wait_for_other(
        self, detail_type: str, match: dict[str, Any], timeout: float = 10
    ) -> dict[str, Any]:
        """The first event of that type, not about a task, whose detail includes ``match``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [
                    e
                    for e in self._others
                    if e["detail-type"] == detail_type and match.items() <= e["detail"].items()
                ]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no {detail_type!r} event with {match}: {self._others}")

    def close(self) -> None:
        """Stop draining."""
        self._stop.set()
        self._thread.join(timeout=3)


def wait_terminal(api: httpx.Client, task_id: str, timeout: float = 30) -> dict[str, Any]:
    """Poll GET /v1/tasks/{id} until the task is terminal (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        task: dict[str, Any] = api.get(f"/v1/tasks/{task_id}").raise_for_status().json()
        if task["status"] in TERMINAL:
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} still {task['status']} after {timeout} s")
        time.sleep(0.1)


def submit(api: httpx.Client, body: dict[str, Any], expect: int = 202) -> dict[str, Any]:
    """POST /v1/images and check the status code."""
    answer = api.post("/v1/images", json=body)
    assert answer.status_code == expect, answer.text
    return dict(answer.json())


def download(url: str) -> bytes:
    """GET a presigned output URL."""
    return httpx.get(url).raise_for_status().content


def open_image(data: bytes) -> Image.Image:
    """Decode image bytes with Pillow (a real decoder, independent of our sniffing)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
