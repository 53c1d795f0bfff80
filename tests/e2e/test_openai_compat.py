"""The official ``openai`` SDK against devstack's OpenAI-compatible surface (a function URL).

Each call is an ordinary task: it is at ``GET /v1/tasks/{x-task-id}`` and has its events.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from image_gateway.http.openai_answer import INLINE_IMAGE_MAX_BYTES
from PIL import Image, ImageDraw

from devstack.stack import StackInfo
from tests.e2e.support import EventLog, download, open_image


@pytest.fixture(scope="module")
def client(info: StackInfo) -> Iterator[openai.OpenAI]:
    """The SDK, unchanged: the gateway's base URL and API key (no SDK retries)."""
    with openai.OpenAI(
        base_url=info.openai_base_url, api_key=info.api_key, max_retries=0, timeout=60
    ) as sdk:
        yield sdk


def png(width: int, height: int, colour: str, *, hole: bool = False) -> bytes:
    """A PNG; ``hole`` makes it a mask with a transparent disc (the part to repaint)."""
    image = Image.new("RGBA", (width, height), colour)
    if hole:
        ImageDraw.Draw(image).ellipse((width // 4, height // 4, width // 2, height // 2), (0,) * 4)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def generate(client: openai.OpenAI, **params: Any) -> tuple[Any, str]:
    """``images.generate`` with the raw response kept: (the ImagesResponse, its task id)."""
    raw = client.images.with_raw_response.generate(model="gpt-image-2", **params)
    return raw.parse(), raw.headers["x-task-id"]


def decoded(b64: str | None) -> Image.Image:
    assert b64, "no b64_json in the answer"
    return open_image(base64.b64decode(b64))


def assert_ordinary_task(api: httpx.Client, events: EventLog, task_id: str, provider: str) -> None:
    """The call left a task like any other: readable at /v1/tasks/{id}, with its events."""
    task = api.get(f"/v1/tasks/{task_id}").raise_for_status().json()
    assert task["status"] == "succeeded" and task["provider"] == provider
    events.wait_for(task_id, "Image Task Submitted")
    events.wait_for(task_id, "Image Task Succeeded")


@pytest.mark.parametrize(
    ("provider", "size", "path"),
    [
        ("apimart", "1024x1024", "callback"),
        ("mountsea-async", "1536x1024", "poll"),
        ("mountsea-compat", "1024x1536", "sync"),
    ],
)
def test_images_generate_returns_a_png_of_the_asked_size_on_every_finish_path(
    client: openai.OpenAI,
    api: httpx.Client,
    events: EventLog,
    provider: str,
    size: str,
    path: str,
) -> None:
    # WHEN images.generate is called with the provider pinned in extra_body
    result, task_id = generate(
        client, prompt="a lighthouse at dawn", size=size, extra_body={"provider": provider}
    )

    # THEN a decodable PNG of that size comes back, from an ordinary task on that path
    image = decoded(result.data[0].b64_json)
    assert (image.format, f"{image.width}x{image.height}") == ("PNG", size)
    assert result.size == size
    assert_ordinary_task(api, events, task_id, provider)
    assert api.get(f"/v1/tasks/{task_id}").json()["path"] == path


def test_images_edit_takes_an_image_file_a_second_reference_and_a_mask(
    client: openai.OpenAI, api: httpx.Client, events: EventLog
) -> None:
    # GIVEN an image file, a second reference and a mask of the first image's size
    photo = png(1024, 1024, "teal")
    reference = png(512, 512, "orange")
    mask = png(1024, 1024, "black", hole=True)

    # WHEN images.edit is called with all three
    raw = client.images.with_raw_response.edit(
        model="gpt-image-2",
        image=[("photo.png", photo, "image/png"), ("ref.png", reference, "image/png")],
        mask=("mask.png", mask, "image/png"),
        prompt="add a full moon",
        size="1024x1024",
        extra_body={"provider": "mountsea-async", "metadata": {"order": "42"}},
    )

    # THEN the edit comes back, and its task is an edit of two images with a mask
    image = decoded(raw.parse().data[0].b64_json)
    assert (image.width, image.height) == (1024, 1024)
    task_id = raw.headers["x-task-id"]
    assert_ordinary_task(api, events, task_id, "mountsea-async")
    task = api.get(f"/v1/tasks/{task_id}").json()
    assert task["operation"] == "edit" and task["metadata"] == {"order": "42"}


def test_a_4k_result_comes_back_as_a_url_that_serves_the_image(
    client: openai.OpenAI, api: httpx.Client, events: EventLog
) -> None:
    # WHEN a 4K image is asked for as b64_json; the simulator renders it as noise, ~24 MB of
    # PNG (a real photo's size), whose base64 is far past Lambda's 6 MB answer
    result, task_id = generate(
        client,
        prompt="a city at night [sim:noise]",
        extra_body={"provider": "apimart", "aspect_ratio": "16:9", "resolution": "4K"},
    )

    # THEN it comes back usable: a presigned URL, no b64_json, and the URL serves the PNG
    item = result.data[0]
    assert item.b64_json is None and item.url
    data = download(item.url)
    assert len(data) > INLINE_IMAGE_MAX_BYTES
    image = open_image(data)
    assert (image.format, image.width, image.height) == ("PNG", 3840, 2160)
    assert_ordinary_task(api, events, task_id, "apimart")


def test_response_format_url_returns_the_presigned_s3_url(client: openai.OpenAI) -> None:
    result, _ = generate(
        client,
        prompt="a red fox",
        size="1024x1024",
        response_format="url",
        extra_body={"provider": "mountsea-compat"},
    )

    assert result.data[0].b64_json is None
    assert open_image(download(str(result.data[0].url))).size == (1024, 1024)


def test_a_provider_failing_over_to_the_next_still_returns_an_image(
    client: openai.OpenAI, api: httpx.Client, events: EventLog
) -> None:
    # GIVEN apimart answering 503 to the create call, mountsea-async next in the list
    result, task_id = generate(
        client,
        prompt="a kite [sim:create-503=apimart]",
        size="1024x1024",
        extra_body={"providers": ["apimart", "mountsea-async"]},
    )

    # THEN the image comes back from the next provider, and the task shows both attempts
    assert decoded(result.data[0].b64_json).size == (1024, 1024)
    assert_ordinary_task(api, events, task_id, "mountsea-async")
    attempts = api.get(f"/v1/tasks/{task_id}").json()["attempts"]
    assert [a["provider"] for a in attempts][:1] == ["apimart"]


def test_a_wrong_key_raises_authentication_error(info: StackInfo) -> None:
    with (
        openai.OpenAI(base_url=info.openai_base_url, api_key="itg_wrong", max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError) as refused,
    ):
        bad.images.generate(model="gpt-image-2", prompt="a fox")

    assert refused.value.code == "unauthorized"


def test_seventeen_images_raise_bad_request_naming_image(client: openai.OpenAI) -> None:
    images = [(f"{i}.png", png(64, 64, "white"), "image/png") for i in range(17)]

    with pytest.raises(openai.BadRequestError) as refused:
        client.images.edit(model="gpt-image-2", image=images, prompt="x")

    assert refused.value.param == "image"


def test_a_size_no_provider_makes_raises_bad_request_naming_size_briefly(
    client: openai.OpenAI,
) -> None:
    # Given a size none of the stack's providers makes
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.generate(model="gpt-image-2", prompt="x", size="99x99")  # type: ignore[arg-type]

    # Then the error names the size, says in a few lines which sizes work, and keeps every
    # provider's own refusal apart
    error = refused.value
    assert error.param == "size" and error.code == "no_provider_can_honour"
    assert len(error.message) <= 600 and "1024x1024" in error.message
    assert isinstance(error.body, dict) and len(error.body["refusals"]) >= 2


def test_stream_true_is_refused_with_a_code_the_readme_lists(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.generate(model="gpt-image-2", prompt="x", stream=True)  # type: ignore[call-overload]

    assert (refused.value.code, refused.value.param) == ("invalid_request", "stream")


def test_a_failure_at_every_provider_raises_a_5xx_with_the_task_id(
    client: openai.OpenAI, api: httpx.Client
) -> None:
    # GIVEN the only provider asked for failing the task
    with pytest.raises(openai.InternalServerError) as failed:
        client.images.generate(
            model="gpt-image-2",
            prompt="a fox [sim:fail]",
            size="1024x1024",
            extra_body={"provider": "mountsea-async"},
        )

    # THEN a 502 with the gateway's code, and the task id to look it up
    assert failed.value.status_code == 502
    task_id = failed.value.response.headers["x-task-id"]
    assert api.get(f"/v1/tasks/{task_id}").json()["status"] == "failed"
    assert failed.value.code == api.get(f"/v1/tasks/{task_id}").json()["error"]["code"]
