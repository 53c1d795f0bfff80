"""OpenAIProvider (``openai``) and MountseaCompatProvider (``mountsea-compat``) against the
OpenAI Images API they both speak (README.md "openai" and "mountsea-compat";
shared/providers/mountsea-overview-async-and-compat.txt): JSON ``images/generations``,
multipart ``images/edits``, ``{created, data: [{b64_json}]}`` and ``{"error": {...}}``.

Every test runs against both adapters; only the path prefix differs.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from image_gateway.errors import ProviderBadResponse, ProviderError, ProviderRejected
from image_gateway.models.request import ImageRequest
from image_gateway.providers.base import Mode, ProviderInputs, ProviderState
from image_gateway.providers.openai_compat import (
    MountseaCompatProvider,
    OpenAICompatProvider,
    OpenAIProvider,
)

PHOTO = "https://images.example.com/cat.png"
OTHER_PHOTO = "https://images.example.com/dog.png"
THIRD_PHOTO = "https://images.example.com/owl.png"
MASK = "https://images.example.com/mask.png"
B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(64)).decode()
PREFIXES = {"openai": "/v1", "mountsea-compat": "/openai/v1"}


@pytest.fixture(params=[OpenAIProvider, MountseaCompatProvider], ids=["openai", "mountsea-compat"])
def compat(request: pytest.FixtureRequest) -> OpenAICompatProvider:
    kind: type[OpenAICompatProvider] = request.param
    return kind()


def error_body(message: str, kind: str, code: str | None, param: str | None = None) -> Any:
    """OpenAI's documented error body."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# -- identity and modes ------------------------------------------------------------------------
def test_given_each_adapter_when_asked_its_prefix_then_it_is_the_documented_base_path() -> None:
    assert {kind.name: kind.path_prefix for kind in (OpenAIProvider, MountseaCompatProvider)} == (
        PREFIXES
    )


def test_given_any_request_when_asked_for_modes_then_only_sync_is_offered(
    compat: OpenAICompatProvider,
) -> None:
    assert compat.capabilities.modes == frozenset({Mode.SYNC})
    assert compat.mode(ImageRequest(prompt="x", aspect_ratio="3:2")) is Mode.SYNC
    assert compat.supports_callback is False


def test_given_a_sync_only_provider_when_asked_for_a_create_call_then_it_is_not_implemented(
    compat: OpenAICompatProvider,
) -> None:
    with pytest.raises(NotImplementedError):
        compat.create_call(ImageRequest(prompt="x"), ProviderInputs(), callback_url=None)
    with pytest.raises(NotImplementedError):
        compat.status_call("task-1")


# -- generations -------------------------------------------------------------------------------
def test_given_a_generation_when_building_the_sync_call_then_it_posts_snake_case_json(
    compat: OpenAICompatProvider,
) -> None:
    request = ImageRequest(prompt="a cat in orbit", size="1024x1536", quality="high")

    call = compat.sync_call(request, ProviderInputs())

    assert (call.method, call.path) == ("POST", f"{PREFIXES[compat.name]}/images/generations")
    assert (call.form, call.files, call.params) == (None, (), None)
    assert call.json == {
        "prompt": "a cat in orbit",
        "model": "gpt-image-2",
        "size": "1024x1536",
        "n": 1,
        "quality": "high",
        "background": "auto",
        "output_format": "png",
        "moderation": "auto",
    }


def test_given_jpeg_with_compression_when_building_generations_then_both_are_sent(
    compat: OpenAICompatProvider,
) -> None:
    request = ImageRequest(
        prompt="x", output_format="jpeg", output_compression=70, moderation="low"
    )

    call = compat.sync_call(request, ProviderInputs())

    assert call.json is not None
    assert (
        call.json["output_format"],
        call.json["output_compression"],
        call.json["moderation"],
        call.json["size"],
    ) == ("jpeg", 70, "low", "auto")


def test_given_a_generation_when_building_then_no_edit_only_nor_camel_case_field_is_sent(
    compat: OpenAICompatProvider,
) -> None:
    call = compat.sync_call(ImageRequest(prompt="x"), ProviderInputs())

    assert call.json is not None
    assert {"image", "mask", "input_fidelity", "outputFormat", "response_format"}.isdisjoint(
        call.json
    )


# -- edits -------------------------------------------------------------------------------------
def test_given_one_input_when_building_the_edit_then_it_is_multipart_with_one_image_part(
    compat: OpenAICompatProvider,
) -> None:
    request = ImageRequest(prompt="add a hat", size="1024x1024", images=[PHOTO])

    call = compat.sync_call(request, ProviderInputs(images=[PHOTO]))

    assert (call.method, call.path) == ("POST", f"{PREFIXES[compat.name]}/images/edits")
    assert (call.json, call.params) == (None, None)
    assert call.files == (("image", 0),)
    assert call.form == {
        "prompt": "add a hat",
        "model": "gpt-image-2",
        "size": "1024x1024",
        "n": "1",
        "quality": "auto",
        "background": "auto",
        "output_format": "png",
    }


def test_given_several_inputs_and_a_mask_when_building_the_edit_then_image_brackets_and_mask(
    compat: OpenAICompatProvider,
) -> None:
    images = [PHOTO, OTHER_PHOTO, THIRD_PHOTO]
    request = ImageRequest(prompt="merge", images=images, mask=MASK)

    call = compat.sync_call(request, ProviderInputs(images=images, mask=MASK))

    assert call.files == (("image[]", 0), ("image[]", 1), ("image[]", 2), ("mask", "mask"))


def test_given_two_inputs_without_a_mask_when_building_the_edit_then_no_mask_part(
    compat: OpenAICompatProvider,
) -> None:
    request = ImageRequest(prompt="merge", images=[PHOTO, OTHER_PHOTO])

    call = compat.sync_call(request, ProviderInputs(images=[PHOTO, OTHER_PHOTO]))

    assert call.files == (("image[]", 0), ("image[]", 1))


def test_given_an_edit_with_every_option_when_building_then_the_form_is_all_strings(
    compat: OpenAICompatProvider,
) -> None:
    request = ImageRequest(
        prompt="fill",
        images=[PHOTO],
        mask=MASK,
        output_format="webp",
        output_compression=40,
        input_fidelity="high",
        moderation="low",
        background="opaque",
    )

    call = compat.sync_call(request, ProviderInputs(images=[PHOTO], mask=MASK))

    assert call.form is not None
    assert (
        call.form["output_format"],
        call.form["output_compression"],
        call.form["input_fidelity"],
        call.form["background"],
    ) == ("webp", "40", "high", "opaque")
    assert all(isinstance(value, str) for value in call.form.values())
    assert call.files == (("image", 0), ("mask", "mask"))


def test_given_an_edit_when_building_then_moderation_is_not_in_the_form(
    compat: OpenAICompatProvider,
) -> None:
    request = ImageRequest(prompt="fill", images=[PHOTO], moderation="low")

    call = compat.sync_call(request, ProviderInputs(images=[PHOTO]))

    assert call.form is not None
    assert "moderation" not in call.form
    assert {"image", "image[]", "mask"}.isdisjoint(call.form)


# -- answers -----------------------------------------------------------------------------------
def test_given_the_documented_images_answer_when_parsed_then_it_succeeded_with_base64(
    compat: OpenAICompatProvider,
) -> None:
    body = {
        "created": 1713833628,
        "data": [{"b64_json": B64}],
        "usage": {"total_tokens": 100, "input_tokens": 50, "output_tokens": 50},
    }

    status = compat.parse_sync(200, body)

    assert (status.state, status.raw_status, status.error) == (
        ProviderState.SUCCEEDED,
        "completed",
        None,
    )
    assert [(image.b64, image.url) for image in status.images] == [(B64, None)]


@pytest.mark.parametrize(
    "body",
    [{"created": 1}, {"created": 1, "data": []}, {"created": 1, "data": [{}]}, "ok"],
    ids=["no-data", "empty-data", "entry-without-image", "not-an-object"],
)
def test_given_a_200_without_an_image_when_parsed_then_it_is_a_bad_response(
    compat: OpenAICompatProvider, body: Any
) -> None:
    with pytest.raises(ProviderBadResponse) as caught:
        compat.parse_sync(200, body)

    assert (caught.value.code, caught.value.provider) == ("provider_bad_response", compat.name)


def test_given_moderation_blocked_when_parsed_then_it_is_moderation_blocked(
    compat: OpenAICompatProvider,
) -> None:
    body = error_body(
        "Your request was rejected as a result of our safety system.",
        "image_generation_user_error",
        "moderation_blocked",
    )

    with pytest.raises(ProviderRejected) as caught:
        compat.parse_sync(400, body)

    assert (caught.value.code, caught.value.provider_code, caught.value.retryable) == (
        "moderation_blocked",
        "moderation_blocked",
        False,
    )


def test_given_an_invalid_request_error_when_parsed_then_it_is_provider_rejected(
    compat: OpenAICompatProvider,
) -> None:
    body = error_body("Invalid size '999x999'.", "invalid_request_error", None, param="size")

    with pytest.raises(ProviderRejected) as caught:
        compat.parse_sync(400, body)

    assert (caught.value.code, caught.value.provider_code, caught.value.retryable) == (
        "provider_rejected",
        "400",
        False,
    )
    assert caught.value.message == f"{compat.name}: Invalid size '999x999'."


def test_given_an_invalid_request_error_with_a_code_when_parsed_then_the_code_is_kept(
    compat: OpenAICompatProvider,
) -> None:
    body = error_body("Incorrect API key provided", "invalid_request_error", "invalid_api_key")

    with pytest.raises(ProviderRejected) as caught:
        compat.parse_sync(401, body)

    assert (caught.value.code, caught.value.provider_code) == (
        "provider_rejected",
        "invalid_api_key",
    )


def test_given_a_404_when_parsed_then_it_is_a_missing_resource(
    compat: OpenAICompatProvider,
) -> None:
    body = error_body("The model 'gpt-image-2' does not exist", "invalid_request_error", None)

    with pytest.raises(ProviderError) as caught:
        compat.parse_sync(404, body)

    assert (caught.value.code, caught.value.retryable) == ("provider_task_missing", False)


def test_given_http_200_with_an_error_object_when_parsed_then_it_is_an_error(
    compat: OpenAICompatProvider,
) -> None:
    body = error_body("upstream refused the image", "invalid_request_error", "bad_image")

    with pytest.raises(ProviderRejected) as caught:
        compat.parse_sync(200, body)

    assert (caught.value.code, caught.value.provider_code) == ("provider_rejected", "bad_image")


def test_given_a_non_200_without_an_error_object_when_parsed_then_it_is_a_bad_response(
    compat: OpenAICompatProvider,
) -> None:
    with pytest.raises(ProviderBadResponse):
        compat.parse_sync(400, {"message": "bad"})


# -- capabilities ------------------------------------------------------------------------------
def test_given_the_adapter_when_asked_for_capabilities_then_they_are_the_openai_ones(
    compat: OpenAICompatProvider,
) -> None:
    assert compat.capabilities.describe() == {
        "modes": ["sync"],
        "callback": False,
        "batch_poll": False,
        "max_images": 16,
        "mask": True,
        "backgrounds": ["auto", "opaque", "transparent"],
        "output_formats": ["jpeg", "png", "webp"],
        "output_compression": True,
        "sizes": ["auto", "1024x1024", "1024x1536", "1536x1024"],
    }
