"""Provider simulator, apimart dialect: async tasks, ratio + resolution tiers, URL results,
batch queries and the webhook callback, over real HTTP."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from devstack.simulator import ProviderSimulator
from tests.devstack.support import (
    API_KEY,
    AUTH,
    INSTANT,
    WebhookReceiver,
    apimart_create,
    apimart_finished,
    apimart_image,
    apimart_query,
    apimart_task_id,
    png_bytes,
    red_left_blue_right,
    wait_until,
)

# ---------------------------------------------------------------- create, query and batch


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


# ---------------------------------------------------------------- auth and validation


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


# ---------------------------------------------------------------- rendering and inputs


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


# ---------------------------------------------------------------- webhook callbacks


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


def test_a_task_rendered_ahead_is_queried_without_rendering_again(
    sim: ProviderSimulator, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a finished task whose image the simulator rendered ahead (make bench does, so that
    # a child's first query measures the gateway, not Pillow)
    task_id = apimart_task_id(http, sim, prompt=f"{INSTANT} a wren")
    assert sim.render_ahead(task_id) is True
    assert sim.render_ahead("task_unknown") is False

    # When it is queried and its file fetched, nothing is rendered any more
    rendered: list[object] = []
    monkeypatch.setattr(sim._store, "_render", lambda task: rendered.append(task) or b"")
    data = apimart_finished(http, sim, task_id)
    image = apimart_image(http, data)

    # Then the image is the one rendered ahead
    assert rendered == []
    assert image.format == "PNG" and image.size == (1024, 1024)
