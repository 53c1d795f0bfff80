"""MountseaAsyncProvider against shared/providers/mountsea-async-task-api.txt and README.md."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from image_gateway.errors import ProviderBadResponse, ProviderError, ProviderRejected, Unprocessable
from image_gateway.models.request import ImageRequest
from image_gateway.providers.base import ProviderInputs, ProviderState
from image_gateway.providers.mountsea_async import MountseaAsyncProvider

PHOTO = "https://images.example.com/cat.png"
OTHER_PHOTO = "https://images.example.com/dog.png"
MASK = "data:image/png;base64,iVBORw0KGgo="
B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(64)).decode()
DOCUMENTED_SIZES = ["auto", "1024x1024", "1024x1536", "1536x1024"]


@pytest.fixture
def mountsea() -> MountseaAsyncProvider:
    return MountseaAsyncProvider()


def task_body(status: str, **fields: Any) -> dict[str, Any]:
    """A ``GET /openai/tasks?taskId=`` answer with the documented fields."""
    return {
        "taskId": "9f1c2b",
        "status": status,
        "result": None,
        "errorMessage": None,
        "errorCode": None,
        "createdAt": "2025-05-01T12:00:00Z",
        "finishedAt": None,
        "traceId": "trace-1",
        **fields,
    }


def body_of(
    mountsea: MountseaAsyncProvider, request: ImageRequest, **inputs: Any
) -> dict[str, Any]:
    call = mountsea.create_call(request, ProviderInputs(**inputs), callback_url=None)
    assert call.json is not None
    return call.json


# -- create ------------------------------------------------------------------------------------
def test_given_a_generation_when_building_the_create_call_then_it_posts_snake_case_fields(
    mountsea: MountseaAsyncProvider,
) -> None:
    request = ImageRequest(prompt="a cat in orbit", size="1024x1024", quality="high")

    call = mountsea.create_call(request, ProviderInputs(), callback_url=None)

    assert (call.method, call.path) == ("POST", "/openai/images")
    assert call.json == {
        "prompt": "a cat in orbit",
        "model": "gpt-image-2",
        "size": "1024x1024",
        "n": 1,
        "quality": "high",
        "background": "auto",
        "output_format": "png",
        "moderation": "auto",
    }


def test_given_jpeg_with_compression_when_building_then_output_compression_is_sent(
    mountsea: MountseaAsyncProvider,
) -> None:
    request = ImageRequest(prompt="x", output_format="jpeg", output_compression=70)

    body = body_of(mountsea, request)

    assert (body["output_format"], body["output_compression"]) == ("jpeg", 70)


def test_given_one_input_image_when_building_then_image_is_a_string(
    mountsea: MountseaAsyncProvider,
) -> None:
    body = body_of(mountsea, ImageRequest(prompt="add a hat", images=[PHOTO]), images=[PHOTO])

    assert body["image"] == PHOTO


def test_given_several_input_images_when_building_then_image_is_a_list(
    mountsea: MountseaAsyncProvider,
) -> None:
    request = ImageRequest(prompt="merge them", images=[PHOTO, OTHER_PHOTO])

    body = body_of(mountsea, request, images=[PHOTO, OTHER_PHOTO])

    assert body["image"] == [PHOTO, OTHER_PHOTO]


def test_given_an_edit_with_mask_and_fidelity_when_building_then_both_are_sent(
    mountsea: MountseaAsyncProvider,
) -> None:
    request = ImageRequest(prompt="fill", images=[PHOTO], mask=MASK, input_fidelity="high")

    body = body_of(mountsea, request, images=[PHOTO], mask=MASK)

    assert (body["mask"], body["input_fidelity"]) == (MASK, "high")


def test_given_a_generation_when_building_then_no_edit_only_field_is_sent(
    mountsea: MountseaAsyncProvider,
) -> None:
    body = body_of(mountsea, ImageRequest(prompt="x"))

    assert {"image", "mask", "input_fidelity", "output_compression"}.isdisjoint(body)


@pytest.mark.parametrize("size", DOCUMENTED_SIZES)
def test_given_a_documented_size_when_building_then_it_is_sent_as_is(
    mountsea: MountseaAsyncProvider, size: str
) -> None:
    assert body_of(mountsea, ImageRequest(prompt="x", size=size))["size"] == size


@pytest.mark.parametrize(("ratio", "size"), [("1:1", "1024x1024"), ("2:3", "1024x1536")])
def test_given_a_ratio_it_can_make_at_1k_when_building_then_the_matching_size_is_sent(
    mountsea: MountseaAsyncProvider, ratio: str, size: str
) -> None:
    assert body_of(mountsea, ImageRequest(prompt="x", aspect_ratio=ratio))["size"] == size


@pytest.mark.parametrize("size", ["2048x2048", "1024x1025", "512x512"])
def test_given_an_undocumented_size_when_building_then_it_is_unprocessable_listing_sizes(
    mountsea: MountseaAsyncProvider, size: str
) -> None:
    with pytest.raises(Unprocessable) as caught:
        mountsea.check(ImageRequest(prompt="x", size=size))

    assert caught.value.details["field"] == "size"
    assert caught.value.details["supported"] == DOCUMENTED_SIZES


@pytest.mark.parametrize(
    ("ratio", "resolution"), [("16:9", None), ("1:1", "2K")], ids=["16:9", "1:1-at-2K"]
)
def test_given_a_ratio_it_cannot_make_when_building_then_it_is_unprocessable(
    mountsea: MountseaAsyncProvider, ratio: str, resolution: str | None
) -> None:
    request = ImageRequest(prompt="x", aspect_ratio=ratio, resolution=resolution)

    with pytest.raises(Unprocessable) as caught:
        mountsea.check(request)

    assert caught.value.details["field"] == "aspect_ratio"
    assert caught.value.details["supported"] == DOCUMENTED_SIZES


def test_given_the_documented_create_answer_when_parsed_then_the_task_id_comes_out(
    mountsea: MountseaAsyncProvider,
) -> None:
    assert mountsea.parse_create(200, {"taskId": "9f1c2b"}) == "9f1c2b"


@pytest.mark.parametrize("body", [{}, {"taskId": ""}, {"taskId": 7}, []])
def test_given_a_create_answer_without_task_id_when_parsed_then_it_is_a_bad_response(
    mountsea: MountseaAsyncProvider, body: Any
) -> None:
    with pytest.raises(ProviderBadResponse):
        mountsea.parse_create(200, body)


def test_given_a_moderation_code_at_create_when_parsed_then_it_is_moderation_blocked(
    mountsea: MountseaAsyncProvider,
) -> None:
    with pytest.raises(ProviderRejected) as caught:
        mountsea.parse_create(400, {"errorCode": 40003, "errorMessage": "request rejected"})

    assert (caught.value.code, caught.value.retryable) == ("moderation_blocked", False)


def test_given_an_invalid_request_at_create_when_parsed_then_it_is_a_plain_rejection(
    mountsea: MountseaAsyncProvider,
) -> None:
    with pytest.raises(ProviderRejected) as caught:
        mountsea.parse_create(400, {"errorCode": 40000, "errorMessage": "size is invalid"})

    assert (caught.value.code, caught.value.provider_code) == ("provider_rejected", "40000")


# -- status ------------------------------------------------------------------------------------
def test_given_a_task_id_when_building_the_status_call_then_it_queries_tasks_by_task_id(
    mountsea: MountseaAsyncProvider,
) -> None:
    call = mountsea.status_call("9f1c2b")

    assert (call.method, call.path, call.params) == ("GET", "/openai/tasks", {"taskId": "9f1c2b"})


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("pending", ProviderState.PENDING),
        ("ready", ProviderState.PENDING),
        ("assigned", ProviderState.PENDING),
        ("processing", ProviderState.RUNNING),
    ],
)
def test_given_an_unfinished_status_when_parsed_then_it_maps_to_the_canonical_state(
    mountsea: MountseaAsyncProvider, raw: str, state: ProviderState
) -> None:
    status = mountsea.parse_status(200, task_body(raw))

    assert (status.state, status.raw_status, status.error) == (state, raw, None)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("failed", "provider_task_failed"),
        ("cancelled", "provider_cancelled"),
        ("timeout", "provider_timeout"),
    ],
)
def test_given_a_terminal_failure_when_parsed_then_it_failed_with_a_stable_code(
    mountsea: MountseaAsyncProvider, raw: str, code: str
) -> None:
    status = mountsea.parse_status(200, task_body(raw, errorMessage="it broke", errorCode=50000))

    assert status.state is ProviderState.FAILED
    assert status.error is not None
    assert (status.error.code, status.error.provider_code) == (code, "50000")


def test_given_a_completed_task_with_openai_data_when_parsed_then_the_base64_comes_out(
    mountsea: MountseaAsyncProvider,
) -> None:
    body = task_body("completed", result={"created": 1, "data": [{"b64_json": B64}]})

    status = mountsea.parse_status(200, body)

    assert status.state is ProviderState.SUCCEEDED
    assert [(image.b64, image.url) for image in status.images] == [(B64, None)]


def test_given_a_completed_task_with_a_bare_string_result_when_parsed_then_it_is_the_base64(
    mountsea: MountseaAsyncProvider,
) -> None:
    status = mountsea.parse_status(200, task_body("completed", result=B64))

    assert [(image.b64, image.url) for image in status.images] == [(B64, None)]


@pytest.mark.parametrize(
    "result",
    [None, {"data": []}, {"created": 1}, {"data": [{"revised_prompt": "x"}]}, {"data": ["x"]}],
    ids=["no-result", "empty-data", "no-data", "no-image-in-entry", "entry-not-object"],
)
def test_given_a_completed_task_without_an_image_when_parsed_then_it_is_a_bad_response(
    mountsea: MountseaAsyncProvider, result: Any
) -> None:
    with pytest.raises(ProviderBadResponse):
        mountsea.parse_status(200, task_body("completed", result=result))


@pytest.mark.parametrize(
    "result",
    [12345, [{"b64_json": B64}], {"data": [{"b64_json": 42}]}],
    ids=["number", "list", "b64-json-number"],
)
def test_given_a_completed_task_with_a_non_string_image_when_parsed_then_it_is_a_bad_response(
    mountsea: MountseaAsyncProvider, result: Any
) -> None:
    with pytest.raises(ProviderBadResponse):
        mountsea.parse_status(200, task_body("completed", result=result))


def test_given_a_failure_with_moderation_code_when_parsed_then_it_is_moderation_blocked(
    mountsea: MountseaAsyncProvider,
) -> None:
    body = task_body("failed", errorCode=40003, errorMessage="request rejected")

    status = mountsea.parse_status(200, body)

    assert status.error is not None
    assert (status.error.code, status.error.retryable) == ("moderation_blocked", False)


def test_given_an_unknown_status_when_parsed_then_it_is_a_bad_response(
    mountsea: MountseaAsyncProvider,
) -> None:
    with pytest.raises(ProviderBadResponse):
        mountsea.parse_status(200, task_body("done"))


@pytest.mark.parametrize("body", [{"taskId": "9f1c2b"}, {"status": 3}, "completed"])
def test_given_an_answer_without_a_status_when_parsed_then_it_is_a_bad_response(
    mountsea: MountseaAsyncProvider, body: Any
) -> None:
    with pytest.raises(ProviderBadResponse):
        mountsea.parse_status(200, body)


def test_given_a_404_for_the_task_when_parsed_then_the_task_is_missing(
    mountsea: MountseaAsyncProvider,
) -> None:
    with pytest.raises(ProviderError) as caught:
        mountsea.parse_status(404, {"errorCode": 40400, "errorMessage": "task not found"})

    assert (caught.value.code, caught.value.retryable) == ("provider_task_missing", False)


# -- timing ------------------------------------------------------------------------------------
@pytest.mark.parametrize("quality", ["auto", "low", "medium", "high"])
def test_given_a_quality_when_asked_for_latency_then_it_is_within_the_documented_10_to_60_s(
    mountsea: MountseaAsyncProvider, quality: str
) -> None:
    request = ImageRequest(prompt="x", quality=quality)

    assert 10.0 <= mountsea.expected_latency_seconds(request) <= 60.0
