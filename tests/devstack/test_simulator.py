"""Provider simulator: wire formats, real images, callbacks and fault markers, over real HTTP."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from PIL import Image, UnidentifiedImageError

from devstack.simulator import ProviderSimulator
from devstack.simulator.render import decode_data_url
from devstack.simulator.wire import FormFile, SimRequest, parse_form
from tests.devstack.support import (
    API_KEY,
    AUTH,
    BLUE,
    GREEN,
    INSTANT,
    data_url,
    left_half_mask,
    near,
    png_bytes,
    red_left_blue_right,
    url_image,
    wait_until,
)

APIMART_TERMINAL = {"completed", "failed", "cancelled"}
MOUNTSEA_TERMINAL = {"completed", "failed", "cancelled", "timeout"}


# ---------------------------------------------------------------- fixtures and helpers


class WebhookReceiver:
    """A local HTTP server: records POSTs, serves registered files on GET.

    A POST to a path containing `/flaky/` is answered 500 the first time, 200 afterwards.
    """

    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes, float]] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    first = all(path != self.path for path, _, _ in receiver.posts)
                    receiver.posts.append((self.path, body, time.monotonic()))
                self._answer(500 if first and "/flaky/" in self.path else 200, b"{}", "json")

            def do_GET(self) -> None:
                body, content_type = receiver.files.get(self.path, (b"missing", "text/plain"))
                self._answer(200 if self.path in receiver.files else 404, body, content_type)

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def new_hook(self, kind: str = "hooks") -> str:
        """A fresh webhook base URL (the simulator posts to `<it>/callback`)."""
        return f"{self.url}/{kind}/{uuid.uuid4().hex}"

    def posts_to(self, url: str) -> list[tuple[Any, float]]:
        """(JSON body, arrival time) of every POST received at `url`."""
        path = url.removeprefix(self.url)
        with self._lock:
            return [(json.loads(body), at) for p, body, at in self.posts if p == path]

    def serve(self, path: str, body: bytes, content_type: str = "image/png") -> str:
        """Serve `body` at `path`; returns its URL."""
        self.files[path] = (body, content_type)
        return self.url + path

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.stop()


def apimart_create(http: httpx.Client, sim: ProviderSimulator, **fields: Any) -> httpx.Response:
    body = {"model": "gpt-image-2", "prompt": "a red fox in the snow", **fields}
    url = f"{sim.provider_base_url('apimart')}/v1/images/generations"
    return http.post(url, json=body, headers=AUTH)


def apimart_query(http: httpx.Client, sim: ProviderSimulator, task_id: str) -> httpx.Response:
    return http.get(f"{sim.provider_base_url('apimart')}/v1/tasks/{task_id}", headers=AUTH)


def apimart_task_id(http: httpx.Client, sim: ProviderSimulator, **fields: Any) -> str:
    response = apimart_create(http, sim, **fields)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["data"][0]["task_id"]
    return task_id


def apimart_finished(http: httpx.Client, sim: ProviderSimulator, task_id: str) -> dict[str, Any]:
    """The `data` of the task once it is terminal."""

    def terminal() -> dict[str, Any] | None:
        data: dict[str, Any] = apimart_query(http, sim, task_id).json()["data"]
        return data if data["status"] in APIMART_TERMINAL else None

    return wait_until(terminal)


def apimart_image(http: httpx.Client, data: dict[str, Any]) -> Image.Image:
    return url_image(http, data["result"]["images"][0]["url"][0])


def mountsea_create(http: httpx.Client, sim: ProviderSimulator, **fields: Any) -> httpx.Response:
    body = {"prompt": "a lighthouse at dusk", **fields}
    url = f"{sim.provider_base_url('mountsea-async')}/openai/images"
    return http.post(url, json=body, headers=AUTH)


def mountsea_query(http: httpx.Client, sim: ProviderSimulator, task_id: str) -> httpx.Response:
    url = f"{sim.provider_base_url('mountsea-async')}/openai/tasks"
    return http.get(url, params={"taskId": task_id}, headers=AUTH)


def mountsea_task_id(http: httpx.Client, sim: ProviderSimulator, **fields: Any) -> str:
    response = mountsea_create(http, sim, **fields)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["taskId"]
    return task_id


def mountsea_finished(http: httpx.Client, sim: ProviderSimulator, task_id: str) -> dict[str, Any]:
    """The task body once it is terminal."""

    def terminal() -> dict[str, Any] | None:
        body: dict[str, Any] = mountsea_query(http, sim, task_id).json()
        return body if body["status"] in MOUNTSEA_TERMINAL else None

    return wait_until(terminal)


def mountsea_image_bytes(body: dict[str, Any]) -> bytes:
    return base64.b64decode(body["result"]["data"][0]["b64_json"])


def mountsea_image(body: dict[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(mountsea_image_bytes(body)))


# ---------------------------------------------------------------- create and query shapes


def test_apimart_create_answers_a_submitted_task_id(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a valid text-to-image request
    # When it is submitted
    response = apimart_create(http, sim, size="1:1", resolution="1k", n=1)
    # Then apimart's create envelope carries one submitted task
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 200
    [entry] = body["data"]
    assert entry["status"] == "submitted"
    assert entry["task_id"].startswith("task_")


def test_mountsea_create_answers_a_uuid_task_id(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a valid request
    # When it is submitted
    response = mountsea_create(http, sim, size="1024x1024", quality="low")
    # Then the body is exactly {"taskId": "<uuid>"}
    assert response.status_code == 200
    assert list(response.json()) == ["taskId"]
    uuid.UUID(response.json()["taskId"])


def test_apimart_completed_task_has_the_documented_fields(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a task that has finished
    task_id = apimart_task_id(http, sim, prompt=f"{INSTANT} a fox")
    # When it is queried
    data = apimart_finished(http, sim, task_id)
    # Then it has apimart's fields, and its url points at the simulator's file for the task
    assert data["id"] == task_id
    assert data["status"] == "completed"
    assert data["progress"] == 100
    [image] = data["result"]["images"]
    assert image["url"] == [f"{sim.provider_base_url('apimart')}/files/{task_id}/0.png"]
    assert image["expires_at"] == data["completed"] + 24 * 3600
    assert data["completed"] >= data["created"]
    assert data["actual_time"] == data["completed"] - data["created"]
    assert isinstance(data["estimated_time"], int)
    assert "error" not in data


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


def test_apimart_task_moves_submitted_processing_completed(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a task that takes one second
    task_id = apimart_task_id(http, sim, prompt="[sim:latency=1] a fox")
    # When it is polled until it finishes
    seen: list[str] = []
    progress: list[int] = []

    def finished() -> bool:
        data = apimart_query(http, sim, task_id).json()["data"]
        if not seen or seen[-1] != data["status"]:
            seen.append(data["status"])
        progress.append(data["progress"])
        return bool(data["status"] == "completed")

    wait_until(finished)
    # Then it went through apimart's statuses in order, with progress never going back
    assert seen == ["submitted", "processing", "completed"]
    assert progress == sorted(progress)
    assert progress[0] == 0
    assert progress[-1] == 100


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


@pytest.mark.parametrize(("resolution", "seconds"), [("1k", 40), ("2k", 50), ("4k", 60)])
def test_apimart_latency_follows_the_documented_table_at_time_scale_1(
    resolution: str, seconds: int, http: httpx.Client
) -> None:
    # Given a simulator running at real-world speed
    with ProviderSimulator(time_scale=1.0, api_key=API_KEY) as real_time:
        # When a task is created at a resolution tier
        task_id = apimart_task_id(http, real_time, resolution=resolution)
        data = apimart_query(http, real_time, task_id).json()["data"]
    # Then its estimate is the table's latency for the tier, and it starts submitted
    assert data["estimated_time"] == seconds
    assert data["status"] == "submitted"


def test_mountsea_low_quality_finishes_before_high_quality(http: httpx.Client) -> None:
    # Given a low and a high quality task created together (15 s vs 45 s, x 0.02)
    with ProviderSimulator(time_scale=0.02, api_key=API_KEY) as sim:
        low = mountsea_task_id(http, sim, quality="low")
        high = mountsea_task_id(http, sim, quality="high")
        # When the low one has completed
        mountsea_finished(http, sim, low)
        # Then the high one is still running
        assert mountsea_query(http, sim, high).json()["status"] == "processing"


def test_apimart_batch_returns_known_tasks_and_omits_unknown(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given two tasks
    first = apimart_task_id(http, sim)
    second = apimart_task_id(http, sim)
    # When they are queried in one batch with an unknown id
    response = http.post(
        f"{sim.provider_base_url('apimart')}/v1/tasks/batch",
        json={"task_ids": [first, "task_unknown", second]},
        headers=AUTH,
    )
    # Then both known tasks come back, in order, and the unknown one is left out
    assert response.status_code == 200
    assert response.json()["code"] == 200
    assert [data["id"] for data in response.json()["data"]] == [first, second]


def test_apimart_unknown_task_is_404(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given no task with this id
    # When it is queried
    response = apimart_query(http, sim, "task_doesnotexist")
    # Then apimart's not-found body comes back
    assert response.status_code == 404
    assert response.json() == {
        "code": 404,
        "error": {"message": "task does not exist or has expired", "type": "not_found"},
    }


def test_mountsea_unknown_task_is_404(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given no task with this id
    # When it is queried
    response = mountsea_query(http, sim, str(uuid.uuid4()))
    # Then mountsea's not-found body comes back
    assert response.status_code == 404
    assert response.json() == {"errorCode": 40400, "errorMessage": "task not found"}


# ---------------------------------------------------------------- auth


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["none", "wrong"])
def test_apimart_requires_the_bearer_key(
    headers: dict[str, str], sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a request without the right key
    body = {"model": "gpt-image-2", "prompt": "a fox"}
    # When it is submitted
    url = f"{sim.provider_base_url('apimart')}/v1/images/generations"
    response = http.post(url, json=body, headers=headers)
    # Then apimart answers 401 in its error shape
    assert response.status_code == 401
    assert response.json()["code"] == 401
    assert response.json()["error"]["type"] == "authentication_error"


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


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"model": "dall-e-3"}, "model"),
        ({"prompt": ""}, "prompt"),
        ({"n": 2}, "n must be 1"),
        ({"size": "7:5"}, "size"),
        ({"size": "5000x5000"}, "pixel size"),
        ({"resolution": "8k"}, "resolution"),
        ({"image_urls": ["ftp://example.com/a.png"]}, "image_urls"),
        ({"image_urls": ["data:image/png;base64,AAAA"] * 17}, "image_urls"),
        ({"official_fallback": "yes"}, "official_fallback"),
        ({"webhook": "not-a-url"}, "webhook"),
    ],
)
def test_apimart_rejects_an_invalid_create(
    fields: dict[str, Any], complaint: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a request with one invalid field
    # When it is submitted
    response = apimart_create(http, sim, **fields)
    # Then apimart answers 400 naming the problem
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert complaint in body["error"]["message"]


def test_apimart_ignores_unsupported_and_unknown_fields(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given fields apimart documents as ignored, plus an unknown one
    fields = {"quality": "high", "response_format": "b64_json", "style": "vivid", "extra": 1}
    # When the request is submitted
    response = apimart_create(http, sim, **fields)
    # Then it is accepted
    assert response.status_code == 200


def test_apimart_treats_null_fields_as_absent(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given optional fields sent as null
    fields = {"size": None, "resolution": None, "image_urls": None, "webhook": None}
    # When the request is submitted
    response = apimart_create(http, sim, **fields)
    # Then the defaults apply and it is accepted
    assert response.status_code == 200


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


# ---------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    ("size", "resolution", "pixels"),
    [
        ("16:9", "4k", (3840, 2160)),
        ("1:1", "1k", (1024, 1024)),
        ("auto", "1k", (1024, 1024)),
        ("9:21", "2K", (1152, 2688)),
        ("3:1", "1k", (1881, 836)),
        ("1000x600", "4k", (1000, 600)),
    ],
)
def test_apimart_renders_a_png_of_the_ratio_and_tier_pixels(
    size: str,
    resolution: str,
    pixels: tuple[int, int],
    sim: ProviderSimulator,
    http: httpx.Client,
) -> None:
    # Given a finished task of a size and resolution tier
    task_id = apimart_task_id(http, sim, prompt=INSTANT, size=size, resolution=resolution)
    data = apimart_finished(http, sim, task_id)
    # When its image URL is downloaded (without auth, as from apimart's CDN)
    picture = apimart_image(http, data)
    # Then it is a real PNG of exactly the table's pixels
    assert picture.format == "PNG"
    assert picture.size == pixels


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


def test_apimart_image_to_image_downloads_an_http_input(
    sim: ProviderSimulator, http: httpx.Client, receiver: WebhookReceiver
) -> None:
    # Given an input image served over http
    source = receiver.serve("/inputs/red-blue.png", png_bytes(red_left_blue_right()))
    # When apimart edits it
    task_id = apimart_task_id(http, sim, prompt=INSTANT, image_urls=[source])
    picture = apimart_image(http, apimart_finished(http, sim, task_id)).convert("RGB")
    # Then the output comes from the input: red on the left, blue on the right
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


def test_edit_with_an_undecodable_input_fails_with_a_reason(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given an input data URL whose bytes are not an image
    junk = "data:image/png;base64," + base64.b64encode(b"definitely not a png").decode()
    # When apimart edits it
    data = apimart_finished(
        http, sim, apimart_task_id(http, sim, prompt=INSTANT, image_urls=[junk])
    )
    # Then the task fails, saying the input is not an image
    assert data["status"] == "failed"
    assert "not a decodable image" in data["error"]["message"]


# ---------------------------------------------------------------- callbacks


def test_apimart_posts_the_task_body_to_webhook_callback(
    sim: ProviderSimulator, http: httpx.Client, receiver: WebhookReceiver
) -> None:
    # Given a task with a webhook
    hook = receiver.new_hook()
    task_id = apimart_task_id(http, sim, prompt="[sim:latency=0.1]", webhook=hook)
    # When it reaches its terminal state
    [(callback, _)] = wait_until(lambda: receiver.posts_to(hook + "/callback"))
    # Then <webhook>/callback received exactly what a task query answers
    assert callback == apimart_query(http, sim, task_id).json()
    assert callback["data"]["status"] == "completed"


def test_apimart_retries_a_failed_callback_delivery(
    sim: ProviderSimulator, http: httpx.Client, receiver: WebhookReceiver
) -> None:
    # Given a webhook that answers 500 the first time
    hook = receiver.new_hook("flaky")
    task_id = apimart_task_id(http, sim, prompt=INSTANT, webhook=hook)
    # When the callback is delivered
    wait_until(lambda: len(receiver.posts_to(hook + "/callback")) == 2)

    def logged() -> list[dict[str, Any]]:  # the log entry is written once the answer is read
        entries = http.get(f"{sim.base_url}/_sim/callbacks").json()
        return [c for c in entries if c["task_id"] == task_id and c["status_code"] is not None]

    # Then it was retried once and both attempts are in the simulator's callback log
    log = wait_until(lambda: logged() if len(logged()) == 2 else None)
    assert [(c["attempt"], c["status_code"]) for c in log] == [(1, 500), (2, 200)]
    assert all(c["url"] == hook + "/callback" for c in log)


def test_duplicate_callback_marker_delivers_twice(
    sim: ProviderSimulator, http: httpx.Client, receiver: WebhookReceiver
) -> None:
    # Given a task asking for a duplicate callback
    hook = receiver.new_hook()
    apimart_task_id(http, sim, prompt=f"{INSTANT} [sim:duplicate-callback]", webhook=hook)
    # When its callbacks arrive
    wait_until(lambda: len(receiver.posts_to(hook + "/callback")) >= 2)
    # Then the same terminal body arrived twice
    [(first, _), (second, _)] = receiver.posts_to(hook + "/callback")
    assert first == second
    assert first["data"]["status"] == "completed"


def test_late_callback_marker_delivers_again_later(
    sim: ProviderSimulator, http: httpx.Client, receiver: WebhookReceiver
) -> None:
    # Given a task asking for a late extra callback
    hook = receiver.new_hook()
    apimart_task_id(http, sim, prompt=f"{INSTANT} [sim:late-callback]", webhook=hook)
    # When its callbacks arrive
    wait_until(lambda: len(receiver.posts_to(hook + "/callback")) >= 2)
    # Then the second one came at least 0.2 s after the first, with the same body
    [(first, first_at), (second, second_at)] = receiver.posts_to(hook + "/callback")
    assert second == first
    assert second_at - first_at >= 0.2


def test_no_callback_marker_sends_nothing(
    sim: ProviderSimulator, http: httpx.Client, receiver: WebhookReceiver
) -> None:
    # Given a task that must not call back, and a normal task finishing after it
    silent, control = receiver.new_hook(), receiver.new_hook()
    apimart_task_id(http, sim, prompt="[sim:no-callback] [sim:latency=0.05]", webhook=silent)
    apimart_task_id(http, sim, prompt="[sim:latency=0.3]", webhook=control)
    # When the later task's callback has arrived
    wait_until(lambda: receiver.posts_to(control + "/callback"))
    # Then the silent task's webhook got nothing
    assert receiver.posts_to(silent + "/callback") == []


# ---------------------------------------------------------------- fault markers


@pytest.mark.parametrize("provider", ["apimart", "mountsea-async"])
def test_create_503_marker_answers_503(
    provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a prompt with the create-503 marker
    create = apimart_create if provider == "apimart" else mountsea_create
    # When it is submitted
    response = create(http, sim, prompt="[sim:create-503] x")
    # Then the provider is unavailable
    assert response.status_code == 503
    assert response.json() == {"error": "upstream unavailable"}


@pytest.mark.parametrize("provider", ["apimart", "mountsea-async"])
def test_create_timeout_marker_outlasts_the_client_timeout(
    provider: str, sim: ProviderSimulator
) -> None:
    # Given a client that waits 0.3 s and a prompt with the create-timeout marker
    create = apimart_create if provider == "apimart" else mountsea_create
    # When it is submitted
    # Then no answer comes in time
    with httpx.Client(timeout=0.3, trust_env=False) as impatient, pytest.raises(httpx.ReadTimeout):
        create(impatient, sim, prompt="[sim:create-timeout] x")


@pytest.mark.parametrize("provider", ["apimart", "mountsea-async"])
def test_create_garbage_marker_answers_200_html(
    provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a prompt with the create-garbage marker
    create = apimart_create if provider == "apimart" else mountsea_create
    # When it is submitted
    response = create(http, sim, prompt="[sim:create-garbage] x")
    # Then the answer is 200 but not JSON
    assert response.status_code == 200
    assert response.text == "<html>oops</html>"
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_apimart_moderation_marker_is_rejected(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a prompt with the moderation marker
    # When it is submitted
    response = apimart_create(http, sim, prompt="[sim:moderation] x")
    # Then apimart rejects it as moderated
    assert response.status_code == 400
    assert response.json() == {
        "code": 400,
        "error": {"message": "prompt rejected by content moderation", "type": "moderation_blocked"},
    }


def test_mountsea_moderation_marker_is_rejected(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a prompt with the moderation marker
    # When it is submitted
    response = mountsea_create(http, sim, prompt="[sim:moderation] x")
    # Then mountsea rejects it as moderated
    assert response.status_code == 400
    assert response.json() == {"errorCode": 40003, "errorMessage": "request rejected by moderation"}


def test_apimart_fail_marker_ends_failed(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a task with the fail marker
    task_id = apimart_task_id(http, sim, prompt=f"{INSTANT} [sim:fail]")
    # When it finishes
    data = apimart_finished(http, sim, task_id)
    # Then it failed with the simulated message and no result
    assert data["status"] == "failed"
    assert data["error"] == {"message": "generation failed (simulated)"}
    assert "result" not in data


def test_mountsea_fail_marker_ends_failed(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a task with the fail marker
    task_id = mountsea_task_id(http, sim, prompt=f"{INSTANT} [sim:fail]")
    # When it finishes
    body = mountsea_finished(http, sim, task_id)
    # Then it failed with the simulated message and code, and no result
    assert body["status"] == "failed"
    assert body["errorMessage"] == "generation failed (simulated)"
    assert body["errorCode"] == 50001
    assert body["result"] is None


@pytest.mark.parametrize(("marker", "status"), [("cancelled", "cancelled"), ("timeout", "timeout")])
def test_mountsea_terminal_failure_markers_end_in_their_status(
    marker: str, status: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a task with a cancelled/timeout marker
    task_id = mountsea_task_id(http, sim, prompt=f"{INSTANT} [sim:{marker}]")
    # When it finishes
    body = mountsea_finished(http, sim, task_id)
    # Then it ends in that status with an error message
    assert body["status"] == status
    assert body["errorMessage"]


@pytest.mark.parametrize(
    ("marker", "status", "error"),
    [("cancelled", "cancelled", None), ("timeout", "failed", "task timed out (simulated)")],
)
def test_apimart_terminal_failure_markers_end_in_its_statuses(
    marker: str, status: str, error: str | None, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a task with a cancelled/timeout marker
    task_id = apimart_task_id(http, sim, prompt=f"{INSTANT} [sim:{marker}]")
    # When it finishes
    data = apimart_finished(http, sim, task_id)
    # Then it ends in apimart's nearest status (apimart has no timeout status)
    assert data["status"] == status
    assert data.get("error", {}).get("message") == error


def test_never_marker_keeps_the_task_processing(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a task whose latency is zero but that never finishes
    task_id = apimart_task_id(http, sim, prompt=f"{INSTANT} [sim:never]")
    # When it is queried after its latency
    data = apimart_query(http, sim, task_id).json()["data"]
    # Then it is still processing
    assert data["status"] == "processing"
    assert data["progress"] < 100


@pytest.mark.parametrize("provider", ["apimart", "mountsea-async"])
def test_poll_garbage_marker_truncates_the_terminal_answer(
    provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a task with the poll-garbage marker that takes 0.3 s
    prompt = "[sim:latency=0.3] [sim:poll-garbage]"
    if provider == "apimart":
        task_id = apimart_task_id(http, sim, prompt=prompt)
        query = apimart_query
    else:
        task_id = mountsea_task_id(http, sim, prompt=prompt)
        query = mountsea_query
    # When it is polled until its answer stops being JSON
    answers: list[httpx.Response] = []

    def garbled() -> bool:
        answers.append(query(http, sim, task_id))
        try:
            answers[-1].json()
        except json.JSONDecodeError:
            return True
        return False

    wait_until(garbled)
    # Then the answers were JSON while it ran and a 200 with truncated JSON once terminal
    assert len(answers) > 1
    assert all(isinstance(a.json(), dict) for a in answers[:-1])
    assert answers[-1].status_code == 200
    assert answers[-1].text.startswith("{")


def test_apimart_bad_image_marker_serves_bytes_that_are_no_image(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a finished apimart task with the bad-image marker
    data = apimart_finished(
        http, sim, apimart_task_id(http, sim, prompt=f"{INSTANT} [sim:bad-image]")
    )
    # When its file is downloaded
    response = http.get(data["result"]["images"][0]["url"][0])
    # Then the task completed but the bytes cannot be decoded
    assert data["status"] == "completed"
    assert response.status_code == 200
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(response.content))


def test_mountsea_bad_image_marker_returns_base64_of_no_image(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a finished mountsea task with the bad-image marker
    task_id = mountsea_task_id(http, sim, prompt=f"{INSTANT} [sim:bad-image]")
    body = mountsea_finished(http, sim, task_id)
    # When its b64_json is decoded
    # Then the task completed but the bytes are no image
    assert body["status"] == "completed"
    with pytest.raises(UnidentifiedImageError):
        mountsea_image(body)


def test_noise_marker_makes_an_incompressible_png(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a finished 1024x1024 PNG task with the noise marker
    body = mountsea_finished(
        http, sim, mountsea_task_id(http, sim, prompt=f"{INSTANT} [sim:noise]")
    )
    # When its image is decoded
    data = mountsea_image_bytes(body)
    picture = Image.open(io.BytesIO(data))
    # Then it is a valid PNG of the size, at least as large as its raw RGB pixels
    assert picture.format == "PNG"
    assert picture.size == (1024, 1024)
    assert len(data) >= 1024 * 1024 * 3


def test_url_string_marker_gives_a_plain_string_url(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a finished apimart task with the url-string marker
    task_id = apimart_task_id(http, sim, prompt=f"{INSTANT} [sim:url-string]")
    # When it is queried
    url = apimart_finished(http, sim, task_id)["result"]["images"][0]["url"]
    # Then url is a string that serves the image
    assert isinstance(url, str)
    assert http.get(url).status_code == 200


# ---------------------------------------------------------------- admin endpoints


def test_provider_base_urls_sit_under_the_base_url(sim: ProviderSimulator) -> None:
    # Given a running simulator
    # When its provider base URLs are asked
    # Then each provider has its own prefix on the simulator's base URL
    assert sim.base_url.startswith("http://127.0.0.1:")
    assert sim.provider_base_url("apimart") == f"{sim.base_url}/apimart"
    assert sim.provider_base_url("mountsea-async") == f"{sim.base_url}/mountsea"


def test_health_answers_ok(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a running simulator
    # When its health is asked
    response = http.get(f"{sim.base_url}/_sim/health")
    # Then it is ok
    assert response.json() == {"ok": True}


def test_request_log_records_requests_without_secrets_or_huge_strings(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given an edit request with a large data URL
    marker = f"log-{uuid.uuid4().hex}"
    source = data_url(Image.effect_noise((128, 128), 64))
    mountsea_create(http, sim, prompt=marker, image=source)
    # When the request log is read
    log = http.get(f"{sim.base_url}/_sim/requests").json()
    [entry] = [e for e in log if e["body"] and e["body"].get("prompt") == marker]
    # Then the request is there with header names, no key, and the image cut short
    assert entry["provider"] == "mountsea-async"
    assert entry["method"] == "POST"
    assert entry["path"] == "/mountsea/openai/images"
    assert entry["status"] == 200
    assert "Authorization" in entry["headers"]
    assert API_KEY not in json.dumps(entry)
    assert len(entry["body"]["image"]) < 300 < len(source)


def test_reset_clears_the_logs(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a logged request
    marker = f"reset-{uuid.uuid4().hex}"
    mountsea_create(http, sim, prompt=marker)
    # When the simulator is reset
    http.post(f"{sim.base_url}/_sim/reset")
    # Then the request log no longer has it
    log = http.get(f"{sim.base_url}/_sim/requests").json()
    assert not [e for e in log if e["body"] and e["body"].get("prompt") == marker]


def test_stop_closes_the_port(http: httpx.Client) -> None:
    # Given a started simulator
    simulator = ProviderSimulator(api_key=API_KEY)
    simulator.start()
    url = f"{simulator.base_url}/_sim/health"
    assert http.get(url).status_code == 200
    # When it is stopped
    simulator.stop()
    # Then nothing answers on its port any more
    with pytest.raises(httpx.TransportError):
        http.get(url)


# ---------------------------------------------------------------- multipart/form-data


def httpx_multipart(data: dict[str, str], files: list[Any]) -> tuple[str, bytes]:
    """(Content-Type, body) exactly as httpx sends `post(url, data=data, files=files)`."""
    request = httpx.Request("POST", "http://simulator.invalid/", data=data, files=files)
    return request.headers["Content-Type"], request.read()


def test_form_parses_httpx_fields_and_files_byte_for_byte() -> None:
    # Given an httpx multipart body whose file holds every byte value and boundary-like lines
    tricky = bytes(range(256)) + b"\r\n--\r\n--boundary\r\n\r\n" + bytes(range(256))
    content_type, body = httpx_multipart(
        {"prompt": "a fox", "size": "1024x1024"}, [("image", ("fox.png", tricky, "image/png"))]
    )
    # When it is parsed
    form = parse_form(content_type, body)
    # Then the fields and the file come back exactly
    assert form.fields == (("prompt", "a fox"), ("size", "1024x1024"))
    assert form.files == (FormFile("image", "fox.png", "image/png", tricky),)
    assert form.get("size") == "1024x1024"
    assert form.get("missing") is None


def test_form_keeps_repeated_parts_in_order() -> None:
    # Given images sent as repeated `image` and `image[]` parts, and a mask
    files = [
        ("image", ("a.png", b"A", "image/png")),
        ("image[]", ("b.png", b"B", "image/png")),
        ("image", ("c.png", b"C", "image/png")),
        ("mask", ("m.png", b"M", "image/png")),
    ]
    content_type, body = httpx_multipart({}, files)
    # When it is parsed
    form = parse_form(content_type, body)
    # Then the image parts come back in order under their own names
    assert [f.data for f in form.files_named("image", "image[]")] == [b"A", b"B", b"C"]
    assert [f.field for f in form.files_named("image", "image[]")] == ["image", "image[]", "image"]
    assert [f.field for f in form.files] == ["image", "image[]", "image", "mask"]


def test_form_decodes_utf8_and_keeps_empty_values() -> None:
    # Given a non-ASCII field value and file name, an empty field and an empty file
    content_type, body = httpx_multipart(
        {"prompt": "un renard rouge été ☃", "user": ""},
        [("image", ("rénard.png", b"", "image/png"))],
    )
    # When it is parsed
    form = parse_form(content_type, body)
    # Then text and name are decoded, and the empty parts kept
    assert form.get("prompt") == "un renard rouge été ☃"
    assert form.get("user") == ""
    assert (form.files[0].filename, form.files[0].data) == ("rénard.png", b"")


def test_form_file_becomes_a_data_url_of_its_bytes() -> None:
    # Given a parsed file part sent without a content type of its own
    content_type, body = httpx_multipart({}, [("image", ("x.bin", b"\x89PNG raw"))])
    [part] = parse_form(content_type, body).files
    # When it is turned into a data URL
    # Then the data URL decodes to the same bytes
    assert part.data_url().startswith(f"data:{part.content_type};base64,")
    assert decode_data_url(part.data_url()) == b"\x89PNG raw"


def test_sim_request_form_reads_its_content_type_header() -> None:
    # Given a request carrying an httpx multipart body
    content_type, body = httpx_multipart({"prompt": "x"}, [("image", ("a.png", b"A", "image/png"))])
    request = SimRequest("POST", "/", {}, {"content-type": content_type}, body)
    # When its form is read
    form = request.form()
    # Then it is the parsed body
    assert request.media_type == "multipart/form-data"
    assert form.get("prompt") == "x"


@pytest.mark.parametrize(
    ("mangle", "complaint"),
    [
        (lambda ct, body: ("application/json", body), "multipart/form-data"),
        (lambda ct, body: ("multipart/form-data", body), "boundary"),
        (lambda ct, body: (ct, body[: len(body) // 2]), "closing boundary"),
        (lambda ct, body: (ct, body.replace(b"form-data; ", b"attachment; ")), "form-data"),
        (lambda ct, body: (ct + "x", body), "boundary"),
    ],
    ids=["not-multipart", "no-boundary", "truncated", "not-form-data", "other-boundary"],
)
def test_form_rejects_malformed_bodies(
    mangle: Callable[[str, bytes], tuple[str, bytes]], complaint: str
) -> None:
    # Given a well-formed httpx multipart body, then mangled
    content_type, body = mangle(
        *httpx_multipart({"prompt": "x"}, [("image", ("a.png", b"A", "image/png"))])
    )
    # When it is parsed
    # Then the parser says what is wrong
    with pytest.raises(ValueError, match=complaint):
        parse_form(content_type, body)
