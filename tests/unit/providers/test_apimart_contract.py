"""ApimartProvider against shared/providers/apimart-gpt-image-2.txt and its summary in README.md.

Bodies here are copied from the documented shapes; the adapter is pure, so no HTTP is involved.
"""

from __future__ import annotations

from typing import Any

import pytest
from image_gateway.errors import ProviderBadResponse, ProviderError, ProviderRejected, Unprocessable
from image_gateway.models.request import ImageRequest
from image_gateway.providers.apimart import ApimartProvider
from image_gateway.providers.base import ProviderInputs, ProviderState

PHOTO = "https://images.example.com/cat.png"
RESULT_URL = "https://upload.apimart.ai/f/image/task_01-0.png"
CALLBACK = "https://gw.example.com/webhooks/apimart/task-1/abc123"


@pytest.fixture
def apimart() -> ApimartProvider:
    return ApimartProvider()


def task_body(status: str, **data: Any) -> dict[str, Any]:
    """A ``GET /v1/tasks/{id}`` answer (the callback body has the same shape)."""
    return {"code": 200, "data": {"id": "task_01", "status": status, "progress": 0, **data}}


def completed(url: Any) -> dict[str, Any]:
    return task_body(
        "completed",
        progress=100,
        result={"images": [{"url": url, "expires_at": 1767225600}]},
        actual_time=44,
    )


# -- create ------------------------------------------------------------------------------------
def test_given_a_generation_when_building_the_create_call_then_it_posts_the_documented_body(
    apimart: ApimartProvider,
) -> None:
    request = ImageRequest(prompt="a lighthouse", size="1024x1536")

    call = apimart.create_call(request, ProviderInputs(), callback_url=None)

    assert (call.method, call.path) == ("POST", "/v1/images/generations")
    assert call.json == {
        "model": "gpt-image-2",
        "prompt": "a lighthouse",
        "n": 1,
        "size": "1024x1536",
        "resolution": "1k",
        "official_fallback": False,
    }


def test_given_an_edit_with_a_callback_when_building_the_create_call_then_images_and_webhook_go(
    apimart: ApimartProvider,
) -> None:
    request = ImageRequest(prompt="add a hat", images=[PHOTO, PHOTO])
    inputs = ProviderInputs(images=[PHOTO, "data:image/png;base64,iVBORw0KGgo="])

    call = apimart.create_call(request, inputs, callback_url=CALLBACK)

    assert call.json is not None
    assert call.json["image_urls"] == [PHOTO, "data:image/png;base64,iVBORw0KGgo="]
    assert call.json["webhook"] == CALLBACK


def test_given_aspect_ratio_and_resolution_when_building_then_size_is_the_ratio_and_tier_lower(
    apimart: ApimartProvider,
) -> None:
    request = ImageRequest(prompt="a valley", aspect_ratio="16:9", resolution="4K")

    call = apimart.create_call(request, ProviderInputs(), callback_url=None)

    assert call.json is not None
    assert (call.json["size"], call.json["resolution"]) == ("16:9", "4k")


@pytest.mark.parametrize(("size", "tier"), [("1536x1024", "1k"), ("2048x2048", "2k")])
def test_given_an_exact_size_when_building_then_resolution_is_its_lower_case_tier(
    apimart: ApimartProvider, size: str, tier: str
) -> None:
    call = apimart.create_call(ImageRequest(prompt="x", size=size), ProviderInputs(), None)

    assert call.json is not None
    assert (call.json["size"], call.json["resolution"]) == (size, tier)


def test_given_a_generation_without_callback_when_building_then_no_image_urls_nor_webhook_go(
    apimart: ApimartProvider,
) -> None:
    call = apimart.create_call(ImageRequest(prompt="x"), ProviderInputs(), callback_url=None)

    assert call.json is not None
    assert {"image_urls", "webhook"}.isdisjoint(call.json)


def test_given_a_mask_when_checking_the_request_then_it_is_unprocessable_naming_the_field(
    apimart: ApimartProvider,
) -> None:
    request = ImageRequest(prompt="fill", images=[PHOTO], mask=PHOTO)

    with pytest.raises(Unprocessable) as caught:
        apimart.check(request)

    assert caught.value.details == {"provider": "apimart", "field": "mask"}
    assert caught.value.status_code == 422


def test_given_the_documented_create_answer_when_parsed_then_the_task_id_comes_out(
    apimart: ApimartProvider,
) -> None:
    body = {"code": 200, "data": [{"status": "submitted", "task_id": "task_01JX8Y7Z"}]}

    assert apimart.parse_create(200, body) == "task_01JX8Y7Z"


@pytest.mark.parametrize(
    "body",
    [{"code": 200, "data": []}, {"code": 200, "data": [{"status": "submitted"}]}, {"code": 200}],
    ids=["empty-data", "no-task-id", "no-data"],
)
def test_given_a_create_answer_without_task_id_when_parsed_then_it_is_a_bad_response(
    apimart: ApimartProvider, body: dict[str, Any]
) -> None:
    with pytest.raises(ProviderBadResponse):
        apimart.parse_create(200, body)


def test_given_a_moderation_refusal_at_create_when_parsed_then_it_is_moderation_blocked(
    apimart: ApimartProvider,
) -> None:
    body = {
        "code": 400,
        "error": {"message": "prompt rejected by content moderation", "type": "moderation_blocked"},
    }

    with pytest.raises(ProviderRejected) as caught:
        apimart.parse_create(400, body)

    assert (caught.value.code, caught.value.retryable) == ("moderation_blocked", False)


def test_given_an_auth_error_at_create_when_parsed_then_it_is_a_plain_rejection(
    apimart: ApimartProvider,
) -> None:
    body = {"code": 401, "error": {"message": "invalid api key", "type": "authentication_error"}}

    with pytest.raises(ProviderRejected) as caught:
        apimart.parse_create(401, body)

    assert (caught.value.code, caught.value.provider_code) == ("provider_rejected", "401")


# -- status ------------------------------------------------------------------------------------
def test_given_a_task_id_when_building_the_status_call_then_it_gets_the_task_path(
    apimart: ApimartProvider,
) -> None:
    call = apimart.status_call("task_01JX8Y7Z")

    assert (call.method, call.path, call.json) == ("GET", "/v1/tasks/task_01JX8Y7Z", None)


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("submitted", ProviderState.PENDING),
        ("pending", ProviderState.PENDING),
        ("processing", ProviderState.RUNNING),
    ],
)
def test_given_an_unfinished_task_when_parsed_then_it_maps_to_the_canonical_state(
    apimart: ApimartProvider, raw: str, state: ProviderState
) -> None:
    status = apimart.parse_status(200, task_body(raw))

    assert (status.state, status.raw_status, status.images, status.error) == (state, raw, [], None)


@pytest.mark.parametrize("url", [[RESULT_URL], RESULT_URL], ids=["url-list", "url-string"])
def test_given_a_completed_task_when_parsed_then_it_succeeded_with_the_result_url(
    apimart: ApimartProvider, url: Any
) -> None:
    status = apimart.parse_status(200, completed(url))

    assert status.state is ProviderState.SUCCEEDED
    assert [(image.url, image.b64) for image in status.images] == [(RESULT_URL, None)]


@pytest.mark.parametrize(
    "result",
    [{"images": []}, {"images": [{"url": "ftp://x/y.png"}]}, {"images": [{}]}, None],
    ids=["no-images", "not-a-url", "no-url", "no-result"],
)
def test_given_a_completed_task_without_a_usable_url_when_parsed_then_it_is_a_bad_response(
    apimart: ApimartProvider, result: Any
) -> None:
    with pytest.raises(ProviderBadResponse):
        apimart.parse_status(200, task_body("completed", result=result))


def test_given_a_failed_task_when_parsed_then_it_failed_with_the_providers_message(
    apimart: ApimartProvider,
) -> None:
    status = apimart.parse_status(200, task_body("failed", error={"message": "upstream 500"}))

    assert status.state is ProviderState.FAILED
    assert status.error is not None
    assert (status.error.code, status.error.retryable) == ("provider_task_failed", False)
    assert "upstream 500" in status.error.message


def test_given_a_cancelled_task_when_parsed_then_it_failed_as_cancelled(
    apimart: ApimartProvider,
) -> None:
    status = apimart.parse_status(200, task_body("cancelled"))

    assert status.state is ProviderState.FAILED
    assert status.error is not None
    assert status.error.code == "provider_cancelled"


def test_given_a_task_failed_by_moderation_when_parsed_then_it_is_moderation_blocked(
    apimart: ApimartProvider,
) -> None:
    body = task_body("failed", error={"message": "Your request was rejected by the safety system"})

    status = apimart.parse_status(200, body)

    assert status.error is not None
    assert status.error.code == "moderation_blocked"


def test_given_an_unknown_status_when_parsed_then_it_is_a_bad_response(
    apimart: ApimartProvider,
) -> None:
    with pytest.raises(ProviderBadResponse):
        apimart.parse_status(200, task_body("exploded"))


@pytest.mark.parametrize(
    "body",
    [{"code": 200}, {"code": 200, "data": None}, {"code": 200, "data": {"id": "task_01"}}, []],
    ids=["no-data", "null-data", "no-status", "not-an-object"],
)
def test_given_an_answer_without_data_status_when_parsed_then_it_is_a_bad_response(
    apimart: ApimartProvider, body: Any
) -> None:
    with pytest.raises(ProviderBadResponse):
        apimart.parse_status(200, body)


def test_given_a_404_for_the_task_when_parsed_then_the_task_is_missing(
    apimart: ApimartProvider,
) -> None:
    body = {"code": 404, "error": {"message": "task does not exist or has expired"}}

    with pytest.raises(ProviderError) as caught:
        apimart.parse_status(404, body)

    assert (caught.value.code, caught.value.retryable) == ("provider_task_missing", False)


def test_given_an_expired_task_message_in_a_200_when_parsed_then_the_task_is_missing(
    apimart: ApimartProvider,
) -> None:
    body = {"code": 500, "error": {"message": "task does not exist or has expired"}}

    with pytest.raises(ProviderError) as caught:
        apimart.parse_status(200, body)

    assert caught.value.code == "provider_task_missing"


def test_given_a_moderation_error_body_when_parsing_status_then_it_is_moderation_blocked(
    apimart: ApimartProvider,
) -> None:
    body = {"code": 400, "error": {"message": "blocked", "type": "moderation_blocked"}}

    with pytest.raises(ProviderRejected) as caught:
        apimart.parse_status(400, body)

    assert caught.value.code == "moderation_blocked"


# -- timing ------------------------------------------------------------------------------------
@pytest.mark.parametrize("resolution", ["1K", "2K", "4K"])
def test_given_a_tier_when_asked_for_latency_then_it_is_within_the_documented_30_to_60_s(
    apimart: ApimartProvider, resolution: str
) -> None:
    request = ImageRequest(prompt="x", aspect_ratio="1:1", resolution=resolution)

    assert 30.0 <= apimart.expected_latency_seconds(request) <= 60.0
