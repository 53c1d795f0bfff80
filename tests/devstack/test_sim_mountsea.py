"""Provider simulator, mountsea-async dialect: async tasks with base64 results, real edits and
masks, over real HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from PIL import Image

from devstack.simulator import ProviderSimulator
from tests.devstack.support import (
    API_KEY,
    BLUE,
    GREEN,
    INSTANT,
    WebhookReceiver,
    data_url,
    left_half_mask,
    mountsea_create,
    mountsea_finished,
    mountsea_image,
    mountsea_image_bytes,
    mountsea_query,
    mountsea_task_id,
    near,
    red_left_blue_right,
    wait_until,
)

# ---------------------------------------------------------------- create and query


def test_mountsea_create_answers_a_uuid_task_id(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a valid request
    # When it is submitted
    response = mountsea_create(http, sim, size="1024x1024", quality="low")
    # Then the body is exactly {"taskId": "<uuid>"}
    assert response.status_code == 200
    assert list(response.json()) == ["taskId"]
    uuid.UUID(response.json()["taskId"])


def test_mountsea_completed_task_has_the_documented_fields(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a task that has finished
    task_id = mountsea_task_id(http, sim, prompt=f"{INSTANT} a lighthouse")
    # When it is queried
    body = mountsea_finished(http, sim, task_id)
    # Then it has mountsea's fields and an OpenAI images response as result
    assert body["taskId"] == task_id
    assert body["status"] == "completed"
    assert body["errorMessage"] is None
    assert body["errorCode"] is None
    assert body["createdAt"].endswith("Z")
    assert body["finishedAt"].endswith("Z")
    assert isinstance(body["duration"], int)
    assert body["traceId"]
    assert set(body["result"]) >= {"created", "data", "usage"}
    assert body["result"]["usage"]["output_tokens"] > 0


def test_mountsea_task_moves_pending_processing_completed(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a task that takes 1.5 seconds
    task_id = mountsea_task_id(http, sim, prompt="[sim:latency=1.5] a lighthouse")
    # When it is polled until it finishes
    seen: list[str] = []

    def finished() -> bool:
        status = mountsea_query(http, sim, task_id).json()["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        return bool(status == "completed")

    wait_until(finished)
    # Then it went through mountsea's statuses in order
    assert seen == ["pending", "processing", "completed"]


def test_mountsea_low_quality_finishes_before_high_quality(http: httpx.Client) -> None:
    # Given a low and a high quality task created together (15 s vs 45 s, x 0.02)
    with ProviderSimulator(time_scale=0.02, api_key=API_KEY) as sim:
        low = mountsea_task_id(http, sim, quality="low")
        high = mountsea_task_id(http, sim, quality="high")
        # When the low one has completed
        mountsea_finished(http, sim, low)
        # Then the high one is still running
        assert mountsea_query(http, sim, high).json()["status"] == "processing"


def test_mountsea_unknown_task_is_404(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given no task with this id
    # When it is queried
    response = mountsea_query(http, sim, str(uuid.uuid4()))
    # Then mountsea's not-found body comes back
    assert response.status_code == 404
    assert response.json() == {"errorCode": 40400, "errorMessage": "task not found"}


# ---------------------------------------------------------------- auth and validation


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["none", "wrong"])
def test_mountsea_requires_the_bearer_key(
    headers: dict[str, str], sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a query without the right key
    url = f"{sim.provider_base_url('mountsea-async')}/openai/tasks"
    # When it is sent
    response = http.get(url, params={"taskId": "x"}, headers=headers)
    # Then mountsea answers 401 in its error shape
    assert response.status_code == 401
    assert response.json() == {"errorCode": 40100, "errorMessage": "invalid api key"}


def test_mountsea_treats_null_fields_as_absent(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given optional fields sent as null
    fields = {"background": None, "moderation": None, "n": None, "output_compression": None}
    # When the request is submitted
    response = mountsea_create(http, sim, **fields)
    # Then the defaults apply and it is accepted
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"colour": "red"}, "unknown field(s): colour"),
        ({"model": "dall-e-3"}, "model"),
        ({"prompt": ""}, "prompt"),
        ({"n": 2}, "n must be 1"),
        ({"size": "512x512"}, "size"),
        ({"quality": "ultra"}, "quality"),
        ({"output_format": "gif"}, "output_format"),
        ({"output_compression": 101}, "output_compression"),
        ({"image": 42}, "image"),
        ({"mask": "https://example.com/mask.png"}, "mask requires image"),
        ({"background": "transparent", "output_format": "jpeg"}, "transparent"),
    ],
)
def test_mountsea_rejects_an_invalid_create(
    fields: dict[str, Any], complaint: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a request with one invalid or unknown field
    # When it is submitted
    response = mountsea_create(http, sim, **fields)
    # Then mountsea answers 400 naming the problem
    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == 40001
    assert complaint in body["errorMessage"]


# ---------------------------------------------------------------- rendering and edits


@pytest.mark.parametrize(
    ("output_format", "size", "pixels", "pil_format"),
    [
        ("png", "1024x1536", (1024, 1536), "PNG"),
        ("jpeg", "1536x1024", (1536, 1024), "JPEG"),
        ("webp", "auto", (1024, 1024), "WEBP"),
    ],
)
def test_mountsea_result_is_base64_of_an_image_of_the_asked_size_and_format(
    output_format: str,
    size: str,
    pixels: tuple[int, int],
    pil_format: str,
    sim: ProviderSimulator,
    http: httpx.Client,
) -> None:
    # Given a finished task asking for a size and format
    task_id = mountsea_task_id(
        http, sim, prompt=INSTANT, size=size, output_format=output_format, output_compression=80
    )
    body = mountsea_finished(http, sim, task_id)
    # When its b64_json is decoded
    picture = mountsea_image(body)
    # Then it is a real image of that size and format
    assert picture.format == pil_format
    assert picture.size == pixels
    assert body["result"]["output_format"] == output_format


def test_mountsea_jpeg_is_rgb(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a finished JPEG task
    body = mountsea_finished(
        http, sim, mountsea_task_id(http, sim, prompt=INSTANT, output_format="jpeg")
    )
    # When the image is decoded
    # Then it is RGB
    assert mountsea_image(body).mode == "RGB"


def test_mountsea_transparent_background_has_transparent_pixels(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a finished PNG task with a transparent background
    task_id = mountsea_task_id(http, sim, prompt=INSTANT, background="transparent")
    # When the image is decoded
    picture = mountsea_image(mountsea_finished(http, sim, task_id))
    # Then it has an alpha channel with fully transparent pixels
    assert picture.mode == "RGBA"
    assert picture.getchannel("A").getextrema()[0] == 0


def test_text_to_image_is_deterministic_per_prompt(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given two finished tasks with the same prompt and one with another prompt
    same = [mountsea_task_id(http, sim, prompt=f"{INSTANT} same") for _ in range(2)]
    other = mountsea_task_id(http, sim, prompt=f"{INSTANT} other")
    # When their images are decoded
    images = [mountsea_image_bytes(mountsea_finished(http, sim, t)) for t in [*same, other]]
    # Then the same prompt gives the same bytes, another prompt other bytes
    assert images[0] == images[1]
    assert images[0] != images[2]


def test_mountsea_edit_keeps_the_input_recognisable(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given an input that is red on the left and blue on the right, sent as a data URL
    source = data_url(red_left_blue_right())
    # When it is edited
    task_id = mountsea_task_id(http, sim, prompt=f"{INSTANT} make it dusk", image=source)
    picture = mountsea_image(mountsea_finished(http, sim, task_id)).convert("RGB")
    # Then the output is the asked size and still red on the left, blue on the right
    assert picture.size == (1024, 1024)
    left, right = picture.getpixel((256, 512)), picture.getpixel((768, 512))
    assert isinstance(left, tuple)
    assert isinstance(right, tuple)
    assert left[0] > 150 > left[2]
    assert right[2] > 150 > right[0]


def test_edit_with_several_inputs_shows_the_others_as_thumbnails(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a green main input and a blue second input
    inputs = [data_url(Image.new("RGB", (64, 64), c)) for c in (GREEN, BLUE)]
    # When they are edited together
    task_id = mountsea_task_id(http, sim, prompt=INSTANT, image=inputs)
    picture = mountsea_image(mountsea_finished(http, sim, task_id)).convert("RGB")
    # Then some of the output is the second input's blue
    step = 16
    samples = [picture.getpixel((x, y)) for x in range(0, 1024, step) for y in range(0, 1024, step)]
    assert sum(near(p, BLUE, 10) for p in samples) >= 10


def test_masked_edit_repaints_only_the_transparent_part_of_the_mask(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a green input, and a smaller mask transparent on its left half only
    source = data_url(Image.new("RGB", (256, 256), GREEN))
    mask = left_half_mask()
    # When the input is edited with the mask
    task_id = mountsea_task_id(http, sim, prompt=INSTANT, image=source, mask=data_url(mask))
    picture = mountsea_image(mountsea_finished(http, sim, task_id)).convert("RGB")
    # Then the right half is the input untouched and the left half is repainted
    grid = range(16, 1024, 64)
    right = [picture.getpixel((x, y)) for x in range(600, 1024, 64) for y in grid]
    left = [picture.getpixel((x, y)) for x in range(0, 420, 64) for y in grid]
    assert all(near(p, GREEN, 2) for p in right)
    assert not any(near(p, GREEN, 60) for p in left)


def test_edit_with_an_undownloadable_input_fails_with_a_reason(
    sim: ProviderSimulator, http: httpx.Client, receiver: WebhookReceiver
) -> None:
    # Given an input URL that answers 404
    missing = f"{receiver.url}/inputs/missing.png"
    # When it is edited
    body = mountsea_finished(http, sim, mountsea_task_id(http, sim, prompt=INSTANT, image=missing))
    # Then the task fails, saying which input and why
    assert body["status"] == "failed"
    assert "input image 1" in body["errorMessage"]
    assert "404" in body["errorMessage"]
