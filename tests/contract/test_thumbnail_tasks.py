"""ThumbnailTasks contract: ``InMemoryThumbnailTasks`` and ``DynamoDBThumbnailTasks`` (moto,
template table), each beside the task store it shares the tasks with.

The thumbnail function reads a task's first output and names its thumbnail without the task
model; the task store must then read the task as it was, with the thumbnail named, and a
writer that read the task before must not lose the thumbnail (nor its own change).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from image_gateway.adapters.dynamodb_tasks import DynamoDBTaskStore
from image_gateway.adapters.dynamodb_thumbnails import DynamoDBThumbnailTasks
from image_gateway.models.task import ImageOutput, SourceObject, Task, TaskStatus
from image_gateway.ports import TaskRepository
from image_gateway.thumbnail_ports import FirstOutput, ThumbnailTasks

from tests.fakes import InMemoryTaskStore
from tests.fakes.thumbnails import InMemoryThumbnailTasks

TaskFactory = Callable[..., Task]
OUTPUT = ImageOutput(
    bucket="images",
    key="outputs/client-a/2025/05/01/t/0.png",
    content_type="image/png",
    width=1024,
    height=1024,
    bytes=2048,
    sha256="0" * 64,
)


@pytest.fixture
def stores(
    implementation: str, request: pytest.FixtureRequest
) -> tuple[TaskRepository, ThumbnailTasks]:
    """A task store and the thumbnail ports on the same (empty) tasks."""
    if implementation == "memory":
        tasks = InMemoryTaskStore()
        return tasks, InMemoryThumbnailTasks(tasks)
    dynamodb: Any = request.getfixturevalue("dynamodb")
    table: str = request.getfixturevalue("tasks_table")
    return DynamoDBTaskStore(dynamodb, table), DynamoDBThumbnailTasks(dynamodb, table)


def succeeded(make_task: TaskFactory, **fields: Any) -> Task:
    return make_task(status=TaskStatus.SUCCEEDED, outputs=[OUTPUT], **fields)


def test_a_succeeded_tasks_first_output_is_read_with_what_links_an_image_to_it(
    stores: tuple[TaskRepository, ThumbnailTasks], make_task: TaskFactory
) -> None:
    tasks, thumbnails = stores
    source = SourceObject(bucket="inbox", key="products/a b.jpg", version_id="v1")
    task = succeeded(make_task, source=source)
    tasks.create(task)

    assert thumbnails.first_output(task.task_id) == FirstOutput(
        task_id=task.task_id,
        key=OUTPUT.key,
        metadata={
            "task-id": task.task_id,
            "client-id": "client-a",
            "provider": "apimart",
            "source-bucket": "inbox",
            "source-key": "products/a%20b.jpg",
            "source-version-id": "v1",
        },
        thumbnail_key=None,
    )


@pytest.mark.parametrize("status", [TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.FAILED])
def test_a_task_that_has_not_succeeded_or_does_not_exist_has_no_first_output(
    stores: tuple[TaskRepository, ThumbnailTasks], make_task: TaskFactory, status: TaskStatus
) -> None:
    tasks, thumbnails = stores
    task = make_task(status=status)
    tasks.create(task)

    assert thumbnails.first_output(task.task_id) is None
    assert thumbnails.first_output("task-missing") is None
    assert thumbnails.name_thumbnail("task-missing", "outputs/x.thumb.jpg") is False


def test_a_named_thumbnail_is_read_back_by_the_task_store_once(
    stores: tuple[TaskRepository, ThumbnailTasks], make_task: TaskFactory
) -> None:
    tasks, thumbnails = stores
    task = succeeded(make_task)
    tasks.create(task)
    key = "outputs/client-a/2025/05/01/t/0.thumb.jpg"

    assert thumbnails.name_thumbnail(task.task_id, key) is True
    assert thumbnails.name_thumbnail(task.task_id, "outputs/other.thumb.jpg") is False

    read = tasks.require(task.task_id)
    assert read.thumbnail_key == key
    assert read.version == task.version + 1
    unchanged = {"thumbnail_key", "version", "updated_at"}
    assert read.model_dump(exclude=unchanged) == task.model_dump(exclude=unchanged)
    first = thumbnails.first_output(task.task_id)
    assert first is not None and first.thumbnail_key == key


def test_a_writer_holding_an_older_read_keeps_the_thumbnail_and_its_own_change(
    stores: tuple[TaskRepository, ThumbnailTasks], make_task: TaskFactory
) -> None:
    tasks, thumbnails = stores
    task = succeeded(make_task)
    tasks.create(task)
    before = tasks.require(task.task_id)  # e.g. the finaliser, about to mark its event out
    thumbnails.name_thumbnail(task.task_id, "outputs/t/0.thumb.jpg")

    def mark(t: Task) -> None:
        t.events_published.append(TaskStatus.SUCCEEDED)

    written = tasks.update(task.task_id, mark, known=before)

    assert written.thumbnail_key == "outputs/t/0.thumb.jpg"
    assert written.events_published == [TaskStatus.SUCCEEDED]
    assert tasks.require(task.task_id) == written
