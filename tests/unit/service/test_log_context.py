"""Every flow says which task (and which caller's request) it works on, for the log lines."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from image_gateway import log_context
from image_gateway.service.refresh import refresh_task
from image_gateway.service.submit import submit_task

from tests.fakes import FakeDependencies
from tests.unit.service.support import drain, fox


@pytest.fixture
def heard() -> Iterator[list[tuple[str, str | None]]]:
    """What the flows announced, in order."""
    announced: list[tuple[str, str | None]] = []
    stop = log_context.listen(lambda task_id, request_id: announced.append((task_id, request_id)))
    yield announced
    stop()


def test_submit_dispatch_and_refresh_each_name_the_task_and_the_request_behind_it(
    deps: FakeDependencies, heard: list[tuple[str, str | None]]
) -> None:
    # GIVEN a request with API Gateway's id WHEN submitted, dispatched and called back
    task = submit_task(deps, fox(provider="apimart"), client_id="c", request_id="req-1").task
    drain(deps)
    refresh_task(deps, task.task_id, by="callback")

    # THEN the task keeps the request's id, and every step named both before it worked
    assert deps.tasks.require(task.task_id).request_id == "req-1"
    assert len(heard) >= 3
    assert set(heard) == {(task.task_id, "req-1")}


def test_follow_appends_the_keys_to_the_functions_logger() -> None:
    class Recording:
        def __init__(self) -> None:
            self.keys: dict[str, object] = {}

        def append_keys(self, **keys: object) -> None:
            self.keys.update(keys)

    recording = Recording()
    stop = log_context.follow(recording)
    try:
        log_context.working_on("tsk_1", "req-9")
    finally:
        stop()

    assert recording.keys == {"task_id": "tsk_1", "request_id": "req-9"}
