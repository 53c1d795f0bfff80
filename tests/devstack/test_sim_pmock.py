"""Provider simulator, pmock dialect: the code/message envelope, async tasks, real images."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image, UnidentifiedImageError

from devstack.simulator import ProviderSimulator
from tests.devstack.support import (
    AUTH,
    GREEN,
    INSTANT,
    b64_image,
    data_url,
    left_half_mask,
    near,
    red_left_blue_right,
    wait_until,
)

MODEL = "gpt-image-2"
TERMINAL = {"completed", "failed", "cancelled", "timeout"}


def create(http: httpx.Client, sim: ProviderSimulator, **fields: Any) -> httpx.Response:
    body = {"prompt": "a paper boat on a pond", "model": MODEL, **fields}
    url = f"{sim.provider_base_url('pmock')}/api/ai/openai/images/generate"
    return http.post(url, json=body, headers=AUTH)


def query(http: httpx.Client, sim: ProviderSimulator, task_id: str) -> httpx.Response:
    url = f"{sim.provider_base_url('pmock')}/api/ai/openai/tasks"
    return http.get(url, params={"taskId": task_id}, headers=AUTH)


def task_id_of(http: httpx.Client, sim: ProviderSimulator, **fields: Any) -> str:
    response = create(http, sim, **fields)
    assert response.status_code == 200, response.text
    assert response.json()["code"] == 200, response.text
    task_id: str = response.json()["data"]["taskId"]
    return task_id


def finished(http: httpx.Client, sim: ProviderSimulator, task_id: str) -> dict[str, Any]:
    """The envelope's `data` once the task is terminal."""

    def terminal() -> dict[str, Any] | None:
        data: dict[str, Any] = query(http, sim, task_id).json()["data"]
        return data if data["status"] in TERMINAL else None

    return wait_until(terminal)


def result_image(data: dict[str, Any]) -> Image.Image:
    return b64_image(data["result"]["data"][0]["b64_json"])


# ---------------------------------------------------------------- envelope and task shapes


def test_create_answers_the_envelope_with_a_uuid_task_id(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a valid text-to-image request
    # When it is submitted
    response = create(http, sim, size="1024x1024", quality="low")
    # Then pmock's envelope carries the task id
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"code", "message", "data", "traceId"}
    assert body["code"] == 200
    assert isinstance(body["message"], str)
    assert body["traceId"]
    assert list(body["data"]) == ["taskId"]
    uuid.UUID(body["data"]["taskId"])


def test_completed_task_has_the_chosen_fields(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a task that has finished
    task_id = task_id_of(http, sim, prompt=f"{INSTANT} a boat")
    # When it is queried
    data = finished(http, sim, task_id)
    # Then data has mountsea-like task fields and an OpenAI images response as result
    assert set(data) == {
        "taskId",
        "status",
        "result",
        "errorMessage",
        "errorCode",
        "createdAt",
        "finishedAt",
    }
    assert data["taskId"] == task_id
    assert data["status"] == "completed"
    assert data["errorMessage"] is None
    assert data["errorCode"] is None
    assert data["createdAt"].endswith("Z")
    assert data["finishedAt"].endswith("Z")
    assert set(data["result"]) == {
        "created",
        "data",
        "size",
        "quality",
        "output_format",
        "background",
    }
    assert data["result"]["size"] == "1024x1024"


def test_task_moves_pending_processing_completed(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a task that takes a second
    task_id = task_id_of(http, sim, prompt="[sim:latency=1] a boat")
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


def test_unknown_task_is_http_200_with_code_404(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given no task with this id
    # When it is queried
    response = query(http, sim, str(uuid.uuid4()))
    # Then the envelope says not found, on HTTP 200
    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["message"], body["data"]) == (404, "task not found", None)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["none", "wrong"])
def test_requires_the_bearer_key(
    headers: dict[str, str], sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a request without the right key
    url = f"{sim.provider_base_url('pmock')}/api/ai/openai/images/generate"
    # When it is submitted
    response = http.post(url, json={"prompt": "x", "model": MODEL}, headers=headers)
    # Then the answer is HTTP 401 with envelope code 401
    assert response.status_code == 401
    assert response.json()["code"] == 401
    assert response.json()["data"] is None


# ---------------------------------------------------------------- validation and moderation


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"output_format": "png"}, "unknown field(s): output_format"),
        ({"model": None}, "model"),
        ({"model": "gpt-image-1"}, "model"),
        ({"prompt": ""}, "prompt"),
        ({"n": 2}, "n must be 1"),
        ({"size": "512x512"}, "size"),
        ({"quality": "ultra"}, "quality"),
        ({"background": "green"}, "background"),
        ({"outputFormat": "gif"}, "outputFormat"),
        ({"outputCompression": 101}, "outputCompression"),
        ({"moderation": "high"}, "moderation"),
        ({"responseFormat": "binary"}, "responseFormat"),
        ({"inputFidelity": "medium"}, "inputFidelity"),
        ({"image": "https://example.com/a.png"}, "image"),
        ({"image": ["data:image/png;base64,AAAA"] * 17}, "image"),
        ({"mask": "https://example.com/mask.png"}, "mask requires image"),
        ({"background": "transparent", "outputFormat": "jpeg"}, "transparent"),
    ],
)
def test_invalid_create_is_http_200_with_code_400(
    fields: dict[str, Any], complaint: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a request with one invalid or unknown field
    # When it is submitted
    response = create(http, sim, **fields)
    # Then the envelope says 400 and what is wrong, on HTTP 200
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 400
    assert complaint in body["message"]
    assert body["data"] is None


def test_moderation_is_http_200_with_code_400(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a prompt with the moderation marker
    # When it is submitted
    response = create(http, sim, prompt="[sim:moderation] x")
    # Then the envelope carries the moderation rejection, on HTTP 200
    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["message"], body["data"]) == (
        400,
        "prompt rejected by content moderation",
        None,
    )


def test_null_fields_are_absent(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given optional fields sent as null (the docs: a null image means text-to-image)
    fields = {"image": None, "mask": None, "size": None, "outputCompression": None}
    # When the request is submitted
    response = create(http, sim, **fields)
    # Then it is accepted
    assert response.json()["code"] == 200


# ---------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    ("size", "output_format", "pixels", "pil_format"),
    [
        ("1024x1536", "png", (1024, 1536), "PNG"),
        ("1536x1024", "jpeg", (1536, 1024), "JPEG"),
        ("auto", "webp", (1024, 1024), "WEBP"),
    ],
)
def test_result_is_base64_of_an_image_of_the_asked_size_and_format(
    size: str,
    output_format: str,
    pixels: tuple[int, int],
    pil_format: str,
    sim: ProviderSimulator,
    http: httpx.Client,
) -> None:
    # Given a finished task asking for a size and format (camelCase fields)
    task_id = task_id_of(
        http, sim, prompt=INSTANT, size=size, outputFormat=output_format, outputCompression=80
    )
    data = finished(http, sim, task_id)
    # When its b64_json is decoded
    picture = result_image(data)
    # Then it is a real image of that size and format
    assert picture.format == pil_format
    assert picture.size == pixels
    assert data["result"]["output_format"] == output_format


def test_edit_with_two_references_starts_from_the_first_and_shows_the_second(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a red-left/blue-right main input and a green second input
    main = red_left_blue_right()
    second = Image.new("RGB", (64, 64), GREEN)
    # When they are edited together
    task_id = task_id_of(
        http, sim, prompt=f"{INSTANT} dusk", image=[data_url(main), data_url(second)]
    )
    picture = result_image(finished(http, sim, task_id)).convert("RGB")
    # Then the output is still red on the left, blue on the right, with the green one shown
    left, right = picture.getpixel((256, 512)), picture.getpixel((768, 512))
    assert isinstance(left, tuple)
    assert isinstance(right, tuple)
    assert left[0] > 150 > left[2]
    assert right[2] > 150 > right[0]
    samples = [picture.getpixel((x, y)) for x in range(0, 1024, 16) for y in range(0, 1024, 16)]
    assert sum(near(p, GREEN, 10) for p in samples) >= 10


def test_masked_edit_repaints_only_the_transparent_part(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a green input and a mask transparent on its left half only
    mask = left_half_mask()
    source = data_url(Image.new("RGB", (256, 256), GREEN))
    # When the input is edited with the mask
    task_id = task_id_of(http, sim, prompt=INSTANT, image=[source], mask=data_url(mask))
    picture = result_image(finished(http, sim, task_id)).convert("RGB")
    # Then the right half is the input untouched and the left half is repainted
    grid = range(16, 1024, 64)
    assert all(near(picture.getpixel((x, y)), GREEN, 2) for x in range(600, 1024, 64) for y in grid)
    assert not any(
        near(picture.getpixel((x, y)), GREEN, 60) for x in range(0, 420, 64) for y in grid
    )


# ---------------------------------------------------------------- fault markers


def test_fail_marker_ends_failed(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a task with the fail marker
    data = finished(http, sim, task_id_of(http, sim, prompt=f"{INSTANT} [sim:fail]"))
    # Then it failed with the simulated message and code, and no result
    assert data["status"] == "failed"
    assert data["errorMessage"] == "generation failed (simulated)"
    assert data["errorCode"] == 50001
    assert data["result"] is None


@pytest.mark.parametrize("marker", ["cancelled", "timeout"])
def test_cancelled_and_timeout_markers_end_in_their_status(
    marker: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a task with a cancelled/timeout marker
    data = finished(http, sim, task_id_of(http, sim, prompt=f"{INSTANT} [sim:{marker}]"))
    # Then it ends in that status with an error message
    assert data["status"] == marker
    assert data["errorMessage"]


def test_never_marker_keeps_the_task_processing(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a task whose latency is zero but that never finishes
    task_id = task_id_of(http, sim, prompt=f"{INSTANT} [sim:never]")
    # When it is queried
    data = query(http, sim, task_id).json()["data"]
    # Then it is still processing
    assert data["status"] == "processing"


def test_create_503_marker_answers_503_in_the_envelope(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a prompt with the create-503 marker scoped to pmock
    # When it is submitted
    response = create(http, sim, prompt="[sim:create-503=pmock] x")
    # Then pmock is unavailable, still answering its envelope
    assert response.status_code == 503
    assert response.json()["code"] == 503


def test_a_marker_scoped_to_another_provider_is_ignored(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a create-503 marker scoped to apimart
    # When pmock gets it
    response = create(http, sim, prompt="[sim:create-503=apimart] x")
    # Then pmock works normally
    assert response.json()["code"] == 200


def test_create_garbage_marker_answers_200_html(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a prompt with the create-garbage marker
    # When it is submitted
    response = create(http, sim, prompt="[sim:create-garbage] x")
    # Then the answer is 200 but not JSON
    assert response.status_code == 200
    assert response.text == "<html>oops</html>"


def test_create_timeout_marker_outlasts_the_client_timeout(sim: ProviderSimulator) -> None:
    # Given a client that waits 0.3 s and a prompt with the create-timeout marker
    # When it is submitted
    # Then no answer comes in time
    with httpx.Client(timeout=0.3, trust_env=False) as impatient, pytest.raises(httpx.ReadTimeout):
        create(impatient, sim, prompt="[sim:create-timeout] x")


def test_poll_garbage_marker_truncates_the_terminal_answer(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a task with the poll-garbage marker that takes 0.3 s
    task_id = task_id_of(http, sim, prompt="[sim:latency=0.3] [sim:poll-garbage]")
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
    # Then the answers were envelopes while it ran and a 200 with truncated JSON once terminal
    assert len(answers) > 1
    assert all(a.json()["code"] == 200 for a in answers[:-1])
    assert answers[-1].status_code == 200


def test_bad_image_marker_returns_base64_of_no_image(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a finished task with the bad-image marker
    data = finished(http, sim, task_id_of(http, sim, prompt=f"{INSTANT} [sim:bad-image]"))
    # When its b64_json is decoded
    # Then the task completed but the bytes are no image
    assert data["status"] == "completed"
    with pytest.raises(UnidentifiedImageError):
        result_image(data)


def test_requests_are_journaled_as_pmock(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a pmock request with a unique prompt
    marker = f"journal-{uuid.uuid4().hex}"
    create(http, sim, prompt=marker)
    # When the request log is read
    log = http.get(f"{sim.base_url}/_sim/requests").json()
    [entry] = [e for e in log if e["body"] and e["body"].get("prompt") == marker]
    # Then it is recorded under pmock
    assert entry["provider"] == "pmock"
    assert entry["path"] == "/pmock/api/ai/openai/images/generate"
    assert sim.provider_base_url("pmock") == f"{sim.base_url}/pmock"
