"""Helpers of the flow tests: real images, requests, and moving a task's clock without sleeping."""

from __future__ import annotations

import base64
import io
from datetime import timedelta
from typing import Any

import pytest
from image_gateway.models.request import ImageRequest
from image_gateway.models.task import Task, utc_now
from PIL import Image

from tests.fakes import FakeDependencies

RESULT_URL = "https://cdn.provider.example/result.png"


def png(width: int = 1024, height: int = 1024, color: str = "teal") -> bytes:
    """PNG bytes of a plain image."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def data_url(image: bytes, content_type: str = "image/png") -> str:
    """The image as a ``data:`` URL (what a client sends inline)."""
    return f"data:{content_type};base64,{base64.b64encode(image).decode()}"


def fox(**fields: Any) -> ImageRequest:
    """A generation request (fields override the defaults)."""
    return ImageRequest(prompt="a fox in the snow", **fields)


def make_overdue(deps: FakeDependencies, task_id: str) -> Task:
    """Move the task's deadline (and check time) into the past, as if its time ran out."""
    past = utc_now() - timedelta(seconds=1)

    def overdue(task: Task) -> None:
        task.deadline_at = past
        task.check_at = past

    return deps.tasks.update(task_id, overdue)


def make_due(deps: FakeDependencies, task_id: str) -> Task:
    """Move only the task's check time into the past (the sweeper's next look is now)."""

    def due(task: Task) -> None:
        task.check_at = utc_now() - timedelta(seconds=1)

    return deps.tasks.update(task_id, due)


def drain(deps: FakeDependencies, *, rounds: int = 20) -> list[tuple[str, str]]:
    """Run the dispatch function on every queued attempt until the queue is empty (bounded);
    the attempts made, in order. What the dispatch queue's event source does in AWS."""
    from image_gateway.service.dispatch import dispatch

    made: list[tuple[str, str]] = []
    for _ in range(rounds):
        batch = deps.dispatch_queue.take()
        if not batch:
            return made
        for task_id, provider in batch:
            dispatch(deps, task_id, provider)
            made.append((task_id, provider))
    raise AssertionError(f"the dispatch queue did not drain in {rounds} rounds")


def submit_and_dispatch(deps: FakeDependencies, request: ImageRequest, **options: Any) -> Any:
    """``submit_task`` and then the dispatch function on its queued attempts (what happens in
    AWS a moment after ``POST /v1/images``): the Submission with the task as it now stands."""
    from image_gateway.service.submit import Submission, submit_task

    submission = submit_task(deps, request, **options)
    drain(deps)
    return Submission(
        task=deps.tasks.require(submission.task.task_id), replayed=submission.replayed
    )


def queued(deps: FakeDependencies, request: ImageRequest) -> Task:
    """A task submitted (queued) with its first attempt taken off the dispatch queue, not yet
    dispatched."""
    from image_gateway.service.submit import submit_task

    task = submit_task(deps, request, client_id="c").task
    assert deps.dispatch_queue.take() == [(task.task_id, task.provider)]
    return task


def counted_reads(deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of every task read (``deps.tasks.get``) from now on, in order."""
    reads: list[str] = []
    get = deps.tasks.get

    def counted(task_id: str) -> Task | None:
        reads.append(task_id)
        return get(task_id)

    monkeypatch.setattr(deps.tasks, "get", counted)
    return reads
