"""The thumbnail function's ports over the other fakes (``thumbnail_ports``)."""

from __future__ import annotations

from dataclasses import dataclass

from image_gateway.models.task import Task, TaskStatus
from image_gateway.ports import TaskNotFound
from image_gateway.service.outputs import output_metadata
from image_gateway.thumbnail_ports import FirstOutput

from tests.fakes.stores import InMemoryImageStore, InMemoryTaskStore


class InMemoryThumbnailTasks:
    """``ThumbnailTasks`` on the fake task store: the thumbnail is named by the store's own
    conditional update, so it races like any other task write."""

    def __init__(self, tasks: InMemoryTaskStore) -> None:
        self._tasks = tasks

    def first_output(self, task_id: str) -> FirstOutput | None:
        """The task's first output, if it has succeeded with one."""
        task = self._tasks.get(task_id)
        if task is None or task.status is not TaskStatus.SUCCEEDED or not task.outputs:
            return None
        return FirstOutput(
            task_id=task_id,
            key=task.outputs[0].key,
            metadata=output_metadata(task),
            thumbnail_key=task.thumbnail_key,
        )

    def name_thumbnail(self, task_id: str, key: str) -> bool:
        """Set ``thumbnail_key`` (False: no such task, or one is named already)."""

        def name(task: Task) -> None:
            if task.thumbnail_key is not None:
                raise _AlreadyNamed  # no write, as the adapter makes none
            task.thumbnail_key = key

        try:
            self._tasks.update(task_id, name)
        except (TaskNotFound, _AlreadyNamed):
            return False
        return True


class _AlreadyNamed(Exception):
    """The task names a thumbnail already."""


@dataclass
class FakeThumbnailDependencies:
    """``ThumbnailDependencies`` on the fakes a ``FakeDependencies`` holds."""

    tasks: InMemoryThumbnailTasks
    images: InMemoryImageStore

    @classmethod
    def over(
        cls, tasks: InMemoryTaskStore, images: InMemoryImageStore
    ) -> FakeThumbnailDependencies:
        """The thumbnail ports on these stores."""
        return cls(InMemoryThumbnailTasks(tasks), images)
