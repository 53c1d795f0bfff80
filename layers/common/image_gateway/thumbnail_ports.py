"""The thumbnail function's ports (``service/thumbnails.py``).

Apart from :mod:`image_gateway.ports` because the thumbnail function imports only these:
nothing here names the task model or the settings, so its cold start loads no pydantic. The
adapter of :class:`ThumbnailTasks` is
:class:`~image_gateway.adapters.dynamodb_thumbnails.DynamoDBThumbnailTasks`; the fake,
``tests/fakes``' ``InMemoryThumbnailTasks`` (contract: tests/contract/test_thumbnail_tasks.py).
The images are :class:`~image_gateway.ports.ImageRepository`'s (only ``open_stream`` and
``store`` are used).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from image_gateway.ports import ImageRepository


@dataclass(frozen=True, slots=True)
class FirstOutput:
    """A succeeded task's first output, as its thumbnail needs it."""

    task_id: str
    key: str
    """The output's key in the images bucket."""
    metadata: dict[str, str]
    """The S3 user metadata linking an image to the task (``images.metadata``)."""
    thumbnail_key: str | None
    """The thumbnail already named on the task, if any."""


class ThumbnailTasks(Protocol):
    """The two things the thumbnail function reads and writes on a task."""

    def first_output(self, task_id: str) -> FirstOutput | None:
        """The task's first output; None when there is no such task, it has not succeeded, or
        it has no output."""

    def name_thumbnail(self, task_id: str, key: str) -> bool:
        """Record ``key`` as the task's ``thumbnail_key``, as a write of the task (its version
        moves on, so a writer holding an older read writes again from a fresh one). False when
        the task is gone or already names a thumbnail (a repeated event)."""


class ThumbnailDependencies(Protocol):
    """What the thumbnail function uses: the tasks and the images bucket."""

    @property
    def tasks(self) -> ThumbnailTasks:
        """The tasks, read and written without the task model."""

    @property
    def images(self) -> ImageRepository:
        """The images bucket (reads the output, stores its thumbnail)."""
