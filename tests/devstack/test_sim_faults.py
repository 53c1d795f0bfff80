"""Provider simulator, fault markers (`[sim:...]` in the prompt): failing creates, failing,
stuck or garbled tasks, bad images and misbehaving callbacks (apimart and mountsea-async; the
other dialects' files test their own error shapes)."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from PIL import Image, UnidentifiedImageError

from devstack.simulator import ProviderSimulator
from tests.devstack.support import (
    INSTANT,
    WebhookReceiver,
    apimart_create,
    apimart_finished,
    apimart_query,
    apimart_task_id,
    mountsea_create,
    mountsea_finished,
    mountsea_image,
    mountsea_image_bytes,
    mountsea_query,
    mountsea_task_id,
    wait_until,
)

# ---------------------------------------------------------------- callback markers


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


# ---------------------------------------------------------------- create markers


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


def test_first_creates_503_marker_fails_the_first_creates_of_a_prompt_at_each_provider(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a prompt whose first create at each provider answers 503
    prompt = "[sim:first-creates-503=1] three foxes"
    # When it is created twice at apimart, then once at mountsea-async
    first, second = (apimart_create(http, sim, prompt=prompt).status_code for _ in range(2))
    elsewhere = mountsea_create(http, sim, prompt=prompt).status_code
    # Then the first create at each provider failed, the second at apimart did not
    assert (first, second, elsewhere) == (503, 200, 503)


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


# ---------------------------------------------------------------- task markers


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


# ---------------------------------------------------------------- result markers


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


def test_unreachable_result_marker_names_a_url_nothing_answers(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a finished apimart task with the unreachable-result marker
    task_id = apimart_task_id(http, sim, prompt=f"{INSTANT} [sim:unreachable-result]")
    # When it is queried
    url = apimart_finished(http, sim, task_id)["result"]["images"][0]["url"][0]
    # Then its result URL refuses the connection
    with pytest.raises(httpx.ConnectError):
        http.get(url)


def test_stall_first_file_marker_holds_only_the_first_download(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a finished apimart task whose first result download is held 0.5 s
    task_id = apimart_task_id(http, sim, prompt=f"{INSTANT} [sim:stall-first-file=0.5]")
    url = apimart_finished(http, sim, task_id)["result"]["images"][0]["url"][0]
    # When the result is downloaded twice
    first = http.get(url)
    second = http.get(url)
    # Then both get the image, only the first waited
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.content == second.content
    assert first.elapsed.total_seconds() >= 0.5
    assert second.elapsed.total_seconds() < 0.5
