"""ApimartProvider's size table, image limits, options and batch poll, against
shared/providers/apimart-gpt-image-2.txt.

``DOCS_TABLE`` is typed out from the .txt ("size x resolution -> actual pixel mapping"), not
imported from the adapter, so a drift in the adapter's copy shows here.
"""

from __future__ import annotations

from typing import Any

import pytest
from image_gateway.errors import Unprocessable
from image_gateway.models.request import ImageRequest
from image_gateway.providers.apimart import ApimartProvider
from image_gateway.providers.base import ProviderInputs, ProviderState

PHOTO = "https://images.example.com/cat.png"
URL_A = "https://upload.apimart.ai/f/image/task_a-0.png"
URL_B = "https://upload.apimart.ai/f/image/task_a-1.png"

# ratio -> (1k, 2k, 4k); a 1k cell with two sizes lists both, in the docs' order.
DOCS_TABLE: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "1:1": (("1024x1024", "1254x1254"), ("2048x2048",), ("2880x2880",)),
    "3:2": (("1536x1024",), ("2048x1360",), ("3520x2336",)),
    "2:3": (("1024x1536",), ("1360x2048",), ("2336x3520",)),
    "4:3": (("1024x768",), ("2048x1536",), ("3312x2480",)),
    "3:4": (("768x1024",), ("1536x2048",), ("2480x3312",)),
    "5:4": (("1280x1024", "1448x1086"), ("2560x2048",), ("3216x2576",)),
    "4:5": (("1024x1280", "1122x1402"), ("2048x2560",), ("2576x3216",)),
    "16:9": (("1536x864", "1672x941"), ("2048x1152",), ("3840x2160",)),
    "9:16": (("864x1536", "941x1672"), ("1152x2048",), ("2160x3840",)),
    "2:1": (("2048x1024", "1774x887"), ("2688x1344",), ("3840x1920",)),
    "1:2": (("1024x2048", "887x1774"), ("1344x2688",), ("1920x3840",)),
    "3:1": (("1881x836", "1536x512"), ("3072x1024",), ("3840x1280",)),
    "1:3": (("887x1774", "512x1536"), ("1024x3072",), ("1280x3840",)),
    "21:9": (("2016x864", "1915x821"), ("2688x1152",), ("3840x1648",)),
    "9:21": (("864x2016", "821x1915"), ("1152x2688",), ("1648x3840",)),
}
TIERS = ("1k", "2k", "4k")
RATIO_TIER_CELLS = [
    (ratio, tier, cells[index])
    for ratio, cells in DOCS_TABLE.items()
    for index, tier in enumerate(TIERS)
]
# Every pixel size the table names, with its tier (887x1774 is listed twice, both at 1k).
TABLE_PIXEL_SIZES = sorted({(size, tier) for _, tier, sizes in RATIO_TIER_CELLS for size in sizes})


@pytest.fixture
def apimart() -> ApimartProvider:
    return ApimartProvider()


def pixels(size: str) -> tuple[int, int]:
    width, height = size.split("x")
    return int(width), int(height)


def body_of(apimart: ApimartProvider, request: ImageRequest, **inputs: Any) -> dict[str, Any]:
    call = apimart.create_call(request, ProviderInputs(**inputs), callback_url=None)
    assert call.json is not None
    return call.json


def task(task_id: str, status: str, **fields: Any) -> dict[str, Any]:
    """One task object as ``GET /v1/tasks/{id}`` documents it."""
    return {"id": task_id, "status": status, "progress": 0, "created": 1767139200, **fields}


# -- the table ---------------------------------------------------------------------------------
def test_given_the_docs_when_counting_the_table_then_it_has_fifteen_ratios() -> None:
    assert len(DOCS_TABLE) == 15
    assert len(RATIO_TIER_CELLS) == 45


@pytest.mark.parametrize(
    ("ratio", "tier", "sizes"),
    RATIO_TIER_CELLS,
    ids=[f"{ratio}@{tier}" for ratio, tier, _ in RATIO_TIER_CELLS],
)
def test_given_a_ratio_and_tier_when_building_then_size_is_the_ratio_and_pixels_the_docs_ones(
    apimart: ApimartProvider, ratio: str, tier: str, sizes: tuple[str, ...]
) -> None:
    request = ImageRequest(prompt="x", aspect_ratio=ratio, resolution=tier.upper())

    plan = apimart.check(request)
    body = body_of(apimart, request)

    assert (body["size"], body["resolution"]) == (ratio, tier)
    assert (plan.requested, plan.sent, plan.exact) == (
        f"{ratio}@{tier.upper()}",
        f"{ratio} @ {tier}",
        True,
    )
    # Where the docs give two 1k sizes, the gateway expects the first one.
    assert plan.expected == pixels(sizes[0])


@pytest.mark.parametrize(
    ("size", "tier"), TABLE_PIXEL_SIZES, ids=[size for size, _ in TABLE_PIXEL_SIZES]
)
def test_given_a_table_pixel_size_when_building_then_it_is_sent_as_is_with_its_tier(
    apimart: ApimartProvider, size: str, tier: str
) -> None:
    request = ImageRequest(prompt="x", size=size)

    plan = apimart.check(request)
    body = body_of(apimart, request)

    assert (body["size"], body["resolution"]) == (size, tier)
    assert (plan.exact, plan.expected) == (True, pixels(size))


@pytest.mark.parametrize(
    ("size", "tier"), [("1881x836", "1k"), ("1254x1254", "1k"), ("2688x1344", "2k")]
)
def test_given_a_named_table_size_when_building_then_the_tier_comes_from_the_table(
    apimart: ApimartProvider, size: str, tier: str
) -> None:
    body = body_of(apimart, ImageRequest(prompt="x", size=size))

    assert (body["size"], body["resolution"]) == (size, tier)


def test_given_auto_when_building_then_size_auto_goes_at_1k(apimart: ApimartProvider) -> None:
    body = body_of(apimart, ImageRequest(prompt="x"))

    assert (body["size"], body["resolution"]) == ("auto", "1k")


@pytest.mark.parametrize(
    ("size", "nearest", "expected"),
    [
        ("1920x1080", "16:9 @ 2k", (2048, 1152)),
        ("1000x1000", "1:1 @ 1k", (1024, 1024)),
        ("1024x1000", "1:1 @ 1k", (1024, 1024)),
        ("3000x1000", "3:1 @ 2k", (3072, 1024)),
    ],
)
def test_given_a_size_off_the_table_under_exact_when_checking_then_it_is_unprocessable(
    apimart: ApimartProvider, size: str, nearest: str, expected: tuple[int, int]
) -> None:
    with pytest.raises(Unprocessable) as caught:
        apimart.check(ImageRequest(prompt="x", size=size))

    details = caught.value.details
    assert caught.value.status_code == 422
    assert (details["provider"], details["field"], details["nearest"]) == (
        "apimart",
        "size",
        nearest,
    )
    assert details["supported"] == list(apimart.capabilities.sizes)
    assert details["supported"][:2] == [
        "auto",
        "aspect_ratio (any of the 15) + resolution 1K/2K/4K",
    ]


@pytest.mark.parametrize(
    ("size", "sent_size", "tier", "expected"),
    [
        ("1920x1080", "16:9", "2k", (2048, 1152)),
        ("1000x1000", "1:1", "1k", (1024, 1024)),
        ("3000x1000", "3:1", "2k", (3072, 1024)),
    ],
)
def test_given_a_size_off_the_table_under_nearest_when_building_then_the_nearest_entry_goes(
    apimart: ApimartProvider, size: str, sent_size: str, tier: str, expected: tuple[int, int]
) -> None:
    request = ImageRequest(prompt="x", size=size, size_policy="nearest")

    plan = apimart.check(request)
    body = body_of(apimart, request)

    assert (plan.requested, plan.exact, plan.expected) == (size, False, expected)
    assert (body["size"], body["resolution"]) == (sent_size, tier)


@pytest.mark.parametrize(
    ("size", "table_entry"),
    [("1552x512", (1536, 512)), ("1600x528", (1536, 512)), ("512x1552", (512, 1536))],
)
def test_given_a_size_next_to_a_second_1k_entry_under_nearest_then_that_entry_is_chosen(
    apimart: ApimartProvider, size: str, table_entry: tuple[int, int]
) -> None:
    request = ImageRequest(prompt="x", size=size, size_policy="nearest")

    plan = apimart.check(request)
    body = body_of(apimart, request)

    assert (plan.expected, body["resolution"]) == (table_entry, "1k")


# -- options -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fallback", [True, False])
def test_given_the_official_fallback_option_when_building_then_it_goes_into_the_body(
    fallback: bool,
) -> None:
    apimart = ApimartProvider({"official_fallback": fallback})

    assert body_of(apimart, ImageRequest(prompt="x"))["official_fallback"] is fallback


def test_given_no_options_when_building_then_official_fallback_is_the_documented_default(
    apimart: ApimartProvider,
) -> None:
    assert body_of(apimart, ImageRequest(prompt="x"))["official_fallback"] is False


# -- input images ------------------------------------------------------------------------------
def test_given_sixteen_references_when_checking_and_building_then_all_go_as_image_urls(
    apimart: ApimartProvider,
) -> None:
    urls = [f"https://images.example.com/{index}.png" for index in range(16)]
    request = ImageRequest(prompt="fuse", images=urls)

    apimart.check(request)
    body = body_of(apimart, request, images=urls)

    assert body["image_urls"] == urls


def test_given_seventeen_references_when_checking_then_it_is_refused_naming_images(
    apimart: ApimartProvider,
) -> None:
    # The request model caps images at 16 too; bypass it to reach the provider's own rule.
    request = ImageRequest(prompt="fuse").model_copy(update={"images": [PHOTO] * 17})

    with pytest.raises(Unprocessable) as caught:
        apimart.check(request)

    assert caught.value.details == {"provider": "apimart", "field": "images"}
    assert "at most 16" in caught.value.message


# -- capabilities ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"images": [PHOTO], "mask": PHOTO}, "mask"),
        ({"background": "transparent"}, "background"),
        ({"background": "opaque"}, "background"),
        ({"output_format": "jpeg"}, "output_format"),
        ({"output_format": "webp"}, "output_format"),
    ],
    ids=["mask", "transparent", "opaque", "jpeg", "webp"],
)
def test_given_an_undocumented_feature_when_checking_then_it_is_refused_naming_the_field(
    apimart: ApimartProvider, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(Unprocessable) as caught:
        apimart.check(ImageRequest(prompt="x", **fields))

    assert caught.value.details == {"provider": "apimart", "field": field}


def test_given_output_compression_when_checking_then_it_is_refused_naming_the_field(
    apimart: ApimartProvider,
) -> None:
    # A validated request pairs compression with jpeg/webp (refused first); bypass it.
    request = ImageRequest(prompt="x").model_copy(update={"output_compression": 80})

    with pytest.raises(Unprocessable) as caught:
        apimart.check(request)

    assert caught.value.details == {"provider": "apimart", "field": "output_compression"}


# -- batch poll --------------------------------------------------------------------------------
def test_given_task_ids_when_building_the_batch_call_then_it_posts_task_ids(
    apimart: ApimartProvider,
) -> None:
    call = apimart.batch_status_call(["task_xxx", "task_yyy"])

    assert (call.method, call.path, call.params) == ("POST", "/v1/tasks/batch", None)
    assert call.json == {"task_ids": ["task_xxx", "task_yyy"]}
    assert apimart.capabilities.batch_poll is True


def test_given_a_two_task_batch_answer_when_parsed_then_each_id_gets_its_status(
    apimart: ApimartProvider,
) -> None:
    body = {
        "code": 200,
        "data": [
            task(
                "task_xxx",
                "completed",
                progress=100,
                result={"images": [{"url": [URL_A, URL_B], "expires_at": 1767225600}]},
                completed=1767139253,
                actual_time=53,
            ),
            task("task_yyy", "processing", progress=40, estimated_time=45),
        ],
    }

    found = apimart.parse_batch_status(200, body)

    assert sorted(found) == ["task_xxx", "task_yyy"]
    done, running = found["task_xxx"], found["task_yyy"]
    assert (done.state, done.raw_status, done.error) == (
        ProviderState.SUCCEEDED,
        "completed",
        None,
    )
    assert [(image.url, image.b64) for image in done.images] == [(URL_A, None), (URL_B, None)]
    assert (running.state, running.raw_status, running.images, running.error) == (
        ProviderState.RUNNING,
        "processing",
        [],
        None,
    )


def test_given_a_batch_answer_missing_an_id_when_parsed_then_that_id_is_left_out(
    apimart: ApimartProvider,
) -> None:
    body = {"code": 200, "data": [task("task_yyy", "submitted")]}

    found = apimart.parse_batch_status(200, body)

    assert list(found) == ["task_yyy"]
    assert found["task_yyy"].state is ProviderState.PENDING
