"""Provider simulator, apimodels dialect: sync and async modes, sizes, callbacks, real images."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from PIL import Image, UnidentifiedImageError

from devstack.simulator import ProviderSimulator, apimodels
from tests.devstack.support import (
    API_KEY,
    AUTH,
    GREEN,
    INSTANT,
    inline_image,
    left_half_mask,
    near,
    png_bytes,
    red_left_blue_right,
    url_image,
    wait_until,
)

MODEL = "gpt-image-2-all"


class CallbackReceiver:
    """A local HTTP server recording the POSTs it gets; `/flaky/` paths answer 500 first."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    first = all(path != self.path for path, _ in receiver.posts)
                    receiver.posts.append((self.path, body))
                self.send_response(500 if first and "/flaky/" in self.path else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def new_url(self, kind: str = "hooks") -> str:
        """A fresh callback URL."""
        return f"{self.url}/{kind}/{uuid.uuid4().hex}"

    def posts_to(self, url: str) -> list[Any]:
        """The JSON bodies POSTed to exactly `url`."""
        path = url.removeprefix(self.url)
        with self._lock:
            return [json.loads(body) for p, body in self.posts if p == path]

    def wait_for_posts(self, url: str, count: int) -> list[Any]:
        """The JSON bodies POSTed to exactly `url`, once there are at least `count` of them."""

        def enough() -> list[Any] | None:
            posts = self.posts_to(url)
            return posts if len(posts) >= count else None

        return wait_until(enough)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackReceiver]:
    server = CallbackReceiver()
    yield server
    server.stop()


def generate(http: httpx.Client, sim: ProviderSimulator, **fields: Any) -> httpx.Response:
    body = {"model": MODEL, "prompt": f"{INSTANT} a white sneaker", **fields}
    url = f"{sim.provider_base_url('apimodels')}/api/v1/images/generations"
    return http.post(url, json=body, headers=AUTH)


def edit(
    http: httpx.Client,
    sim: ProviderSimulator,
    files: list[tuple[str, tuple[str, bytes, str]]],
    **fields: str,
) -> httpx.Response:
    data = {"model": MODEL, "prompt": f"{INSTANT} on a model", **fields}
    url = f"{sim.provider_base_url('apimodels')}/api/v1/images/edits"
    return http.post(url, data=data, files=files, headers=AUTH)


def query(http: httpx.Client, sim: ProviderSimulator, task_id: str) -> httpx.Response:
    url = f"{sim.provider_base_url('apimodels')}/api/v1/images/generations"
    return http.get(url, params={"task_id": task_id}, headers=AUTH)


def task_id_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    task_id: str = response.json()["data"]["taskId"]
    return task_id


def finished(http: httpx.Client, sim: ProviderSimulator, task_id: str) -> dict[str, Any]:
    """The poll answer's `data` once the task is terminal."""

    def terminal() -> dict[str, Any] | None:
        data: dict[str, Any] = query(http, sim, task_id).json()["data"]
        return data if data["status"] in ("completed", "failed") else None

    return wait_until(terminal)


# ---------------------------------------------------------------- sync mode


def test_size_without_callback_answers_the_image_inline(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a request with an OpenAI-style size and no callback_url
    # When it is submitted
    response = generate(http, sim, size="2048x1152", quality="low")
    # Then the image comes back inline, as base64 and as a URL serving the same bytes
    body = response.json()
    assert set(body) == {"created", "data"}
    [item] = body["data"]
    assert set(item) == {"b64_json", "url"}
    assert item["url"].startswith(f"{sim.provider_base_url('apimodels')}/files/")
    picture = inline_image(response)
    assert (picture.format, picture.size) == ("PNG", (2048, 1152))
    assert http.get(item["url"]).content == base64.b64decode(item["b64_json"])


def test_sync_request_is_held_for_the_latency(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a sync request that takes 0.3 s
    started = time.monotonic()
    # When it is submitted
    response = generate(http, sim, prompt="[sim:latency=0.3] x", size="1024x1024")
    # Then the answer comes no sooner
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("size", ["1024x1024", "3840x2160", "1536x512", "816x816", "2880x2880"])
def test_arbitrary_sizes_within_the_rules_are_drawn_exactly(
    size: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a size that keeps the documented rules
    # When it is generated
    picture = inline_image(generate(http, sim, size=size, quality="low"))
    # Then the image has exactly that size
    assert picture.size == tuple(int(side) for side in size.split("x"))


@pytest.mark.parametrize(
    ("size", "complaint"),
    [
        ("1000x1000", "multiples of 16"),
        ("4096x1024", "long edge"),
        ("2048x512", "aspect ratio"),
        ("800x800", "pixels"),
        ("3840x2400", "pixels"),
        ("auto", "WxH"),
        ("2:1", "WxH"),
    ],
)
def test_sizes_breaking_the_rules_are_refused(
    size: str, complaint: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a size breaking one documented rule
    # When it is submitted
    response = generate(http, sim, size=size)
    # Then it is refused with an OpenAI-style 400 naming the rule
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert complaint in error["message"]


def test_fail_marker_answers_500_after_the_latency(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a sync request with the fail marker
    # When it is submitted
    response = generate(http, sim, prompt=f"{INSTANT} [sim:fail]", size="1024x1024")
    # Then it fails as a server error
    assert response.status_code == 500
    assert response.json() == {
        "error": {"message": "generation failed (simulated)", "type": "server_error", "code": None}
    }


def test_bad_image_marker_answers_base64_of_no_image(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a sync request with the bad-image marker
    # When it is answered
    response = generate(http, sim, prompt=f"{INSTANT} [sim:bad-image]", size="1024x1024")
    # Then it is a 200 whose bytes are no image
    with pytest.raises(UnidentifiedImageError):
        inline_image(response)


def test_never_marker_holds_the_request(sim: ProviderSimulator) -> None:
    # Given a client that waits 0.3 s and a sync request that never finishes
    # When it is submitted
    # Then no answer comes in time
    with httpx.Client(timeout=0.3, trust_env=False) as impatient, pytest.raises(httpx.ReadTimeout):
        generate(impatient, sim, prompt="[sim:never] x", size="1024x1024")


def test_never_marker_answers_504_once_the_hold_ends(
    sim: ProviderSimulator, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a hold shortened to 0.1 s
    monkeypatch.setattr(apimodels, "CREATE_TIMEOUT_S", 0.1)
    # When a sync request that never finishes is submitted
    response = generate(http, sim, prompt="[sim:never] x", size="1024x1024")
    # Then it times out as a 504
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "server_error"


# ---------------------------------------------------------------- async mode


def test_aspect_ratio_and_resolution_answer_a_task_id(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a request with aspect_ratio + resolution
    # When it is submitted
    response = generate(http, sim, aspect_ratio="9:16", resolution="2K")
    # Then the platform's async envelope carries a task id
    assert response.status_code == 200
    assert response.json() == {"code": 200, "data": {"taskId": task_id_of(response)}}


@pytest.mark.parametrize(
    ("aspect_ratio", "resolution", "pixels"),
    [
        ("16:9", "2K", (2048, 1152)),
        ("1:1", "4K", (2880, 2880)),
        ("9:16", "1k", (864, 1536)),
        ("1:1", "1K", (1024, 1024)),
        ("21:9", "1K", (1536, 656)),
    ],
)
def test_async_task_draws_the_derived_size(
    aspect_ratio: str,
    resolution: str,
    pixels: tuple[int, int],
    sim: ProviderSimulator,
    http: httpx.Client,
) -> None:
    # Given a finished task of an aspect ratio and tier
    response = generate(http, sim, aspect_ratio=aspect_ratio, resolution=resolution, quality="low")
    data = finished(http, sim, task_id_of(response))
    # When its result URL is downloaded
    picture = url_image(http, data["result"]["data"][0]["url"])
    # Then it has the derived pixels
    assert picture.size == pixels


def test_every_derived_size_keeps_the_arbitrary_size_rules() -> None:
    # Given every documented aspect ratio at every tier
    # When their sizes are derived
    # Then each one is a size apimodels accepts, with the tier's long edge at most
    for ratio in apimodels.ASPECT_RATIOS:
        for tier, long_edge in apimodels.TIER_LONG_EDGE.items():
            width, height = apimodels.derived_size(ratio, tier)
            assert apimodels.size_problem(width, height) is None, (ratio, tier)
            assert max(width, height) <= long_edge


def test_size_with_callback_url_is_async(
    sim: ProviderSimulator, http: httpx.Client, receiver: CallbackReceiver
) -> None:
    # Given a request with a WxH size and a callback_url
    response = generate(http, sim, size="1536x1024", callback_url=receiver.new_url())
    # When its task finishes
    data = finished(http, sim, task_id_of(response))
    # Then it was async, and drew the size
    assert url_image(http, data["result"]["data"][0]["url"]).size == (1536, 1024)


def test_completed_task_has_the_chosen_fields(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a finished async task
    task_id = task_id_of(generate(http, sim, aspect_ratio="1:1", resolution="1K"))
    # When it is polled
    data = finished(http, sim, task_id)
    # Then the poll answer has the chosen fields and an OpenAI-like url result
    assert set(data) == {"taskId", "status", "result", "error", "createdAt", "completedAt"}
    assert data["taskId"] == task_id
    assert data["status"] == "completed"
    assert data["error"] is None
    assert data["createdAt"].endswith("Z")
    assert data["completedAt"].endswith("Z")
    assert set(data["result"]) == {"created", "data"}
    assert data["result"]["data"] == [
        {"url": f"{sim.provider_base_url('apimodels')}/files/{task_id}/0.png"}
    ]


def test_task_moves_pending_processing_completed(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a task that takes a second
    response = generate(http, sim, prompt="[sim:latency=1] x", aspect_ratio="1:1", resolution="1K")
    task_id = task_id_of(response)
    # When it is polled until it finishes
    seen: list[str] = []

    def done() -> bool:
        status = query(http, sim, task_id).json()["data"]["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        return bool(status == "completed")

    wait_until(done)
    # Then it went through the statuses in order
    assert seen == ["pending", "processing", "completed"]


def test_quality_sets_the_latency(http: httpx.Client) -> None:
    # Given a low (40 s) and a high (120 s) quality task created together, x 0.01
    with ProviderSimulator(time_scale=0.01, api_key=API_KEY) as timed:
        fields = {"prompt": "x", "aspect_ratio": "1:1", "resolution": "1K"}
        low = task_id_of(generate(http, timed, quality="low", **fields))
        high = task_id_of(generate(http, timed, quality="high", **fields))
        # When the low one has completed
        finished(http, timed, low)
        # Then the high one is still running
        assert query(http, timed, high).json()["data"]["status"] == "processing"


def test_unknown_task_is_404(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given no task with this id
    # When it is polled
    response = query(http, sim, str(uuid.uuid4()))
    # Then the not-found body comes back
    assert response.status_code == 404
    assert response.json() == {"error": {"message": "task not found", "type": "not_found"}}


@pytest.mark.parametrize("marker", ["fail", "cancelled", "timeout"])
def test_failing_markers_end_failed(
    marker: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a task with a failing marker
    response = generate(
        http, sim, prompt=f"{INSTANT} [sim:{marker}]", aspect_ratio="1:1", resolution="1K"
    )
    # When it finishes
    data = finished(http, sim, task_id_of(response))
    # Then it is failed (apimodels' only failure status), with a message and no result
    assert data["status"] == "failed"
    assert data["error"]["message"]
    assert data["result"] is None


def test_poll_garbage_marker_truncates_the_terminal_answer(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a task with the poll-garbage marker that takes 0.3 s
    response = generate(
        http,
        sim,
        prompt="[sim:latency=0.3] [sim:poll-garbage]",
        aspect_ratio="1:1",
        resolution="1K",
    )
    task_id = task_id_of(response)
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
    # Then it was JSON while running, and a 200 with truncated JSON once terminal
    assert len(answers) > 1
    assert answers[-1].status_code == 200


# ---------------------------------------------------------------- callbacks


def test_callback_posts_the_poll_answer_to_exactly_the_callback_url(
    sim: ProviderSimulator, http: httpx.Client, receiver: CallbackReceiver
) -> None:
    # Given a task with a callback_url
    url = receiver.new_url()
    response = generate(
        http, sim, prompt="[sim:latency=0.1]", aspect_ratio="1:1", resolution="1K", callback_url=url
    )
    task_id = task_id_of(response)
    # When it reaches its terminal state
    [callback] = receiver.wait_for_posts(url, 1)
    # Then the callback_url itself (no suffix) received what a poll answers
    assert callback == query(http, sim, task_id).json()
    assert callback["data"]["status"] == "completed"


def test_failed_callback_delivery_is_retried(
    sim: ProviderSimulator, http: httpx.Client, receiver: CallbackReceiver
) -> None:
    # Given a callback_url that answers 500 the first time
    url = receiver.new_url("flaky")
    task_id = task_id_of(generate(http, sim, aspect_ratio="1:1", resolution="1K", callback_url=url))
    # When the callback is delivered
    [first, second] = receiver.wait_for_posts(url, 2)

    def logged() -> list[dict[str, Any]] | None:  # written once the answer has been read
        entries = http.get(f"{sim.base_url}/_sim/callbacks").json()
        done = [c for c in entries if c["task_id"] == task_id and c["status_code"] is not None]
        return done if len(done) == 2 else None

    # Then it was sent again with the same body, and both attempts are in the callback log
    assert first == second
    assert [(c["attempt"], c["status_code"], c["url"]) for c in wait_until(logged)] == [
        (1, 500, url),
        (2, 200, url),
    ]


def test_duplicate_callback_marker_delivers_twice(
    sim: ProviderSimulator, http: httpx.Client, receiver: CallbackReceiver
) -> None:
    # Given a task asking for a duplicate callback
    url = receiver.new_url()
    prompt = f"{INSTANT} [sim:duplicate-callback]"
    generate(http, sim, prompt=prompt, aspect_ratio="1:1", resolution="1K", callback_url=url)
    # When its callbacks arrive
    [first, second] = receiver.wait_for_posts(url, 2)
    # Then the same terminal body arrived twice
    assert first == second
    assert first["data"]["status"] == "completed"


def test_late_callback_marker_delivers_again_later(
    sim: ProviderSimulator, http: httpx.Client, receiver: CallbackReceiver
) -> None:
    # Given a task asking for a late extra callback
    url = receiver.new_url()
    prompt = f"{INSTANT} [sim:late-callback]"
    generate(http, sim, prompt=prompt, aspect_ratio="1:1", resolution="1K", callback_url=url)
    # When its first callback arrives
    [first] = receiver.wait_for_posts(url, 1)
    arrived = time.monotonic()
    # Then the same body arrives again, 0.2 s later (less the polling slack here)
    [_, second] = receiver.wait_for_posts(url, 2)
    assert second == first
    assert time.monotonic() - arrived >= 0.15


def test_no_callback_marker_sends_nothing(
    sim: ProviderSimulator, http: httpx.Client, receiver: CallbackReceiver
) -> None:
    # Given a task that must not call back, and a normal task finishing after it
    silent, control = receiver.new_url(), receiver.new_url()
    fields = {"aspect_ratio": "1:1", "resolution": "1K"}
    generate(
        http, sim, prompt="[sim:no-callback] [sim:latency=0.05]", callback_url=silent, **fields
    )
    generate(http, sim, prompt="[sim:latency=0.3]", callback_url=control, **fields)
    # When the later task's callback has arrived
    receiver.wait_for_posts(control, 1)
    # Then the silent task's callback_url got nothing
    assert receiver.posts_to(silent) == []


# ---------------------------------------------------------------- edits and references


def test_multipart_edit_with_two_images_starts_from_the_first(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a red-left/blue-right main image and a green second one, as `image` and `image[]`
    files = [
        ("image", ("main.png", png_bytes(red_left_blue_right()), "image/png")),
        ("image[]", ("second.png", png_bytes(Image.new("RGB", (64, 64), GREEN)), "image/png")),
    ]
    # When they are edited in sync mode
    picture = inline_image(edit(http, sim, files, size="1024x1024")).convert("RGB")
    # Then the output is the main image, edited, with the second one shown
    left, right = picture.getpixel((256, 512)), picture.getpixel((768, 512))
    assert isinstance(left, tuple)
    assert isinstance(right, tuple)
    assert left[0] > 150 > left[2]
    assert right[2] > 150 > right[0]
    samples = [picture.getpixel((x, y)) for x in range(0, 1024, 16) for y in range(0, 1024, 16)]
    assert sum(near(p, GREEN, 10) for p in samples) >= 10


def test_multipart_masked_edit_repaints_only_the_transparent_part(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a green image and a mask transparent on its left half
    files = [
        ("image", ("green.png", png_bytes(Image.new("RGB", (256, 256), GREEN)), "image/png")),
        ("mask", ("mask.png", png_bytes(left_half_mask()), "image/png")),
    ]
    # When they are edited as an async task
    response = edit(http, sim, files, aspect_ratio="1:1", resolution="1K")
    data = finished(http, sim, task_id_of(response))
    picture = url_image(http, data["result"]["data"][0]["url"]).convert("RGB")
    # Then the right half is the input untouched and the left half is repainted
    grid = range(16, 1024, 64)
    assert all(near(picture.getpixel((x, y)), GREEN, 2) for x in range(600, 1024, 64) for y in grid)
    assert not any(
        near(picture.getpixel((x, y)), GREEN, 60) for x in range(0, 420, 64) for y in grid
    )


def test_json_references_make_an_edit(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given the main image as raw base64 and a second one in image_urls, as a data URL
    main = base64.b64encode(png_bytes(red_left_blue_right())).decode()
    second = (
        "data:image/png;base64,"
        + base64.b64encode(png_bytes(Image.new("RGB", (64, 64), GREEN))).decode()
    )
    # When they are sent to the generations endpoint
    response = generate(http, sim, size="1024x1024", image_base64=main, image_urls=[second])
    picture = inline_image(response).convert("RGB")
    # Then the output is an edit of the main image
    left = picture.getpixel((256, 512))
    assert isinstance(left, tuple)
    assert left[0] > 150 > left[2]


def test_json_masked_edit_repaints_the_transparent_part(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a green image and a left-half mask, both as raw base64
    image = base64.b64encode(png_bytes(Image.new("RGB", (256, 256), GREEN))).decode()
    mask = base64.b64encode(png_bytes(left_half_mask())).decode()
    # When they are sent as JSON
    response = generate(http, sim, size="1024x1024", image=image, mask_base64=mask)
    picture = inline_image(response).convert("RGB")
    # Then only the left is repainted
    assert near(picture.getpixel((900, 500)), GREEN, 2)
    assert not near(picture.getpixel((100, 500)), GREEN, 60)


def test_undecodable_reference_is_refused_in_sync_mode(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a reference whose bytes are not an image
    files = [("image", ("junk.png", b"definitely not a png", "image/png"))]
    # When it is edited
    response = edit(http, sim, files, size="1024x1024")
    # Then the request is refused, saying why
    assert response.status_code == 400
    assert "not a decodable image" in response.json()["error"]["message"]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"model": "gpt-image-2"}, "model"),
        ({"prompt": " "}, "prompt"),
        ({"n": 2}, "n must be 1"),
        ({"quality": "ultra"}, "quality"),
        ({"background": "green"}, "background"),
        ({"response_format": "binary"}, "response_format"),
        ({}, "aspect_ratio and resolution"),
        ({"aspect_ratio": "7:5", "resolution": "1K"}, "aspect_ratio"),
        ({"aspect_ratio": "1:1"}, "resolution"),
        ({"aspect_ratio": "1:1", "resolution": "8K"}, "resolution"),
        ({"size": "1024x1024", "callback_url": "not-a-url"}, "callback_url"),
        ({"size": "1024x1024", "image": 42}, "image"),
        ({"size": "1024x1024", "image_urls": ["data:image/png;base64,AAAA"] * 17}, "16"),
        ({"size": "1024x1024", "mask_url": "https://example.com/m.png"}, "mask"),
    ],
)
def test_invalid_request_is_an_openai_style_400(
    fields: dict[str, Any], complaint: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a request with one invalid field
    # When it is submitted
    response = generate(http, sim, **fields)
    # Then it is refused, saying what is wrong
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    assert error["type"] == "invalid_request_error"
    assert complaint in error["message"]


def test_edits_without_an_image_file_are_refused(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a multipart edit with only a mask file
    files = [("mask", ("mask.png", png_bytes(left_half_mask()), "image/png"))]
    # When it is submitted
    response = edit(http, sim, files, size="1024x1024")
    # Then it is refused, asking for an image
    assert response.status_code == 400
    assert "image is required" in response.json()["error"]["message"]


def test_edits_only_take_multipart(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a JSON body sent to the edits endpoint
    url = f"{sim.provider_base_url('apimodels')}/api/v1/images/edits"
    # When it is submitted
    response = http.post(url, json={"model": MODEL, "prompt": "x"}, headers=AUTH)
    # Then it is refused
    assert response.status_code == 400
    assert "multipart/form-data" in response.json()["error"]["message"]


def test_moderation_is_a_400_with_moderation_blocked(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a prompt with the moderation marker
    # When it is submitted
    response = generate(http, sim, prompt="[sim:moderation] x", size="1024x1024")
    # Then it is refused as moderated
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "prompt rejected by content moderation",
            "type": "moderation_blocked",
            "code": "moderation_blocked",
        }
    }


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["none", "wrong"])
def test_requires_the_bearer_key(
    headers: dict[str, str], sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a request without the right key
    url = f"{sim.provider_base_url('apimodels')}/api/v1/images/generations"
    # When it is submitted
    response = http.post(url, json={"model": MODEL, "prompt": "x"}, headers=headers)
    # Then it is an authentication error
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_create_503_marker_answers_an_openai_style_503(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a prompt with the create-503 marker scoped to apimodels
    # When it is submitted
    response = generate(http, sim, prompt="[sim:create-503=apimodels] x", size="1024x1024")
    # Then apimodels is unavailable
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "server_error"


def test_multipart_request_is_journaled_without_file_bytes(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a multipart edit with a unique prompt and two image files
    marker = f"{INSTANT} journal-{uuid.uuid4().hex}"
    image = png_bytes(Image.new("RGB", (64, 64), GREEN))
    files = [("image[]", ("a.png", image, "image/png")), ("image[]", ("b.png", image, "image/png"))]
    edit(http, sim, files, prompt=marker, size="1024x1024")
    # When the request log is read
    log = http.get(f"{sim.base_url}/_sim/requests").json()
    [entry] = [e for e in log if e["body"] and e["body"].get("prompt") == marker]
    # Then the form fields are there and the files only as name, type and size
    assert entry["provider"] == "apimodels"
    assert entry["body"]["model"] == MODEL
    assert entry["body"]["image[]"] == [
        {"filename": "a.png", "content_type": "image/png", "bytes": len(image)},
        {"filename": "b.png", "content_type": "image/png", "bytes": len(image)},
    ]
