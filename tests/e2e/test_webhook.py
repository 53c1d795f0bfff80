"""The webhook answers at once; the finalize function, fed by the FIFO finalize queue, does the
work: through devstack, with the simulator's request journal as the witness of downloads."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from typing import Any

import boto3
import httpx
import pytest

from devstack.process_runtime import ProcessRuntime
from devstack.stack import DevStack, StackInfo, wait_until
from devstack.template import ROOT
from tests.e2e.support import EventLog, submit, wait_terminal
from tests.e2e.test_concurrency import all_at_once, settle, simulator_requests, terminal_events

STALL_S = 1.2
"""Held first download: inside apimart's callback grace (2 x 40 s x 0.02 = 1.6 s), so the
sweeper does not step in; long enough that an answer which waited for it (>= 1.2 s) stands apart
from one that did not (0.33 s seen on a loaded 2-core machine: 0.6 s was too close)."""


def callback_url(info: StackInfo, marker: str) -> str:
    """The callback URL the gateway gave apimart for the task whose prompt has ``marker``."""
    [create] = [r for r in simulator_requests(info, marker) if r["method"] == "POST"]
    return f"{create['body']['webhook']}/callback"


def downloads(info: StackInfo, task: dict[str, Any]) -> list[dict[str, Any]]:
    """The simulator's journal entries of the task's result file downloads."""
    [attempt] = task["attempts"]
    path = f"/apimart/files/{attempt['provider_task_id']}/0.png"
    requests: list[dict[str, Any]] = httpx.get(f"{info.simulator_url}/_sim/requests").json()
    return [r for r in requests if r["method"] == "GET" and r["path"] == path]


def apimart_task(api: httpx.Client, marker: str, faults: str = "") -> dict[str, Any]:
    """An apimart task, finished at once by the provider, that it will not call back about."""
    body = {"prompt": f"{marker} [sim:latency=0] [sim:no-callback] {faults}", "provider": "apimart"}
    created = submit(api, body)

    def handed_over() -> dict[str, Any] | None:  # submit is storage-first: dispatch creates it
        task: dict[str, Any] = api.get(f"/v1/tasks/{created['task_id']}").json()
        return task if task["attempts"] else None

    handed: dict[str, Any] = wait_until(handed_over, timeout=15)
    return handed


def test_a_callback_is_answered_before_the_image_is_fetched(
    api: httpx.Client, info: StackInfo, events: EventLog
) -> None:
    # Given a finished apimart task whose result download takes 1.2 s
    marker = f"ack-{uuid.uuid4().hex}"
    created = apimart_task(api, marker, f"[sim:stall-first-file={STALL_S}]")
    # When the provider calls back
    started = time.time()
    answer = httpx.post(callback_url(info, marker), json={"code": 200}, timeout=30)
    answered = time.time()
    # Then it is answered (202) without waiting for the download, which ends after the answer
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"task_id": created["task_id"], "queued": True}
    assert answered - started < STALL_S / 2
    task = wait_terminal(api, created["task_id"])
    assert task["status"] == "succeeded"
    assert task["history"][-1]["by"] == "callback"
    # (the sweeper may look at a task whose callback is late by its clock and fetch it too,
    # under load: the conditional status write keeps one success; the first fetch is the one)
    first = min(downloads(info, task), key=lambda d: float(d["time"]))
    assert answered < first["time"] + STALL_S  # the download was not done when answered
    events.wait_for(task["task_id"], "Image Task Succeeded")


def test_twenty_parallel_copies_of_a_callback_make_one_download_and_one_event(
    api: httpx.Client, info: StackInfo, events: EventLog
) -> None:
    # Given a finished apimart task
    marker = f"twenty-{uuid.uuid4().hex}"
    created = apimart_task(api, marker)
    url = callback_url(info, marker)
    # When 20 copies of its callback arrive at the same moment
    answers = all_at_once(20, lambda _: httpx.post(url, json={"code": 200}, timeout=30))
    # Then each is answered 202, the image is downloaded once, and one terminal event goes out
    assert [a.status_code for a in answers] == [202] * 20
    task = wait_terminal(api, created["task_id"])
    assert task["status"] == "succeeded"
    events.wait_for(task["task_id"], "Image Task Succeeded")
    settle(info)
    assert len(downloads(info, task)) == 1
    terminal = [e for e in events.for_task(task["task_id"]) if e["detail"]["status"] == "succeeded"]
    assert len(terminal) == 1, [e["detail"]["event_id"] for e in terminal]


def test_a_finaliser_killed_mid_download_is_retried_and_the_task_has_one_event(
    stack: DevStack, api: httpx.Client, info: StackInfo, events: EventLog
) -> None:
    assert isinstance(stack.runtime, ProcessRuntime)
    runtime = stack.runtime
    # Given a callback whose finaliser is stuck in the result download (held 30 s)
    marker = f"killed-{uuid.uuid4().hex}"
    created = apimart_task(api, marker, "[sim:stall-first-file=30]")
    assert httpx.post(callback_url(info, marker), json={}, timeout=30).status_code == 202
    [stuck] = wait_until(lambda: downloads(info, created), timeout=15)
    assert stuck["status"] is None  # still being answered
    # When every finalize worker dies (SIGKILL, as a crash or a timeout would end it)
    for pid in runtime.worker_pids("FinalizeFunction"):
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    # Then the callback's message stays on the queue, is delivered again after its visibility
    # timeout (360 s x 0.02 = 7.2 s) to a new worker, handled and deleted; the task succeeds
    # once, with one terminal event. (The sweeper polls a silent callback task after 1.6 s
    # here, so it may store the image first; the retry then finds the task finished.)
    assert finalize_queue_depth(stack) == 1
    wait_until(lambda: finalize_queue_depth(stack) == 0, timeout=30)
    assert time.monotonic() - killed > 5
    task = wait_terminal(api, created["task_id"], timeout=30)
    assert task["status"] == "succeeded"
    assert [h["status"] for h in task["history"]].count("succeeded") == 1
    assert len(downloads(info, task)) >= 2  # the killed one, then the one that stored it
    events.wait_for(task["task_id"], "Image Task Succeeded")
    settle(info)
    assert terminal_events(events, task["task_id"]) == ["Image Task Succeeded"]


def finalize_queue_depth(stack: DevStack) -> int:
    """Messages on the finalize queue, visible or in flight."""
    url = stack.runtime.get("WebhookFunction").environment["FINALIZE_QUEUE_URL"]
    counts = boto3.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in counts.values())


_SEEN: list[dict[str, Any]] = []


def log_lines(
    capsys: pytest.CaptureFixture[str], function: str, task_id: str
) -> list[dict[str, Any]]:
    """The JSON log lines one function wrote about one task so far (worker output is forwarded
    to this process's stdout line by line)."""
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{"):
            _SEEN.append(json.loads(line))
    return [
        entry
        for entry in _SEEN
        if entry.get("function_name", "").endswith(f"-{function}")
        and entry.get("task_id") == task_id
    ]


def test_a_forged_callback_gets_401_and_queues_nothing(
    stack: DevStack, api: httpx.Client, info: StackInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an apimart task that is still running
    created = submit(api, {"prompt": "forged [sim:never]", "provider": "apimart"})
    task_id = created["task_id"]
    # When a callback with a made-up token arrives
    answer = httpx.post(f"{info.api_url}/webhooks/apimart/{task_id}/{'0' * 64}/callback", json={})
    # Then it is refused, the webhook says it queued nothing, and the task is unchanged
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_token"
    lines = wait_until(lambda: log_lines(capsys, "WebhookFunction", task_id), timeout=10)
    assert [(e["message"], e.get("outcome")) for e in lines] == [("callback not queued", "refused")]
    assert "0" * 64 not in json.dumps(lines)  # the token is never logged
    after = api.get(f"/v1/tasks/{task_id}").json()
    assert after["status"] in ("queued", "submitted", "running")  # not finished by it
    api.post(f"/v1/tasks/{task_id}/cancel")


def test_the_sample_finalize_event_for_an_unknown_task_is_dropped(stack: DevStack) -> None:
    # A verified callback whose task does not exist (deleted, or another stack's): nothing to
    # retry, so the record succeeds and leaves the queue.
    event = json.loads((ROOT / "events" / "finalize-sqs.json").read_text())
    assert stack.runtime.invoke("FinalizeFunction", event) == {"batchItemFailures": []}
