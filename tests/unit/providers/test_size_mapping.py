"""Size mapping across every provider, and the rules of ``providers/sizes.py``.

Expected plans are worked out by hand from each provider's documented sizes (README.md and the
.txt pages) and the "nearest" rule in the sizes module docstring: closest aspect ratio by
log distance, then closest pixel count by log distance; apimodels fits a WxH to its rules.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from image_gateway.errors import Unprocessable
from image_gateway.models.request import ImageRequest
from image_gateway.providers import sizes
from image_gateway.providers.base import SizePlan
from image_gateway.providers.registry import PROVIDER_TYPES

FIXED_SIZE_PROVIDERS = ("mountsea-async", "mountsea-compat", "pmock", "openai")
ALL_PROVIDERS = sorted(PROVIDER_TYPES)

REQUESTS: dict[str, dict[str, Any]] = {
    "1024x1024": {"size": "1024x1024"},
    "1536x1024": {"size": "1536x1024"},
    "1920x1080": {"size": "1920x1080"},
    "3840x2160": {"size": "3840x2160"},
    "1000x1000": {"size": "1000x1000"},
    "16:9@2K": {"aspect_ratio": "16:9", "resolution": "2K"},
    "1:1@4K": {"aspect_ratio": "1:1", "resolution": "4K"},
    "3:1@1K": {"aspect_ratio": "3:1", "resolution": "1K"},
    "21:9@4K": {"aspect_ratio": "21:9", "resolution": "4K"},
    "1:1@1K": {"aspect_ratio": "1:1", "resolution": "1K"},
    "2:3@1K": {"aspect_ratio": "2:3", "resolution": "1K"},
}

# The three fixed sizes: 16:9, 3:1 and 21:9 are nearest to 3:2 (1536x1024), squares to 1:1.
_FIXED: dict[str, tuple[str, bool]] = {
    "1024x1024": ("1024x1024", True),
    "1536x1024": ("1536x1024", True),
    "1920x1080": ("1536x1024", False),
    "3840x2160": ("1536x1024", False),
    "1000x1000": ("1024x1024", False),
    "16:9@2K": ("1536x1024", False),
    "1:1@4K": ("1024x1024", False),
    "3:1@1K": ("1536x1024", False),
    "21:9@4K": ("1536x1024", False),
    "1:1@1K": ("1024x1024", True),
    "2:3@1K": ("1024x1536", True),
}
EXPECTED: dict[tuple[str, str], tuple[str, bool]] = {
    **{(label, name): plan for name in FIXED_SIZE_PROVIDERS for label, plan in _FIXED.items()},
    # apimart: table pixel sizes as given; ratios always; else the nearest table entry.
    ("1024x1024", "apimart"): ("1024x1024 @ 1k", True),
    ("1536x1024", "apimart"): ("1536x1024 @ 1k", True),
    ("1920x1080", "apimart"): ("16:9 @ 2k", False),
    ("3840x2160", "apimart"): ("3840x2160 @ 4k", True),
    ("1000x1000", "apimart"): ("1:1 @ 1k", False),
    ("16:9@2K", "apimart"): ("16:9 @ 2k", True),
    ("1:1@4K", "apimart"): ("1:1 @ 4k", True),
    ("3:1@1K", "apimart"): ("3:1 @ 1k", True),
    ("21:9@4K", "apimart"): ("21:9 @ 4k", True),
    ("1:1@1K", "apimart"): ("1:1 @ 1k", True),
    ("2:3@1K", "apimart"): ("2:3 @ 1k", True),
    # apimodels: any WxH that meets its rules; 1080 and 1000 are not multiples of 16.
    ("1024x1024", "apimodels"): ("1024x1024", True),
    ("1536x1024", "apimodels"): ("1536x1024", True),
    ("1920x1080", "apimodels"): ("1920x1088", False),
    ("3840x2160", "apimodels"): ("3840x2160", True),
    ("1000x1000", "apimodels"): ("992x992", False),
    ("16:9@2K", "apimodels"): ("16:9 @ 2K", True),
    ("1:1@4K", "apimodels"): ("1:1 @ 4K", True),
    ("3:1@1K", "apimodels"): ("3:1 @ 1K", True),
    ("21:9@4K", "apimodels"): ("21:9 @ 4K", True),
    ("1:1@1K", "apimodels"): ("1:1 @ 1K", True),
    ("2:3@1K", "apimodels"): ("2:3 @ 1K", True),
}
CASES = sorted(EXPECTED)
NON_EXACT = [case for case in CASES if not EXPECTED[case][1]]


def request_for(label: str, **extra: Any) -> ImageRequest:
    return ImageRequest(prompt="x", **REQUESTS[label], **extra)


def test_given_the_table_when_counted_then_it_covers_every_registered_provider() -> None:
    missing = set(PROVIDER_TYPES) - {name for _, name in EXPECTED}
    assert not missing, f"tests/unit/providers/test_size_mapping.py: add the sizes of {missing}"
    assert len(EXPECTED) == len(REQUESTS) * len(PROVIDER_TYPES)


# -- auto --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL_PROVIDERS)
def test_given_auto_when_planning_at_any_provider_then_it_is_exact_even_under_exact_policy(
    name: str,
) -> None:
    provider = PROVIDER_TYPES[name]()

    plan = provider.check(ImageRequest(prompt="x", size_policy="exact"))

    assert (plan.requested, plan.exact) == ("auto", True)


# -- the table ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("label", "name"), CASES, ids=[f"{n}-{lbl}" for lbl, n in CASES])
def test_given_a_size_and_a_provider_when_planning_then_sent_and_exact_are_as_documented(
    label: str, name: str
) -> None:
    plan = PROVIDER_TYPES[name]().plan_size(request_for(label))

    assert (plan.requested, plan.sent, plan.exact) == (label, *EXPECTED[(label, name)])


@pytest.mark.parametrize(("label", "name"), NON_EXACT, ids=[f"{n}-{lbl}" for lbl, n in NON_EXACT])
def test_given_a_non_exact_plan_under_exact_policy_when_checking_then_it_is_a_422_with_details(
    label: str, name: str
) -> None:
    provider = PROVIDER_TYPES[name]()
    request = request_for(label, size_policy="exact")

    with pytest.raises(Unprocessable) as caught:
        provider.check(request)

    details = caught.value.details
    assert (caught.value.status_code, caught.value.code) == (422, "unsupported_by_provider")
    assert set(details) == {"provider", "field", "supported", "nearest"}
    assert details["provider"] == name
    assert details["field"] == ("size" if "x" in label else "aspect_ratio")
    assert isinstance(details["supported"], list)
    assert details["supported"] == list(provider.capabilities.sizes) != []
    assert details["nearest"] == EXPECTED[(label, name)][0]


@pytest.mark.parametrize(("label", "name"), CASES, ids=[f"{n}-{lbl}" for lbl, n in CASES])
def test_given_nearest_policy_when_checking_then_the_plan_is_returned(
    label: str, name: str
) -> None:
    provider = PROVIDER_TYPES[name]()
    request = request_for(label, size_policy="nearest")

    plan = provider.check(request)

    assert plan == provider.plan_size(request)
    assert (plan.sent, plan.exact) == EXPECTED[(label, name)]


@pytest.mark.parametrize(
    ("label", "name"),
    [case for case in CASES if EXPECTED[case][1]],
    ids=[f"{n}-{lbl}" for lbl, n in CASES if EXPECTED[(lbl, n)][1]],
)
def test_given_an_exact_plan_under_exact_policy_when_checking_then_it_passes(
    label: str, name: str
) -> None:
    plan = PROVIDER_TYPES[name]().check(request_for(label, size_policy="exact"))

    assert plan.exact is True


# -- sizes.ratio_dimensions --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ratio", "tier", "expected"),
    [
        ("16:9", "4K", (3840, 2160)),
        ("1:1", "4K", (2880, 2880)),
        ("1:1", "1K", (1024, 1024)),
        ("9:16", "1K", (864, 1536)),
        ("1:1", "2K", (2048, 2048)),
        ("16:9", "2K", (2048, 1152)),
        ("3:1", "1K", (1536, 512)),
        ("21:9", "4K", (3840, 1648)),
        ("3:2", "1K", (1536, 1024)),
        ("2:3", "1K", (1024, 1536)),
    ],
)
def test_given_a_ratio_and_tier_when_computing_dimensions_then_they_are_the_documented_pixels(
    ratio: str, tier: str, expected: tuple[int, int]
) -> None:
    assert sizes.ratio_dimensions(ratio, tier) == expected


# -- sizes.fits_rules --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("width", "height", "fits"),
    [
        (1024, 1024, True),
        (1024, 1008, True),
        (1024, 1000, False),  # 1000 is not a multiple of 16
        (1032, 1024, False),  # nor is 1032
        (3840, 1280, True),  # long edge 3840 exactly
        (3856, 1296, False),  # long edge over 3840
        (1536, 512, True),  # 3:1 exactly
        (1552, 512, False),  # just over 3:1
        (512, 1536, True),
        (512, 1552, False),
        (1024, 640, True),  # 655,360 pixels exactly
        (1008, 640, False),  # 645,120 pixels
        (3840, 2160, True),  # 8,294,400 pixels exactly
        (2880, 2880, True),  # 8,294,400 pixels exactly
        (2896, 2880, False),  # 8,340,480 pixels
        (3840, 2176, False),  # 8,355,840 pixels
    ],
)
def test_given_a_size_when_checking_the_rules_then_boundaries_are_inclusive(
    width: int, height: int, fits: bool
) -> None:
    assert sizes.fits_rules(width, height) is fits


# -- sizes.fit_to_rules ------------------------------------------------------------------------
_GRID = sorted({*range(64, 3841, 112), 65, 100, 333, 999, 1000, 1080, 2161, 3839, 3840})


def test_given_any_size_from_64_to_3840_when_fitted_then_the_result_fits_the_rules() -> None:
    misfits = [
        (width, height, sizes.fit_to_rules(width, height))
        for width, height in itertools.product(_GRID, repeat=2)
        if not sizes.fits_rules(*sizes.fit_to_rules(width, height))
    ]

    assert misfits == []


def test_given_any_size_when_fitted_then_the_ratio_stays_within_3_percent_of_the_clamped_one() -> (
    None
):
    # Guards against the 1024x1024 fallback: a fitted size keeps the (clamped) aspect ratio.
    drifted = []
    for width, height in itertools.product(_GRID, repeat=2):
        clamped = min(max(width / height, 1 / 3), 3)
        fitted = sizes.fit_to_rules(width, height)
        if abs(math.log(fitted[0] / fitted[1] / clamped)) > math.log(1.03):
            drifted.append((width, height, fitted))

    assert drifted == []


@pytest.mark.parametrize(
    "size", [(1024, 1024), (1536, 512), (3840, 2160), (2880, 2880), (1024, 640), (2048, 1152)]
)
def test_given_a_size_that_already_fits_when_fitted_then_it_is_unchanged(
    size: tuple[int, int],
) -> None:
    assert sizes.fit_to_rules(*size) == size


@pytest.mark.parametrize(
    ("size", "fitted"),
    [
        ((1920, 1080), (1920, 1088)),
        ((1000, 1000), (992, 992)),  # equal side distance: the first candidate (smaller) wins
        ((3840, 64), (3840, 1280)),  # ratio clamped to 3:1 by growing the short side
        ((64, 64), (816, 816)),  # scaled up to >= 655,360 pixels
        ((3840, 3840), (2880, 2880)),  # scaled down to <= 8,294,400 pixels
    ],
)
def test_given_a_size_off_the_rules_when_fitted_then_it_is_the_hand_computed_one(
    size: tuple[int, int], fitted: tuple[int, int]
) -> None:
    assert sizes.fit_to_rules(*size) == fitted


# -- sizes.nearest -----------------------------------------------------------------------------
FIXED = [(1024, 1024), (1024, 1536), (1536, 1024)]


@pytest.mark.parametrize(
    ("target", "options", "index"),
    [
        ((1920, 1080), FIXED, 2),  # 16:9 is nearer 3:2 than 1:1
        ((1080, 1920), FIXED, 1),  # 9:16 is nearer 2:3
        ((2880, 2880), FIXED, 0),  # same ratio beats pixel count
        ((1024, 1024), [(1536, 1024), (2880, 2880)], 1),  # ratio first, however large
        ((1500, 1500), [(1024, 1024), (2048, 2048)], 1),  # log pixel distance: 0.623 < 0.763
        ((1400, 1400), [(1024, 1024), (2048, 2048)], 0),  # 0.625 < 0.761
        ((1024, 1024), [(2048, 1024), (1024, 2048)], 0),  # 2:1 and 1:2 tie: the first listed
        ((1024, 1024), [(1024, 2048), (2048, 1024)], 0),
        ((1024, 1024), [(2048, 1024), (1536, 1536), (1024, 2048)], 1),
    ],
)
def test_given_a_target_and_options_when_picking_the_nearest_then_ratio_then_pixels_decide(
    target: tuple[int, int], options: list[tuple[int, int]], index: int
) -> None:
    assert sizes.nearest(target, options) == index


def test_given_the_plan_model_when_auto_then_expected_pixels_are_left_to_the_provider() -> None:
    plan = PROVIDER_TYPES["openai"]().plan_size(ImageRequest(prompt="x"))

    assert plan == SizePlan(requested="auto", sent="auto", exact=True, expected=None)
