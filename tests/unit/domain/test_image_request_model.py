"""ImageRequest: the canonical request every entry point validates (models/request.py)."""

from __future__ import annotations

from typing import Any

import pytest
from image_gateway.models.request import ImageRequest, Operation
from pydantic import ValidationError

PNG_DATA_URL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNg"
PHOTO_URL = "https://images.example.com/cat.png"


def rejected(**fields: Any) -> ValidationError:
    """The ValidationError that ImageRequest raises for these fields (fails if it accepts them)."""
    with pytest.raises(ValidationError) as caught:
        ImageRequest(**fields)
    return caught.value


def names_field(error: ValidationError, field: str) -> bool:
    """Whether some error points at ``field``, by location or in its message."""
    return any(
        field in [str(part) for part in detail["loc"]] or field in detail["msg"]
        for detail in error.errors()
    )


# -- valid requests ------------------------------------------------------------------------------
def test_given_only_a_prompt_when_validated_then_it_is_a_generate_request_with_defaults() -> None:
    request = ImageRequest(prompt="a lighthouse at dusk")

    assert request.operation is Operation.GENERATE
    assert (request.model, request.size, request.n, request.output_format) == (
        "gpt-image-2",
        "auto",
        1,
        "png",
    )


def test_given_input_images_when_validated_then_the_operation_is_edit() -> None:
    request = ImageRequest(
        prompt="make the sky purple",
        images=[PHOTO_URL, PNG_DATA_URL, "s3://my-bucket/inputs/photo.jpg"],
        mask=PNG_DATA_URL,
        input_fidelity="high",
    )

    assert request.operation is Operation.EDIT


def test_given_an_exact_size_and_jpeg_compression_when_validated_then_they_are_kept() -> None:
    request = ImageRequest(
        prompt="a red fox", size="1536x1024", output_format="jpeg", output_compression=80
    )

    assert request.pixel_size() == (1536, 1024)
    assert request.output_compression == 80


def test_given_aspect_ratio_and_resolution_when_validated_then_both_are_kept() -> None:
    request = ImageRequest(prompt="a wide valley", aspect_ratio="16:9", resolution="4K")

    assert (request.aspect_ratio, request.resolution, request.size) == ("16:9", "4K", "auto")


def test_given_sixteen_images_when_validated_then_the_limit_is_inclusive() -> None:
    request = ImageRequest(prompt="a collage", images=[PHOTO_URL] * 16)

    assert len(request.images) == 16


def test_given_a_fallback_list_of_distinct_providers_when_validated_then_its_order_is_kept() -> (
    None
):
    request = ImageRequest(prompt="a tree", providers=["mountsea-async", "apimart"])

    assert request.providers == ["mountsea-async", "apimart"]


# -- invalid requests: each error names the field ------------------------------------------------
def test_given_no_prompt_when_validated_then_the_error_names_prompt() -> None:
    assert names_field(rejected(), "prompt")


@pytest.mark.parametrize("prompt", ["", "   "], ids=["empty", "whitespace"])
def test_given_an_empty_prompt_when_validated_then_the_error_names_prompt(prompt: str) -> None:
    assert names_field(rejected(prompt=prompt), "prompt")


def test_given_seventeen_images_when_validated_then_the_error_names_images() -> None:
    assert names_field(rejected(prompt="x", images=[PHOTO_URL] * 17), "images")


@pytest.mark.parametrize("size", ["1024", "10x10", "5000x1024", "abc", "1024x1024px", "-1x100"])
def test_given_a_bad_size_when_validated_then_the_error_names_size(size: str) -> None:
    assert names_field(rejected(prompt="x", size=size), "size")


def test_given_aspect_ratio_together_with_size_when_validated_then_the_error_names_both() -> None:
    error = rejected(prompt="x", size="1024x1024", aspect_ratio="1:1")

    assert names_field(error, "size")
    assert names_field(error, "aspect_ratio")


def test_given_resolution_without_aspect_ratio_when_validated_then_the_error_names_both() -> None:
    error = rejected(prompt="x", resolution="2K")

    assert names_field(error, "resolution")
    assert names_field(error, "aspect_ratio")


@pytest.mark.parametrize(
    "image",
    [
        "date:image/png;base64,iVBORw0KGgo=",  # wrong prefix
        "data:image/png,iVBORw0KGgo=",  # no ;base64 marker
        "data:text/plain;base64,aGVsbG8=",  # not an image type
        "data:image/gif;base64,R0lGODlh",  # an image type we do not accept
        "data:image/png;base64,not*base64!",  # not base64
    ],
    ids=["wrong-prefix", "no-base64-marker", "text-mime", "gif-mime", "not-base64"],
)
def test_given_a_bad_data_url_when_validated_then_the_error_names_images(image: str) -> None:
    assert names_field(rejected(prompt="x", images=[image]), "images")


def test_given_an_http_image_url_when_validated_then_the_error_names_images() -> None:
    assert names_field(rejected(prompt="x", images=["http://images.example.com/a.png"]), "images")


def test_given_a_bad_mask_when_validated_then_the_error_names_mask() -> None:
    error = rejected(prompt="x", images=[PHOTO_URL], mask="http://images.example.com/mask.png")

    assert names_field(error, "mask")


def test_given_a_mask_without_images_when_validated_then_the_error_names_mask() -> None:
    assert names_field(rejected(prompt="x", mask=PNG_DATA_URL), "mask")


def test_given_input_fidelity_without_images_when_validated_then_the_error_names_it() -> None:
    assert names_field(rejected(prompt="x", input_fidelity="high"), "input_fidelity")


def test_given_an_unknown_field_when_validated_then_the_error_names_it() -> None:
    error = rejected(prompt="x", colour="blue")

    assert names_field(error, "colour")
    assert error.errors()[0]["type"] == "extra_forbidden"


@pytest.mark.parametrize("n", [0, 11, -1])
def test_given_n_outside_one_to_ten_when_validated_then_the_error_names_n(n: int) -> None:
    assert names_field(rejected(prompt="x", n=n), "n")


@pytest.mark.parametrize("n", [1, 2, 10])
def test_given_n_from_one_to_ten_when_validated_then_it_is_accepted(n: int) -> None:
    assert ImageRequest(prompt="x", n=n).n == n


def test_given_provider_and_providers_together_when_validated_then_the_error_names_both() -> None:
    error = rejected(prompt="x", provider="apimart", providers=["mountsea-async"])

    assert names_field(error, "provider")
    assert names_field(error, "providers")


def test_given_a_duplicated_provider_in_providers_when_validated_then_the_error_names_it() -> None:
    assert names_field(rejected(prompt="x", providers=["apimart", "apimart"]), "providers")


def test_given_a_non_http_callback_url_when_validated_then_the_error_names_callback_url() -> None:
    # http:// passes the model: the submit's SSRF check refuses it unless the stack allows it
    error = rejected(prompt="x", callback_url="ftp://client.example.com/hook")

    assert names_field(error, "callback_url")


@pytest.mark.parametrize(
    "metadata",
    [
        {"note": "v" * 257},
        {"k" * 65: "v"},
        {"": "v"},
        {f"key{i}": "v" for i in range(17)},
    ],
    ids=["value-too-long", "key-too-long", "empty-key", "too-many-keys"],
)
def test_given_oversized_metadata_when_validated_then_the_error_names_metadata(
    metadata: dict[str, str],
) -> None:
    assert names_field(rejected(prompt="x", metadata=metadata), "metadata")


def test_given_output_compression_with_png_when_validated_then_the_error_names_it() -> None:
    error = rejected(prompt="x", output_format="png", output_compression=50)

    assert names_field(error, "output_compression")


# -- tier --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "tier"),
    [
        ("auto", "1K"),
        ("1536x1024", "1K"),
        ("1024x1536", "1K"),
        ("1537x1024", "2K"),
        ("2048x1152", "2K"),
        ("1024x2048", "2K"),
        ("2049x1024", "4K"),
        ("3840x2160", "4K"),
    ],
)
def test_given_an_exact_size_when_tiered_then_the_long_edge_decides(size: str, tier: str) -> None:
    assert ImageRequest(prompt="x", size=size).tier() == tier


@pytest.mark.parametrize("resolution", ["1K", "2K", "4K"])
def test_given_aspect_ratio_and_resolution_when_tiered_then_the_resolution_is_the_tier(
    resolution: str,
) -> None:
    request = ImageRequest(prompt="x", aspect_ratio="21:9", resolution=resolution)

    assert request.tier() == resolution


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"routing": "fastest"}, "routing"),
        ({"routing": {"max_price_usd": 0}}, "max_price_usd"),
        ({"routing": {"max_price_usd": -1}}, "max_price_usd"),
        ({"routing": {"max_seconds": 0}}, "max_seconds"),
        ({"routing": {"policy": "price", "max_price": 1}}, "max_price"),
    ],
    ids=["unknown-policy", "zero-price", "negative-price", "zero-seconds", "unknown-bound"],
)
def test_given_a_bad_routing_option_when_validated_then_the_field_is_named(
    fields: dict[str, Any], field: str
) -> None:
    assert names_field(rejected(prompt="a fox", **fields), field)


def test_given_routing_options_when_validated_then_they_are_kept() -> None:
    plain = ImageRequest(prompt="a fox", routing="price")
    bounded = ImageRequest(
        prompt="a fox",
        routing={"policy": "balanced", "max_price_usd": 0.05, "max_seconds": 30},
    )

    assert (plain.routing_policy, plain.max_price_usd) == ("price", None)
    assert (bounded.routing_policy, bounded.max_price_usd, bounded.max_seconds) == (
        "balanced",
        0.05,
        30,
    )


@pytest.mark.parametrize("value", [0, 1, "true", "yes"])
def test_hedge_is_true_or_false_and_nothing_that_looks_like_it(value: Any) -> None:
    # Given a hedge that is not a JSON boolean (the fuzzer sent 0 and it was taken as false)
    error = rejected(prompt="a fox", hedge=value)
    # Then the request is refused, naming hedge
    assert names_field(error, "hedge")
    assert ImageRequest(prompt="a fox", hedge=True).hedge is True


def test_an_explicit_null_hedge_is_refused_and_an_omitted_one_is_the_clients_default() -> None:
    # Given hedge: null (the document says boolean)
    assert names_field(rejected(prompt="a fox", hedge=None), "hedge")
    # Then omitted it is None: the client's default applies
    assert ImageRequest(prompt="a fox").hedge is None
    schema = ImageRequest.model_json_schema()["properties"]["hedge"]
    assert schema["type"] == "boolean" and "anyOf" not in schema
