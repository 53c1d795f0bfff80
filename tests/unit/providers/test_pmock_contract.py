"""PmockProvider against shared/providers/pmock-generate-async.txt and its summary in README.md.

The create body and the ``{code, message, data, traceId}`` envelope are documented; the task
query and its status names are not (the adapter's docstring says what it assumes and that it
is configurable). Bodies are copied from those shapes; the adapter is pure, so no HTTP.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from image_gateway.errors import (
    InvalidRequest,
    ProviderBadResponse,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
)
from image_gateway.models.request import ImageRequest
from image_gateway.providers.base import ProviderInputs, ProviderState
from image_gateway.providers.pmock import PmockProvider

PHOTO = "https://images.example.com/cat.png"
OTHER_PHOTO = "https://images.example.com/dog.png"
MASK = "https://images.example.com/mask.png"
B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(64)).decode()
TASK_ID = "c0ffee-42"
# The create body's keys exactly as the docs' example spells them.
DOCUMENTED_KEYS = {
    "prompt",
    "model",
    "size",
    "n",
    "quality",
    "background",
    "outputFormat",
    "outputCompression",
    "moderation",
    "responseFormat",
    "inputFidelity",
    "image",
    "mask",
}


@pytest.fixture
def pmock() -> PmockProvider:
    return PmockProvider()


def envelope(data: Any, code: int = 200, message: str = "success") -> dict[str, Any]:
    """pmock's documented answer: ``{"code", "message", "data", "traceId"}``."""
    return {"code": code, "message": message, "data": data, "traceId": "7d1e0a"}


def task(status: str, **fields: Any) -> dict[str, Any]:
    """A task-query answer in the shape the adapter assumes (Mountsea's task, enveloped)."""
    return envelope({"taskId": TASK_ID, "status": status, "result": None, **fields})


def full_edit() -> tuple[ImageRequest, ProviderInputs]:
    """An edit that sets every optional field the request model has."""
    request = ImageRequest(
        prompt="put a hat on it",
        size="1024x1536",
        quality="high",
        background="opaque",
        output_format="webp",
        output_compression=55,
        moderation="low",
        input_fidelity="high",
        images=[PHOTO, OTHER_PHOTO],
        mask=MASK,
    )
    return request, ProviderInputs(images=[PHOTO, OTHER_PHOTO], mask=MASK)


# -- create ------------------------------------------------------------------------------------
def test_given_a_generation_when_building_the_create_call_then_it_posts_the_camel_case_body(
    pmock: PmockProvider,
) -> None:
    request = ImageRequest(prompt="a cat in orbit", size="1536x1024", quality="low")

    call = pmock.create_call(request, ProviderInputs(), callback_url=None)

    assert (call.method, call.path) == ("POST", "/api/ai/openai/images/generate")
    assert (call.params, call.form, call.files) == (None, None, ())
    assert call.json == {
        "prompt": "a cat in orbit",
        "model": "gpt-image-2",
        "size": "1536x1024",
        "n": 1,
        "quality": "low",
        "background": "auto",
        "outputFormat": "png",
        "moderation": "auto",
    }


def test_given_an_edit_with_every_field_when_building_then_the_documented_camel_keys_are_sent(
    pmock: PmockProvider,
) -> None:
    request, inputs = full_edit()

    call = pmock.create_call(request, inputs, callback_url=None)

    assert call.json == {
        "prompt": "put a hat on it",
        "model": "gpt-image-2",
        "size": "1024x1536",
        "n": 1,
        "quality": "high",
        "background": "opaque",
        "outputFormat": "webp",
        "outputCompression": 55,
        "moderation": "low",
        "inputFidelity": "high",
        "image": [PHOTO, OTHER_PHOTO],
        "mask": MASK,
    }


@pytest.mark.parametrize(
    "case",
    ["generation", "jpeg-generation", "full-edit"],
)
def test_given_any_request_when_building_then_no_snake_case_key_leaks(
    pmock: PmockProvider, case: str
) -> None:
    if case == "generation":
        request, inputs = ImageRequest(prompt="x"), ProviderInputs()
    elif case == "jpeg-generation":
        request = ImageRequest(prompt="x", output_format="jpeg", output_compression=80)
        inputs = ProviderInputs()
    else:
        request, inputs = full_edit()

    call = pmock.create_call(request, inputs, callback_url="https://gw.example.com/cb")

    assert call.json is not None
    assert [key for key in call.json if "_" in key] == []
    assert set(call.json) <= DOCUMENTED_KEYS


def test_given_one_input_image_when_building_then_image_is_still_a_list(
    pmock: PmockProvider,
) -> None:
    request = ImageRequest(prompt="add a hat", images=[PHOTO])

    call = pmock.create_call(request, ProviderInputs(images=[PHOTO]), callback_url=None)

    assert call.json is not None
    assert call.json["image"] == [PHOTO]


def test_given_an_edit_without_mask_or_fidelity_when_building_then_neither_is_sent(
    pmock: PmockProvider,
) -> None:
    request = ImageRequest(prompt="add a hat", images=[PHOTO])

    call = pmock.create_call(request, ProviderInputs(images=[PHOTO]), callback_url=None)

    assert call.json is not None
    assert {"mask", "inputFidelity", "outputCompression"}.isdisjoint(call.json)


def test_given_a_generation_when_building_then_no_edit_only_key_is_sent(
    pmock: PmockProvider,
) -> None:
    call = pmock.create_call(ImageRequest(prompt="x"), ProviderInputs(), callback_url=None)

    assert call.json is not None
    assert {"image", "mask", "inputFidelity"}.isdisjoint(call.json)


def test_given_a_callback_url_when_building_then_it_is_not_sent_as_pmock_has_no_callback(
    pmock: PmockProvider,
) -> None:
    call = pmock.create_call(ImageRequest(prompt="x"), ProviderInputs(), "https://gw.example.com")

    assert call.json is not None
    assert "https://gw.example.com" not in call.json.values()
    assert pmock.supports_callback is False


# -- parse_create ------------------------------------------------------------------------------
def test_given_the_documented_create_envelope_when_parsed_then_the_task_id_comes_out(
    pmock: PmockProvider,
) -> None:
    body = {"code": 200, "message": "success", "data": {"taskId": TASK_ID}, "traceId": "7d1e0a"}

    assert pmock.parse_create(200, body) == TASK_ID


@pytest.mark.parametrize(
    "body",
    [
        envelope(None),
        envelope({}),
        envelope({"taskId": ""}),
        envelope({"taskId": 42}),
    ],
    ids=["null-data", "no-task-id", "empty-task-id", "numeric-task-id"],
)
def test_given_an_envelope_without_a_task_id_when_parsed_then_it_is_a_bad_response(
    pmock: PmockProvider, body: dict[str, Any]
) -> None:
    with pytest.raises(ProviderBadResponse) as caught:
        pmock.parse_create(200, body)

    assert (caught.value.code, caught.value.provider) == ("provider_bad_response", "pmock")


@pytest.mark.parametrize(
    "body",
    [{"taskId": TASK_ID}, {"data": {"taskId": TASK_ID}}, [], "ok", None],
    ids=["bare-task-id", "data-without-code", "list", "string", "null"],
)
def test_given_a_body_without_the_envelope_when_parsed_then_it_is_a_bad_response(
    pmock: PmockProvider, body: Any
) -> None:
    with pytest.raises(ProviderBadResponse) as caught:
        pmock.parse_create(200, body)

    assert caught.value.code == "provider_bad_response"


def test_given_a_non_200_code_on_http_200_when_parsed_then_it_is_a_rejection(
    pmock: PmockProvider,
) -> None:
    body = envelope(None, code=400, message="size must be one of auto, 1024x1024")

    with pytest.raises(ProviderRejected) as caught:
        pmock.parse_create(200, body)

    assert (caught.value.code, caught.value.provider_code) == ("provider_rejected", "400")
    assert caught.value.retryable is False
    assert "size must be one of" in caught.value.message


def test_given_a_moderation_message_on_http_200_when_parsed_then_it_is_moderation_blocked(
    pmock: PmockProvider,
) -> None:
    body = envelope(None, code=400, message="prompt rejected by content moderation")

    with pytest.raises(ProviderRejected) as caught:
        pmock.parse_create(200, body)

    assert (caught.value.code, caught.value.retryable) == ("moderation_blocked", False)
    assert caught.value.provider_code == "400"


def test_given_code_404_on_http_200_when_parsed_then_the_task_is_missing(
    pmock: PmockProvider,
) -> None:
    with pytest.raises(ProviderError) as caught:
        pmock.parse_status(200, envelope(None, code=404, message="task not found"))

    assert (caught.value.code, caught.value.retryable) == ("provider_task_missing", False)
    assert "task not found" in caught.value.message


@pytest.mark.parametrize("code", [429, 500, 502, 503])
def test_given_a_busy_or_failing_code_on_http_200_when_parsed_then_it_is_retryable(
    pmock: PmockProvider, code: int
) -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        pmock.parse_create(200, envelope(None, code=code, message="upstream busy"))

    assert (caught.value.code, caught.value.retryable) == ("provider_unavailable", True)
    assert caught.value.provider_code == str(code)


def test_given_an_auth_error_envelope_when_parsed_then_it_is_a_plain_rejection(
    pmock: PmockProvider,
) -> None:
    with pytest.raises(ProviderRejected) as caught:
        pmock.parse_create(401, envelope(None, code=401, message="invalid api key"))

    assert (caught.value.code, caught.value.provider_code) == ("provider_rejected", "401")


# -- status call -------------------------------------------------------------------------------
def test_given_default_options_when_building_the_status_call_then_it_gets_tasks_by_task_id(
    pmock: PmockProvider,
) -> None:
    call = pmock.status_call(TASK_ID)

    assert (call.method, call.path, call.params, call.json) == (
        "GET",
        "/api/ai/openai/tasks",
        {"taskId": TASK_ID},
        None,
    )


def test_given_a_task_id_with_reserved_characters_when_building_then_the_param_is_verbatim(
    pmock: PmockProvider,
) -> None:
    call = pmock.status_call("a/b&c=d+e")

    assert call.params == {"taskId": "a/b&c=d+e"}


def test_given_a_path_style_status_path_when_building_then_the_id_goes_in_the_path() -> None:
    pmock = PmockProvider({"status_path": "/api/ai/tasks/{task_id}"})

    call = pmock.status_call("task/7")

    assert (call.method, call.path, call.params) == ("GET", "/api/ai/tasks/task%2F7", None)


def test_given_a_status_path_with_extra_query_when_building_then_every_param_is_kept() -> None:
    pmock = PmockProvider({"status_path": "/api/ai/task/query?id={task_id}&kind=image"})

    call = pmock.status_call(TASK_ID)

    assert (call.path, call.params) == ("/api/ai/task/query", {"id": TASK_ID, "kind": "image"})


def test_given_configured_status_names_when_parsed_then_they_map_and_defaults_no_longer_do() -> (
    None
):
    pmock = PmockProvider({"succeeded_statuses": ["done"], "running_statuses": ["working"]})

    done = pmock.parse_status(200, task("done", result={"data": [{"b64_json": B64}]}))
    working = pmock.parse_status(200, task("working"))

    assert (done.state, done.raw_status) == (ProviderState.SUCCEEDED, "done")
    assert [image.b64 for image in done.images] == [B64]
    assert working.state is ProviderState.RUNNING
    with pytest.raises(ProviderBadResponse):
        pmock.parse_status(200, task("completed", result=B64))


@pytest.mark.parametrize(
    "options",
    [
        {"status_path": "/api/ai/openai/tasks"},
        {"status_path": "api/ai/openai/tasks?taskId={task_id}"},
        {"poll_path": "/x/{task_id}"},
        {"succeeded_statuses": "completed"},
    ],
    ids=["no-placeholder", "relative-path", "unknown-option", "statuses-not-a-list"],
)
def test_given_bad_options_when_building_the_adapter_then_it_is_an_invalid_request(
    options: dict[str, Any],
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        PmockProvider(options)

    assert (caught.value.code, caught.value.status_code) == ("provider_options_invalid", 400)
    assert re.search(r"\bpmock\b", caught.value.message)


# -- parse_status ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("pending", ProviderState.PENDING),
        ("ready", ProviderState.PENDING),
        ("assigned", ProviderState.PENDING),
        ("processing", ProviderState.RUNNING),
    ],
)
def test_given_an_unfinished_default_status_when_parsed_then_it_maps_to_the_canonical_state(
    pmock: PmockProvider, raw: str, state: ProviderState
) -> None:
    status = pmock.parse_status(200, task(raw))

    assert (status.state, status.raw_status, status.images, status.error) == (state, raw, [], None)


@pytest.mark.parametrize(
    "result",
    [{"created": 1714560000, "data": [{"b64_json": B64}]}, B64],
    ids=["openai-images-response", "bare-base64"],
)
def test_given_a_completed_task_when_parsed_then_it_succeeded_with_the_base64_image(
    pmock: PmockProvider, result: Any
) -> None:
    status = pmock.parse_status(200, task("completed", result=result))

    assert (status.state, status.raw_status, status.error) == (
        ProviderState.SUCCEEDED,
        "completed",
        None,
    )
    assert [(image.b64, image.url) for image in status.images] == [(B64, None)]


@pytest.mark.parametrize(
    "result",
    [None, "", {"data": []}, {"data": [{"revised_prompt": "x"}]}, 7],
    ids=["null", "empty-string", "empty-data", "entry-without-image", "number"],
)
def test_given_a_completed_task_without_an_image_when_parsed_then_it_is_a_bad_response(
    pmock: PmockProvider, result: Any
) -> None:
    with pytest.raises(ProviderBadResponse):
        pmock.parse_status(200, task("completed", result=result))


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("failed", "provider_task_failed"),
        ("cancelled", "provider_cancelled"),
        ("timeout", "provider_timeout"),
    ],
)
def test_given_a_terminal_failure_when_parsed_then_it_failed_with_a_stable_code(
    pmock: PmockProvider, raw: str, code: str
) -> None:
    status = pmock.parse_status(200, task(raw, errorMessage="worker crashed", errorCode=50010))

    assert (status.state, status.raw_status) == (ProviderState.FAILED, raw)
    assert status.error is not None
    assert (status.error.code, status.error.provider_code, status.error.retryable) == (
        code,
        "50010",
        False,
    )
    assert "worker crashed" in status.error.message


def test_given_a_failure_without_a_message_when_parsed_then_the_status_names_it(
    pmock: PmockProvider,
) -> None:
    status = pmock.parse_status(200, task("timeout"))

    assert status.error is not None
    assert (status.error.code, status.error.message) == ("provider_timeout", "pmock: task timeout")


def test_given_a_failure_about_moderation_when_parsed_then_it_is_moderation_blocked(
    pmock: PmockProvider,
) -> None:
    body = task("failed", errorMessage="Your request was rejected by the safety system")

    status = pmock.parse_status(200, body)

    assert status.state is ProviderState.FAILED
    assert status.error is not None
    assert (status.error.code, status.error.retryable) == ("moderation_blocked", False)


@pytest.mark.parametrize("raw", ["done", "succeeded", "COMPLETED", "running"])
def test_given_an_unknown_status_when_parsed_then_it_is_a_bad_response(
    pmock: PmockProvider, raw: str
) -> None:
    with pytest.raises(ProviderBadResponse) as caught:
        pmock.parse_status(200, task(raw))

    assert repr(raw) in caught.value.message


@pytest.mark.parametrize(
    "body",
    [envelope(None), envelope({"taskId": TASK_ID}), envelope({"status": 3}), {"status": "pending"}],
    ids=["null-data", "no-status", "numeric-status", "no-envelope"],
)
def test_given_an_answer_without_data_status_when_parsed_then_it_is_a_bad_response(
    pmock: PmockProvider, body: dict[str, Any]
) -> None:
    with pytest.raises(ProviderBadResponse):
        pmock.parse_status(200, body)


def test_given_http_404_when_parsing_status_then_the_task_is_missing(pmock: PmockProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        pmock.parse_status(404, envelope(None, code=404, message="no such task"))

    assert caught.value.code == "provider_task_missing"


# -- capabilities ------------------------------------------------------------------------------
def test_given_the_adapter_when_asked_for_capabilities_then_they_are_the_documented_ones(
    pmock: PmockProvider,
) -> None:
    assert pmock.capabilities.describe() == {
        "modes": ["async"],
        "callback": False,
        "batch_poll": False,
        "max_images": 16,
        "mask": True,
        "backgrounds": ["auto", "opaque", "transparent"],
        "output_formats": ["jpeg", "png", "webp"],
        "output_compression": True,
        "sizes": ["auto", "1024x1024", "1024x1536", "1536x1024"],
    }
