"""Submit is storage-first: no provider is called inside POST /v1/images (issue 15).

Every provider in the order hangs on its create call; the API still answers 202 at once with
the queued task, and the dispatch function then fails over and fails the task with its event.
"""

from __future__ import annotations

import time
import uuid

import httpx

from devstack.stack import StackInfo
from tests.e2e.support import EventLog, wait_terminal


def simulator_creates(info: StackInfo, marker: str) -> list[dict[str, object]]:
    """Create calls the simulator received whose prompt carries ``marker``."""
    journal = httpx.get(f"{info.simulator_url}/_sim/requests").raise_for_status().json()
    return [r for r in journal if marker in str(r.get("body")) and r["method"] == "POST"]


def test_submit_answers_at_once_while_every_provider_hangs_on_create(
    api: httpx.Client, info: StackInfo, events: EventLog
) -> None:
    # Given both providers of the request holding their create call past the provider timeout
    marker = f"hang-{uuid.uuid4().hex}"
    body = {
        "prompt": f"{marker} [sim:create-timeout]",
        "providers": ["apimart", "mountsea-async"],
    }

    # When the caller submits
    started = time.perf_counter()
    answer = api.post("/v1/images", json=body)
    elapsed = time.perf_counter() - started

    # Then the answer is a 202 with the queued task, well under a second, before any create
    assert answer.status_code == 202, answer.text
    created = answer.json()
    assert created["status"] == "queued"
    assert elapsed < 1.0, elapsed
    # and the dispatch function tries each provider in turn, then fails the task with its event
    task = wait_terminal(api, created["task_id"], timeout=40)
    assert task["status"] == "failed"
    assert task["error"]["code"] == "provider_unavailable"
    assert [(a["provider"], a["outcome"]) for a in task["attempts"]] == [
        ("apimart", "failed"),
        ("mountsea-async", "failed"),
    ]
    assert len(simulator_creates(info, marker)) == 2
    events.wait_for(task["task_id"], "Image Task Failed")
