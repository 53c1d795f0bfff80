"""Thumbnails: made once per succeeded task by the thumbnail function, from its event, and
stored next to the output; never by the finaliser that finished the task."""

from __future__ import annotations

import base64
import io

import pytest
from image_gateway.images.thumbnail import THUMBNAIL_EDGE, make_thumbnail
from image_gateway.models.task import Task, TaskStatus
from image_gateway.providers.base import ProviderState
from image_gateway.service.refresh import refresh_task
from image_gateway.service.thumbnails import ThumbnailOutcome, make_task_thumbnail
from PIL import Image

from tests.fakes import FakeDependencies
from tests.fakes.thumbnails import FakeThumbnailDependencies
from tests.unit.service.support import fox, png, submit_and_dispatch


def picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.fixture
def thumbs(deps: FakeDependencies) -> FakeThumbnailDependencies:
    return FakeThumbnailDependencies.over(deps.tasks, deps.images)


def finished(deps: FakeDependencies, width: int = 1536, height: int = 1024) -> Task:
    deps.providers.script("apimart").image_b64 = base64.b64encode(png(width, height)).decode()
    task = submit_and_dispatch(deps, fox(provider="apimart"), client_id="c").task
    return refresh_task(deps, task.task_id, by="callback").task


def test_the_finaliser_leaves_the_thumbnail_to_the_thumbnail_function(
    deps: FakeDependencies,
) -> None:
    # GIVEN a task finished by its callback THEN the bucket holds its output only, and the
    # task names no thumbnail yet (its succeeded event is out)
    done = finished(deps)

    assert done.status is TaskStatus.SUCCEEDED and done.thumbnail_key is None
    assert [k for k in deps.images.objects if done.task_id in k] == [done.outputs[0].key]
    assert "Image Task Succeeded" in deps.events.for_task(done.task_id)


def test_a_succeeded_task_gets_a_jpeg_thumbnail_next_to_its_output(
    deps: FakeDependencies, thumbs: FakeThumbnailDependencies
) -> None:
    # GIVEN a 1536x1024 result WHEN its succeeded event reaches the thumbnail function
    done = finished(deps)

    outcome = make_task_thumbnail(thumbs, done.task_id)

    # THEN {stem}.thumb.jpg holds a JPEG of the same shape, at most THUMBNAIL_EDGE a side,
    # linked to the task like its output, and the task names it
    named = deps.tasks.require(done.task_id)
    output = done.outputs[0]
    assert outcome is ThumbnailOutcome.MADE
    assert named.thumbnail_key == output.key.rsplit(".", 1)[0] + ".thumb.jpg"
    thumbnail = picture(deps.images.objects[named.thumbnail_key])
    assert (thumbnail.format, thumbnail.size) == ("JPEG", (THUMBNAIL_EDGE, 213))
    assert deps.images.metadata[named.thumbnail_key]["task-id"] == done.task_id
    assert named.status is TaskStatus.SUCCEEDED and named.outputs == done.outputs


def test_a_repeated_event_makes_nothing_more(
    deps: FakeDependencies, thumbs: FakeThumbnailDependencies
) -> None:
    # GIVEN a task whose thumbnail is made WHEN its event arrives again (the sweeper re-emits)
    done = finished(deps)
    make_task_thumbnail(thumbs, done.task_id)
    stored = dict(deps.images.objects)

    # THEN nothing is made or stored again
    assert make_task_thumbnail(thumbs, done.task_id) is ThumbnailOutcome.ALREADY_MADE
    assert deps.images.objects == stored


def test_a_task_without_an_output_gets_no_thumbnail(
    deps: FakeDependencies, thumbs: FakeThumbnailDependencies
) -> None:
    # GIVEN an unknown task, and one still running
    deps.providers.script("apimart").statuses = [ProviderState.RUNNING]
    running = submit_and_dispatch(deps, fox(provider="apimart"), client_id="c").task

    # THEN neither gets a thumbnail, and nothing is stored
    before = dict(deps.images.objects)
    assert make_task_thumbnail(thumbs, "tsk_unknown") is ThumbnailOutcome.NO_OUTPUT
    assert make_task_thumbnail(thumbs, running.task_id) is ThumbnailOutcome.NO_OUTPUT
    assert deps.images.objects == before


def test_an_output_gone_or_unreadable_leaves_the_task_as_it_is(
    deps: FakeDependencies, thumbs: FakeThumbnailDependencies
) -> None:
    # GIVEN two succeeded tasks: one whose output vanished, one whose output Pillow cannot read
    gone, garbled = finished(deps), finished(deps)
    deps.images.objects.pop(gone.outputs[0].key)
    deps.images.objects[garbled.outputs[0].key] = b"\x89PNG\r\n\x1a\n not really"

    # THEN neither is retried for ever, nor names a thumbnail (the gallery shows the image)
    assert make_task_thumbnail(thumbs, gone.task_id) is ThumbnailOutcome.NO_OUTPUT
    assert make_task_thumbnail(thumbs, garbled.task_id) is ThumbnailOutcome.UNREADABLE
    assert deps.tasks.require(gone.task_id).thumbnail_key is None
    assert deps.tasks.require(garbled.task_id).thumbnail_key is None


def test_a_transparent_image_is_previewed_on_white() -> None:
    # GIVEN a fully transparent PNG WHEN thumbnailed THEN its pixels are white
    buffer = io.BytesIO()
    Image.new("RGBA", (800, 400), (10, 20, 30, 0)).save(buffer, "PNG")

    thumbnail = picture(make_thumbnail([buffer.getvalue()]))

    assert thumbnail.size == (THUMBNAIL_EDGE, THUMBNAIL_EDGE // 2)
    assert thumbnail.getpixel((5, 5)) == (255, 255, 255)
