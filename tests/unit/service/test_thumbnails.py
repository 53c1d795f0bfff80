"""Thumbnails: made once by the finaliser that finished the task, stored next to the output."""

from __future__ import annotations

import base64
import io

from image_gateway.images.thumbnail import make_thumbnail
from image_gateway.models.task import THUMBNAIL_EDGE, TaskStatus
from image_gateway.providers.base import ProviderState
from image_gateway.service.refresh import refresh_task
from PIL import Image

from tests.fakes import FakeDependencies
from tests.unit.service.support import fox, png, submit_and_dispatch


def picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_finished_task_gets_a_jpeg_thumbnail_next_to_its_output(deps: FakeDependencies) -> None:
    # GIVEN a 1536x1024 result WHEN the callback finishes the task
    deps.providers.script("apimart").image_b64 = base64.b64encode(png(1536, 1024)).decode()
    task = submit_and_dispatch(deps, fox(provider="apimart"), client_id="c").task
    done = refresh_task(deps, task.task_id, by="callback").task

    # THEN {stem}.thumb.jpg holds a JPEG of the same shape, at most THUMBNAIL_EDGE a side
    output = done.outputs[0]
    assert done.thumbnail_key == output.key.rsplit(".", 1)[0] + ".thumb.jpg"
    thumbnail = picture(deps.images.objects[done.thumbnail_key])
    assert (thumbnail.format, thumbnail.size) == ("JPEG", (THUMBNAIL_EDGE, 213))


def test_a_thumbnail_that_cannot_be_made_leaves_the_task_succeeded(
    deps: FakeDependencies,
) -> None:
    # GIVEN a finished task whose stored output vanished before its thumbnail was made
    deps.providers.script("apimart").statuses = [ProviderState.SUCCEEDED]
    task = submit_and_dispatch(deps, fox(provider="apimart"), client_id="c").task
    original_store = deps.images.store

    def store_then_lose(*args: object, **kwargs: object) -> object:
        stored = original_store(*args, **kwargs)  # type: ignore[arg-type]
        deps.images.objects.pop(stored.key)
        return stored

    deps.images.store = store_then_lose  # type: ignore[method-assign]

    # WHEN the callback finishes it THEN it succeeded, without a thumbnail (the gallery falls
    # back to the image)
    done = refresh_task(deps, task.task_id, by="callback").task
    assert done.status is TaskStatus.SUCCEEDED and done.thumbnail_key is None


def test_a_transparent_image_is_previewed_on_white() -> None:
    # GIVEN a fully transparent PNG WHEN thumbnailed THEN its pixels are white
    buffer = io.BytesIO()
    Image.new("RGBA", (800, 400), (10, 20, 30, 0)).save(buffer, "PNG")

    thumbnail = picture(make_thumbnail([buffer.getvalue()]))

    assert thumbnail.size == (THUMBNAIL_EDGE, THUMBNAIL_EDGE // 2)
    assert thumbnail.getpixel((5, 5)) == (255, 255, 255)
