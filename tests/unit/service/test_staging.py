"""Input staging: client images stored in the bucket at submit, handed to providers later."""

from __future__ import annotations

import pytest
from image_gateway.errors import InvalidImage, NotFound, PayloadTooLarge
from image_gateway.service.staging import input_opener, provider_inputs, stage_inputs

from tests.fakes import FakeDependencies
from tests.hostile_images import png_bomb, png_header, truncated_png
from tests.unit.service.conftest import DepsFactory
from tests.unit.service.support import data_url, fox, png

PHOTO_URL = "https://photos.example/cat.png"
TTL = "expires_in=21600"  # Settings.input_url_ttl_seconds: 6 hours


def test_an_https_input_is_handed_on_as_it_is(deps: FakeDependencies) -> None:
    # GIVEN an input by URL WHEN staged THEN nothing is stored and the provider gets the URL
    stored, inputs = stage_inputs(deps, fox(images=[PHOTO_URL]), client_id="c", task_id="t")

    assert stored.images == [PHOTO_URL]
    assert inputs.images == [PHOTO_URL]
    assert deps.images.objects == {}


def test_a_data_url_is_stored_under_the_tasks_inputs(deps: FakeDependencies) -> None:
    # GIVEN an inline PNG WHEN staged THEN it is stored at inputs/{client}/{task}/0.png,
    # the stored request names it, and the provider gets a presigned URL with the input TTL
    photo = png(64, 64)

    stored, inputs = stage_inputs(deps, fox(images=[data_url(photo)]), client_id="c", task_id="t")

    assert deps.images.objects["inputs/c/t/0.png"] == photo
    assert stored.images == ["s3://images/inputs/c/t/0.png"]
    assert inputs.images[0].startswith("https://images.memory.invalid/inputs/c/t/0.png?")
    assert inputs.images[0].endswith(TTL)


def test_an_inline_mask_is_stored_next_to_the_images(deps: FakeDependencies) -> None:
    # GIVEN an edit with an inline mask WHEN staged THEN the mask is inputs/{client}/{task}/mask
    image = data_url(png(64, 64))

    stored, inputs = stage_inputs(deps, fox(images=[image], mask=image), client_id="c", task_id="t")

    assert stored.mask == "s3://images/inputs/c/t/mask.png"
    assert inputs.mask is not None and "inputs/c/t/mask.png" in inputs.mask


def test_the_callers_own_stored_input_is_accepted(deps: FakeDependencies) -> None:
    # GIVEN an object the caller stored earlier WHEN referenced by s3:// THEN it is presigned
    deps.images.objects["inputs/c/old/0.png"] = png(64, 64)

    stored, inputs = stage_inputs(
        deps, fox(images=["s3://images/inputs/c/old/0.png"]), client_id="c", task_id="t"
    )

    assert stored.images == ["s3://images/inputs/c/old/0.png"]
    assert "inputs/c/old/0.png" in inputs.images[0]


@pytest.mark.parametrize(
    "reference",
    ["s3://images/inputs/other-client/x/0.png", "s3://someone-elses-bucket/inputs/c/x/0.png"],
)
def test_a_reference_outside_the_callers_inputs_is_refused(
    deps: FakeDependencies, reference: str
) -> None:
    # GIVEN an s3:// reference to another client's inputs or another bucket
    # WHEN staged THEN 404 input_not_found, as for a missing object (never presigned)
    with pytest.raises(NotFound) as refused:
        stage_inputs(deps, fox(images=[reference]), client_id="c", task_id="t")

    assert refused.value.code == "input_not_found"


def test_a_reference_to_a_missing_object_is_not_found(deps: FakeDependencies) -> None:
    # GIVEN a reference to nothing WHEN staged THEN 404 input_not_found
    with pytest.raises(NotFound) as refused:
        stage_inputs(
            deps, fox(images=["s3://images/inputs/c/gone/0.png"]), client_id="c", task_id="t"
        )

    assert refused.value.code == "input_not_found"


def test_an_inline_input_that_is_not_an_image_is_refused(deps: FakeDependencies) -> None:
    # GIVEN a data URL of text WHEN staged THEN InvalidImage and nothing is stored
    with pytest.raises(InvalidImage):
        stage_inputs(deps, fox(images=[data_url(b"hello, world")]), client_id="c", task_id="t")

    assert deps.images.objects == {}


def test_a_stored_request_is_handed_over_with_fresh_presigned_urls(
    deps: FakeDependencies,
) -> None:
    # GIVEN a stored request with a URL, a stored input and a stored mask
    # WHEN the provider's inputs are built (later, e.g. by dispatch)
    # THEN URLs stay and our objects are presigned
    request = fox(
        images=[PHOTO_URL, "s3://images/inputs/c/t/1.png"], mask="s3://images/inputs/c/t/mask.png"
    )

    inputs = provider_inputs(deps, request)

    assert inputs.images[0] == PHOTO_URL
    assert inputs.images[1] == f"https://images.memory.invalid/inputs/c/t/1.png?{TTL}"
    assert inputs.mask == f"https://images.memory.invalid/inputs/c/t/mask.png?{TTL}"


def test_a_request_without_mask_hands_over_no_mask(deps: FakeDependencies) -> None:
    # GIVEN an edit without mask WHEN its provider inputs are built THEN mask is None
    assert provider_inputs(deps, fox(images=[PHOTO_URL])).mask is None


def test_a_stored_input_is_opened_as_a_named_typed_stream(deps: FakeDependencies) -> None:
    # GIVEN a stored input WHEN a multipart upload opens it
    # THEN it gets the bytes, a file name with the sniffed extension and the content type
    photo = png(64, 64)
    deps.images.objects["inputs/c/t/0.png"] = photo
    open_input = input_opener(deps, fox(images=["s3://images/inputs/c/t/0.png"]))

    with open_input(0) as (name, stream, content_type):
        assert (name, content_type, stream.read()) == ("image-0.png", "image/png", photo)


def test_a_url_input_is_downloaded_for_the_upload(deps: FakeDependencies) -> None:
    # GIVEN an input by URL WHEN opened for a multipart upload THEN it is fetched (SSRF-checked)
    deps.fetcher.bodies[PHOTO_URL] = png(32, 32)
    open_input = input_opener(deps, fox(images=[PHOTO_URL]))

    with open_input(0) as (_, stream, _):
        assert stream.read() == png(32, 32)
    assert deps.fetcher.fetched == [PHOTO_URL]


def test_the_mask_is_opened_as_mask_png(deps: FakeDependencies) -> None:
    # GIVEN a stored mask WHEN opened THEN its part is called mask.png
    deps.images.objects["inputs/c/t/mask.png"] = png(64, 64)
    request = fox(images=[PHOTO_URL], mask="s3://images/inputs/c/t/mask.png")

    with input_opener(deps, request)("mask") as (name, _, _):
        assert name == "mask.png"


def test_asking_for_the_mask_of_a_request_without_one_is_an_error(
    deps: FakeDependencies,
) -> None:
    # GIVEN a request without mask WHEN its mask is opened THEN ValueError (a caller bug)
    with (
        pytest.raises(ValueError, match="no mask"),
        input_opener(deps, fox(images=[PHOTO_URL]))("mask"),
    ):
        pass


def test_an_input_over_the_byte_limit_is_refused_while_reading(make_deps: DepsFactory) -> None:
    # GIVEN a stored input larger than the stack's image limit (stored under an older limit)
    # WHEN opened for upload THEN PayloadTooLarge, before the whole object is read
    deps = make_deps(max_image_bytes=1000)
    deps.images.objects["inputs/c/t/0.png"] = png(256, 256, "white") + b"\0" * 2000
    open_input = input_opener(deps, fox(images=["s3://images/inputs/c/t/0.png"]))

    with pytest.raises(PayloadTooLarge), open_input(0):
        pass


# -- the same checks as the inbox, and nothing left behind ---------------------------------------
def test_an_inline_decompression_bomb_is_refused_by_its_header(deps: FakeDependencies) -> None:
    # GIVEN a real 40000x40000 PNG of ~190 KB WHEN staged
    # THEN 400 image_too_many_pixels naming the input, and nothing is stored
    with pytest.raises(InvalidImage) as refused:
        stage_inputs(deps, fox(images=[data_url(png_bomb())]), client_id="c", task_id="t")

    assert refused.value.code == "image_too_many_pixels"
    assert refused.value.message.startswith("images[0]: 40000x40000")
    assert deps.images.objects == {}


@pytest.mark.parametrize(
    "image", [png_header(64, 64), truncated_png()], ids=["header-only", "truncated"]
)
def test_an_incomplete_inline_png_is_an_invalid_image(deps: FakeDependencies, image: bytes) -> None:
    with pytest.raises(InvalidImage) as refused:
        stage_inputs(deps, fox(images=[data_url(image)]), client_id="c", task_id="t")

    assert refused.value.code == "invalid_image"
    assert deps.images.objects == {}


@pytest.mark.parametrize(
    "image",
    [png_header(64, 64), truncated_png(), png(64, 64) + b"\0" * 1_000_000],
    ids=["header-only", "truncated", "trailing-bytes"],
)
def test_an_uploaded_input_is_checked_whole_like_an_inline_one(
    deps: FakeDependencies, image: bytes
) -> None:
    # GIVEN a file PUT to an upload slot (S3 held it only to its declared size and type)
    deps.images.objects["inputs/c/uploads/upl_1/0.png"] = image

    # WHEN a request refers to it THEN refused at submit as the same file inline is
    with pytest.raises(InvalidImage) as refused:
        stage_inputs(
            deps,
            fox(images=["s3://images/inputs/c/uploads/upl_1/0.png"]),
            client_id="c",
            task_id="t",
        )
    with pytest.raises(InvalidImage) as inline:
        stage_inputs(deps, fox(images=[data_url(image)]), client_id="c", task_id="t2")

    assert refused.value.code == inline.value.code == "invalid_image"
    assert str(refused.value.message).startswith("images[0]: ")


def test_an_uploaded_input_over_the_image_limit_is_refused(make_deps: DepsFactory) -> None:
    # GIVEN a stack whose images may have 1,000 bytes, and a larger uploaded file
    deps = make_deps(max_image_bytes=1_000)
    deps.images.objects["inputs/c/uploads/upl_1/0.png"] = png(64, 64) + b"\0" * 1_000

    # WHEN a request refers to it THEN 413, naming the input
    with pytest.raises(PayloadTooLarge, match=r"^images\[0\]: "):
        stage_inputs(
            deps,
            fox(images=["s3://images/inputs/c/uploads/upl_1/0.png"]),
            client_id="c",
            task_id="t",
        )


def test_the_pixel_limit_comes_from_the_settings(make_deps: DepsFactory) -> None:
    # GIVEN a stack whose inputs may have 64x64 pixels WHEN a 65x64 image is staged THEN refused
    deps = make_deps(max_input_pixels=64 * 64)
    stage_inputs(deps, fox(images=[data_url(png(64, 64))]), client_id="c", task_id="ok")

    with pytest.raises(InvalidImage, match="the limit is 4,096 pixels"):
        stage_inputs(deps, fox(images=[data_url(png(65, 64))]), client_id="c", task_id="t")


def test_a_second_image_refused_deletes_the_first_one_stored(deps: FakeDependencies) -> None:
    # GIVEN a valid first image and a second that is not an image WHEN staged
    # THEN the refusal names images[1], and the first image's object is deleted again
    request = fox(images=[data_url(png(64, 64)), data_url(b"GIF89a, not for us")])

    with pytest.raises(InvalidImage, match=r"^images\[1\]: "):
        stage_inputs(deps, request, client_id="c", task_id="t")

    assert deps.images.deleted == ["inputs/c/t/0.png"]
    assert deps.images.objects == {}


def test_a_mask_of_another_size_is_refused_and_the_image_deleted(deps: FakeDependencies) -> None:
    # GIVEN a 64x64 image and a 32x32 mask WHEN staged
    # THEN 400 mask_size_mismatch before the mask is stored, and the image is deleted again
    request = fox(images=[data_url(png(64, 64))], mask=data_url(png(32, 32)))

    with pytest.raises(InvalidImage) as refused:
        stage_inputs(deps, request, client_id="c", task_id="t")

    assert refused.value.code == "mask_size_mismatch"
    assert refused.value.message.startswith("mask: the mask is 32x32")
    assert deps.images.objects == {}


def test_a_mask_is_checked_against_a_stored_image_referenced_by_s3(deps: FakeDependencies) -> None:
    # GIVEN the caller's earlier 64x64 input, referenced by s3://, and a 48x48 mask
    deps.images.objects["inputs/c/old/0.png"] = png(64, 64)
    request = fox(images=["s3://images/inputs/c/old/0.png"], mask=data_url(png(48, 48)))

    # WHEN staged THEN mask_size_mismatch, and the caller's own object is left alone
    with pytest.raises(InvalidImage, match="48x48"):
        stage_inputs(deps, request, client_id="c", task_id="t")

    assert list(deps.images.objects) == ["inputs/c/old/0.png"]
    assert deps.images.deleted == []


def test_a_stored_input_over_the_pixel_limit_is_refused_by_its_header(
    make_deps: DepsFactory,
) -> None:
    # GIVEN the caller's earlier 100x100 input and a stack now limited to 50x50
    deps = make_deps(max_input_pixels=50 * 50)
    deps.images.objects["inputs/c/old/0.png"] = png(100, 100)

    with pytest.raises(InvalidImage) as refused:
        stage_inputs(
            deps, fox(images=["s3://images/inputs/c/old/0.png"]), client_id="c", task_id="t"
        )

    assert refused.value.code == "image_too_many_pixels"


def test_a_mask_for_an_image_given_by_url_is_not_compared(deps: FakeDependencies) -> None:
    # GIVEN an https image (handed on unread) and an inline mask of any size
    # WHEN staged THEN the mask is stored: its image's size is unknown to the gateway
    request = fox(images=[PHOTO_URL], mask=data_url(png(48, 48)))

    stored, _ = stage_inputs(deps, request, client_id="c", task_id="t")

    assert stored.mask == "s3://images/inputs/c/t/mask.png"


def test_a_delete_that_fails_leaves_the_refusal_as_it_was(deps: FakeDependencies) -> None:
    # GIVEN a bucket that refuses deletes (a role without s3:DeleteObject)
    deps.images.refuse_deletes = True
    request = fox(images=[data_url(png(64, 64)), data_url(b"not an image")])

    # WHEN the second input is refused THEN the caller still gets the input's error
    with pytest.raises(InvalidImage, match=r"^images\[1\]: "):
        stage_inputs(deps, request, client_id="c", task_id="t")

    assert list(deps.images.objects) == ["inputs/c/t/0.png"]
