"""Waiting on many tasks: one ``GET /v1/tasks?ids=`` per 100 open tasks per look."""

from __future__ import annotations

import httpx
import pytest
from imagegw import Gateway
from imagegw.errors import NotFound, WaitTimeout

from tests.unit.client.support import FakeClock, ScriptedGateway, view


def batch(*tasks: dict[str, object]) -> dict[str, object]:
    """A ``GET /v1/tasks?ids=`` answer holding ``tasks``."""
    return {"tasks": list(tasks), "not_found": []}


def asked_ids(request: httpx.Request) -> list[str]:
    return request.url.params["ids"].split(",")


def test_waiting_on_three_tasks_reads_them_together_until_each_is_done(
    gateway: Gateway, server: ScriptedGateway
) -> None:
    # GIVEN three running tasks, one finishing at each look
    ids = ["tsk_1", "tsk_2", "tsk_3"]
    server.on(
        "GET /v1/tasks",
        batch(*(view("running", task_id=i) for i in ids)),
        batch(view("succeeded", task_id="tsk_1"), *(view("running", task_id=i) for i in ids[1:])),
        batch(view("failed", task_id="tsk_2"), view("running", task_id="tsk_3")),
        batch(view("succeeded", task_id="tsk_3")),
    )
    seen: list[tuple[str, str]] = []

    # WHEN the client waits on all three
    done = gateway.wait_all(ids, on_update=lambda t: seen.append((t.task_id, t.status)))

    # THEN each look asks only for the tasks still open, in one call
    assert [asked_ids(r) for r in server.sent("GET /v1/tasks")] == [
        ids, ids, ["tsk_2", "tsk_3"], ["tsk_3"],
    ]  # fmt: skip
    assert [(t.task_id, t.status) for t in done] == [
        ("tsk_1", "succeeded"), ("tsk_2", "failed"), ("tsk_3", "succeeded"),
    ]  # fmt: skip
    assert seen[:3] == [("tsk_1", "running"), ("tsk_2", "running"), ("tsk_3", "running")]
    assert [s for s in seen if s[1] != "running"] == [
        ("tsk_1", "succeeded"), ("tsk_2", "failed"), ("tsk_3", "succeeded"),
    ]  # fmt: skip


def test_waiting_on_250_tasks_reads_them_in_calls_of_100(
    gateway: Gateway, server: ScriptedGateway
) -> None:
    # GIVEN 250 tasks, all finished
    ids = [f"tsk_{n}" for n in range(250)]
    for start in (0, 100, 200):
        chunk = ids[start : start + 100]
        server.on("GET /v1/tasks", batch(*(view("succeeded", task_id=i) for i in chunk)))

    # WHEN the client waits on them
    done = gateway.wait_all(ids)

    # THEN three calls of at most 100 ids read them all
    assert [len(asked_ids(r)) for r in server.sent("GET /v1/tasks")] == [100, 100, 50]
    assert [t.task_id for t in done] == ids


def test_an_id_that_is_not_the_callers_task_is_a_404(
    gateway: Gateway, server: ScriptedGateway
) -> None:
    # GIVEN the gateway knows only one of two ids
    server.on("GET /v1/tasks", {"tasks": [view("running")], "not_found": ["tsk_x"]})

    # WHEN the client waits on both THEN NotFound (404 task_not_found) names the other
    with pytest.raises(NotFound) as refused:
        gateway.wait_all(["tsk_1", "tsk_x"])
    assert (refused.value.status, refused.value.code) == (404, "task_not_found")
    assert "tsk_x" in refused.value.message


def test_a_wait_that_runs_out_of_time_raises_wait_timeout_with_an_open_task(
    gateway: Gateway, server: ScriptedGateway, clock: FakeClock
) -> None:
    # GIVEN a task that never finishes
    server.on("GET /v1/tasks", *(batch(view("running")) for _ in range(50)))

    # WHEN the client waits on it for 30 s THEN WaitTimeout, and no more than 30 s slept
    with pytest.raises(WaitTimeout) as ran_out:
        gateway.wait_all(["tsk_1"], timeout=30)
    assert ran_out.value.task.task_id == "tsk_1"
    assert sum(clock.sleeps) == pytest.approx(30)
