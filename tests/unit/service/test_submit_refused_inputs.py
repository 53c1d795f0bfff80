"""Hostile input images at submit: refused with the inbox's codes before anything is written,
sent or kept (the flow half of tests/e2e/test_hostile_inputs.py)."""

from __future__ import annotations

import pytest
from image_gateway.errors import InvalidImage
from image_gateway.service.submit import submit_task

from tests.fakes import FakeDependencies
from tests.hostile_images import png_bomb, png_header, truncated_png
from tests.unit.service.support import data_url, fox, png

PHOTO = data_url(png(64, 64))
CASES = {
    "bomb-40000x40000": ({"images": [data_url(png_bomb())]}, "image_too_many_pixels"),
    "header-only-png": ({"images": [data_url(png_header(64, 64))]}, "invalid_image"),
    "truncated-png": ({"images": [data_url(truncated_png())]}, "invalid_image"),
    "mask-of-another-size": (
        {"images": [PHOTO], "mask": data_url(png(32, 32))},
        "mask_size_mismatch",
    ),
    "second-image-invalid": ({"images": [PHOTO, data_url(b"not an image")]}, "invalid_image"),
    "second-image-a-bomb": ({"images": [PHOTO, data_url(png_bomb())]}, "image_too_many_pixels"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_input_is_refused_before_anything_is_written_sent_or_kept(
    deps: FakeDependencies, case: str
) -> None:
    # GIVEN an edit with a hostile input (see CASES)
    fields, code = CASES[case]
    request = fox(provider="mountsea-async", **fields)

    # WHEN submitted with an Idempotency-Key
    with pytest.raises(InvalidImage) as refused:
        submit_task(deps, request, client_id="c", idempotency_key="k-1")

    # THEN its code, no task, no provider call, no object left in the bucket
    assert refused.value.code == code
    assert deps.tasks.all() == []
    assert deps.providers.calls == []
    assert deps.images.objects == {}
    # AND a retry gets the same answer (the key was released, not left "in progress")
    with pytest.raises(InvalidImage):
        submit_task(deps, request, client_id="c", idempotency_key="k-1")
