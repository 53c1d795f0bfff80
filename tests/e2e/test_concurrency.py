"""Concurrency through devstack: each function runs in its own worker processes, as on Lambda,
so requests race for real. Parallel idempotent submits, duplicate callbacks, a hundred tasks
with faults, a slow sync call next to a read, and handlers that crash."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import httpx
import pytest
from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore as ApiKeyStore

from devstack.process_runtime import ProcessRuntime
from devstack.runtime import FunctionError
from devstack.stack import DevStack, StackInfo, wait_until
from devstack.template import ROOT
from tests.e2e.support import TERMINAL, EventLog, submit, wait_terminal

TERMINAL_EVENT = {
    "succeeded": "Image Task Succeeded",
    "failed": "Image Task Failed",
    "cancelled": "Image Task Cancelled",
    "expired": "Image Task Expired",
}
SEED = 20261201


@pytest.fixture
def runtime(stack: DevStack) -> ProcessRuntime:
    """The session stack's runtime: worker processes (what these tests are about)."""
    assert isinstance(stack.runtime, ProcessRuntime)
    return stack.runtime


@pytest.fixture
def client(info: StackInfo) -> Iterator[httpx.Client]:
    """An API client of a new caller of its own, so that its task list is this test's."""
    key = ApiKeyStore(boto3.client("dynamodb"), info.table_name).create_key(
        f"conc-{uuid.uuid4().hex[:12]}"
    )
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=info.api_url, headers=headers, timeout=60) as api:
        yield api


def all_at_once(count: int, call: Callable[[int], Any]) -> list[Any]:
    """``call(0..count-1)`` from ``count`` threads released together; the answers in order."""
    start = threading.Barrier(count)

    def released(index: int) -> Any:
        start.wait(timeout=30)
        return call(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(released, range(count)))


def terminal_events(events: EventLog, task_id: str) -> list[str]:
    """The terminal events received for a task, one per event id, as their detail types.

    Delivery is at least once: a copy of an event (same ``event_id``) is the same event, and
    subscribers drop it; two terminal event ids for one task would be two terminal events.
    """
    terminal = set(TERMINAL_EVENT.values())
    by_id = {
        e["detail"]["event_id"]: e["detail-type"]
        for e in events.for_task(task_id)
        if e["detail-type"] in terminal
    }
    return sorted(by_id.values())


def settle(info: StackInfo) -> None:
    """Let late deliveries land before counting events, then wait for the subscriber to drain.

    Late callbacks come 0.2 s after the first and the sweeper runs every 1.2 s; 2.5 s covers
    both, so a duplicate terminal event would be on the subscriber queue by then.
    """
    time.sleep(2.5)
    sqs = boto3.client("sqs")
    queue = sqs.get_queue_url(QueueName="demo-subscriber")["QueueUrl"]

    def drained() -> bool:
        counts = sqs.get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return all(int(value) == 0 for value in counts.values())

    wait_until(drained, timeout=15)


def simulator_requests(info: StackInfo, marker: str) -> list[dict[str, Any]]:
    """The provider requests the simulator received whose prompt carries ``marker``."""
    requests: list[dict[str, Any]] = httpx.get(f"{info.simulator_url}/_sim/requests").json()
    return [r for r in requests if isinstance(r.get("body"), dict) and marker in str(r["body"])]


def test_parallel_submits_with_one_idempotency_key_make_one_task(client: httpx.Client) -> None:
    # Given 20 callers sending the same body with the same Idempotency-Key at the same moment
    body = {"prompt": "one of twenty", "provider": "mountsea-async", "size": "1024x1024"}
    headers = {"Idempotency-Key": f"order-{uuid.uuid4().hex}"}
    # When they all submit
    answers = all_at_once(20, lambda _: client.post("/v1/images", json=body, headers=headers))
    # Then one made the task (202), the others got it back (200) or were told to retry
    accepted = [a for a in answers if a.status_code in (200, 202)]
    raced = [a for a in answers if a not in accepted]
    assert [a.status_code for a in accepted].count(202) == 1, [a.text for a in answers]
    assert len({a.json()["task_id"] for a in accepted}) == 1
    assert all(400 <= a.status_code < 500 for a in raced), [a.text for a in raced]
    assert {a.json()["error"]["code"] for a in raced} <= {"idempotency_in_progress"}
    # And the caller has exactly that one task
    listed = client.get("/v1/tasks", params={"limit": 50}).raise_for_status().json()["tasks"]
    assert [t["task_id"] for t in listed] == [accepted[0].json()["task_id"]]


def test_fifty_parallel_duplicate_callbacks_give_one_terminal_event(
    api: httpx.Client, info: StackInfo, events: EventLog
) -> None:
    # Given an apimart task the provider has finished but not called back about
    marker = f"fifty-{uuid.uuid4().hex}"
    created = submit(
        api, {"prompt": f"{marker} [sim:latency=0] [sim:no-callback]", "provider": "apimart"}
    )
    # (submit is storage-first: the dispatch function makes the create call a moment later)
    [create] = wait_until(lambda: simulator_requests(info, marker), timeout=15)
    callback_url = f"{create['body']['webhook']}/callback"
    # When 50 copies of its callback arrive at the same moment
    answers = all_at_once(50, lambda _: httpx.post(callback_url, json={}, timeout=60))
    # Then every copy is answered at once (202: queued for the finaliser), the task succeeded
    # once, with one terminal event
    assert {a.status_code for a in answers} == {202}, {a.status_code for a in answers}
    task = wait_terminal(api, created["task_id"])
    assert task["status"] == "succeeded"
    assert [h["status"] for h in task["history"]].count("succeeded") == 1
    events.wait_for(task["task_id"], "Image Task Succeeded")
    settle(info)
    assert terminal_events(events, task["task_id"]) == ["Image Task Succeeded"]


# Request fields per provider (small images: the machine renders all of them), and which
# fault markers each one's path can take without waiting out real-time holds.
PROVIDERS: dict[str, dict[str, Any]] = {
    "apimart": {"aspect_ratio": "1:1", "resolution": "1K"},
    "mountsea-async": {"size": "1024x1024", "quality": "low"},
    "pmock": {"size": "1024x1024"},
    "apimodels": {"aspect_ratio": "1:1", "resolution": "1K", "quality": "low"},
    "apimodels-sync": {"size": "1024x1024", "quality": "low"},
    "mountsea-compat": {"size": "1024x1024", "quality": "low"},
    "openai": {"size": "1024x1024", "quality": "low"},
}
EVERY_PATH = ["", "", "", "fail", "moderation", "bad-image", "create-garbage"]
ASYNC_ONLY = ["cancelled", "timeout", "never", "poll-garbage"]
CALLBACK_ONLY = ["duplicate-callback", "late-callback", "no-callback"]
FAULTS = {
    "apimart": EVERY_PATH + ASYNC_ONLY + CALLBACK_ONLY,
    "apimodels": EVERY_PATH + ASYNC_ONLY + CALLBACK_ONLY,
    "mountsea-async": EVERY_PATH + ASYNC_ONLY,
    "pmock": EVERY_PATH + ASYNC_ONLY,
    "apimodels-sync": EVERY_PATH,
    "mountsea-compat": EVERY_PATH,
    "openai": EVERY_PATH,
}


def random_request(rng: random.Random, index: int) -> dict[str, Any]:
    """One request on a random provider with a random fault (or none, or a fallback)."""
    kind = rng.choice(sorted(PROVIDERS))
    fault = rng.choice(FAULTS[kind])
    prompt = f"task {index}" + (f" [sim:{fault}]" if fault else "")
    body: dict[str, Any] = {"prompt": prompt, **PROVIDERS[kind]}
    if rng.random() < 0.1:  # unavailable first choice, fallback to mountsea-async
        body = {
            "prompt": f"task {index} [sim:create-503=apimart]",
            "providers": ["apimart", "mountsea-async"],
            "size": "1024x1024",
        }
    else:
        body["provider"] = kind.removesuffix("-sync")
    return body


def test_a_hundred_parallel_tasks_with_random_faults_each_end_with_one_terminal_event(
    client: httpx.Client, info: StackInfo, events: EventLog
) -> None:
    # Given 100 requests across every provider and path, most of them with a fault marker
    rng = random.Random(SEED)
    bodies = [random_request(rng, index) for index in range(100)]
    # When 16 callers submit them in parallel
    with ThreadPoolExecutor(16) as pool:
        created = list(pool.map(lambda body: submit(client, body), bodies))
    ids = {task["task_id"] for task in created}
    assert len(ids) == 100

    def all_terminal() -> dict[str, str] | None:
        page = client.get("/v1/tasks", params={"limit": 100}).raise_for_status().json()
        statuses = {t["task_id"]: t["status"] for t in page["tasks"]}
        done = set(statuses) == ids and set(statuses.values()) <= TERMINAL
        return statuses if done else None

    # Then every task ends terminal (never-finishing ones expire at their 6 s deadline)
    final = wait_until(all_terminal, timeout=90, interval=0.5)
    # And each has exactly one terminal event, the one of its status
    for task_id, status in final.items():
        events.wait_for(task_id, TERMINAL_EVENT[status], timeout=30)
    settle(info)
    extra = {t: terminal_events(events, t) for t in ids if len(terminal_events(events, t)) != 1}
    assert not extra, extra
    assert {t: terminal_events(events, t) for t in ids} == {
        t: [TERMINAL_EVENT[s]] for t, s in final.items()
    }


def test_a_read_is_answered_while_a_sync_provider_call_waits(
    api: httpx.Client, info: StackInfo
) -> None:
    # Given an openai task whose sync provider call holds for 4 s (the dispatch function waits)
    marker = f"slow-sync-{uuid.uuid4().hex}"
    created = submit(
        api,
        {"prompt": f"{marker} [sim:latency=4]", "provider": "openai", "size": "1024x1024"},
    )

    def in_flight() -> bool:
        return any(r["status"] is None for r in simulator_requests(info, marker))

    wait_until(in_flight, timeout=15, interval=0.05)
    # When the caller reads its tasks meanwhile
    started = time.monotonic()
    listed = api.get("/v1/tasks", params={"limit": 5})
    task = api.get(f"/v1/tasks/{created['task_id']}")
    elapsed = time.monotonic() - started
    # Then the reads are answered at once, while the provider call is still in flight
    assert in_flight()
    assert (listed.status_code, task.status_code) == (200, 200)
    assert task.json()["status"] == "running"
    assert elapsed < 2.0
    assert wait_terminal(api, created["task_id"], timeout=30)["status"] == "succeeded"


def test_a_handler_that_raises_fails_its_invocation_and_not_the_stack(
    runtime: ProcessRuntime, api: httpx.Client
) -> None:
    # Given the poll function, warm
    sample = json.loads((ROOT / "events" / "poll-step.json").read_text())
    before = runtime.invoke("PollFunction", sample)
    # When it is invoked with an event that makes its handler raise
    with pytest.raises(FunctionError) as failed:
        runtime.invoke("PollFunction", {})
    # Then that invocation fails with the handler's error and traceback
    assert failed.value.error_type == "KeyError"
    assert "functions/poll/app.py" in failed.value.stack_trace
    # And the API answers, and the poll function serves the next event
    assert api.get("/v1/tasks", params={"limit": 1}).status_code == 200
    assert runtime.invoke("PollFunction", sample) == before


def test_a_dispatch_worker_killed_mid_call_fails_that_call_and_not_the_stack(
    runtime: ProcessRuntime, api: httpx.Client, info: StackInfo, events: EventLog
) -> None:
    # Given a sync openai call in flight in a dispatch worker
    marker = f"killed-{uuid.uuid4().hex}"
    created = submit(
        api,
        {"prompt": f"{marker} [sim:latency=4]", "provider": "openai", "size": "1024x1024"},
    )
    wait_until(
        lambda: any(r["status"] is None for r in simulator_requests(info, marker)), timeout=15
    )
    doomed = runtime.worker_pids("DispatchFunction")
    # When every dispatch worker dies (SIGKILL, as a segfault would)
    for pid in doomed:
        os.kill(pid, signal.SIGKILL)
    # Then the API still answers, and the dispatch function gets a new worker
    assert api.get(f"/v1/tasks/{created['task_id']}").status_code == 200
    fresh = wait_until(
        lambda: set(runtime.worker_pids("DispatchFunction")) - set(doomed), timeout=15
    )
    assert fresh
    # And the task is not lost: it ends at its deadline, with one terminal event
    task = wait_terminal(api, created["task_id"], timeout=30)
    assert task["status"] in TERMINAL
    events.wait_for(task["task_id"], TERMINAL_EVENT[task["status"]], timeout=15)


def test_log_lines_name_the_function_that_wrote_them(
    runtime: ProcessRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the poll function asked about a task that does not exist (it logs an error)
    sample = json.loads((ROOT / "events" / "poll-step.json").read_text())
    name = runtime.get("PollFunction").name
    # When it runs
    runtime.invoke("PollFunction", sample)
    # Then its Powertools log lines carry its own service name and function name
    seen: list[dict[str, Any]] = []

    def poll_lines() -> list[dict[str, Any]]:
        for line in capsys.readouterr().out.splitlines():
            if line.startswith("{"):
                seen.append(json.loads(line))
        return [entry for entry in seen if entry.get("function_name") == name]

    lines = wait_until(poll_lines, timeout=10)
    assert {entry["service"] for entry in lines} == {"poll"}
