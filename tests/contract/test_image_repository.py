"""ImageRepository contract: ``InMemoryImageStore`` and ``S3ImageStore`` (moto).

What goes in is checked (format, real dimensions, size, sha256, completeness, the caller's check
of the header) and comes out byte for byte; what is not a complete image, is too big or is
refused by the check leaves nothing behind; what is deleted is gone. How S3 uploads
(one PUT or sequential multipart parts, aborts) is pinned in tests/integration/images.
"""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from image_gateway.adapters.s3_images import S3ImageStore
from image_gateway.errors import InvalidImage, NotFound, PayloadTooLarge
from image_gateway.images.inputs import InputCheck
from image_gateway.images.sniff import ImageInfo
from image_gateway.images.store import StoredImage
from image_gateway.ports import ImageRepository
from PIL import Image

from tests.fakes import InMemoryImageStore
from tests.hostile_images import png_bomb, png_header

FORMATS = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "WEBP": ("webp", "image/webp"),
}


def encode(width: int, height: int, image_format: str) -> bytes:
    """A plain image of that size in that format."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, image_format)
    return buffer.getvalue()


def chunked(data: bytes | str, size: int) -> Iterator[Any]:
    """Data in chunks of ``size``."""
    return (data[i : i + size] for i in range(0, len(data), size))


@dataclass
class ImagesUnderTest:
    """An image store, one with another byte limit, and what the bucket holds."""

    bucket: str
    store: ImageRepository
    with_limit: Callable[[int], ImageRepository]
    held: Callable[[], list[str]]
    """Keys of stored objects and of unfinished uploads (what a failed store could leave)."""


def _s3_under_test(s3: Any) -> ImagesUnderTest:
    bucket = f"images-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)

    def held() -> list[str]:
        objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return [o["Key"] for o in objects] + [f"unfinished:{u['Key']}" for u in uploads]

    return ImagesUnderTest(
        bucket=bucket,
        store=S3ImageStore(s3, bucket),
        with_limit=lambda max_bytes: S3ImageStore(s3, bucket, max_bytes=max_bytes),
        held=held,
    )


def _memory_under_test() -> ImagesUnderTest:
    fake = InMemoryImageStore("images")
    return ImagesUnderTest(
        bucket="images",
        store=fake,
        with_limit=fake.with_limit,
        held=lambda: sorted(fake.objects),
    )


@pytest.fixture
def images(implementation: str, request: pytest.FixtureRequest) -> ImagesUnderTest:
    """An empty bucket behind the fake, or behind the S3 adapter on moto."""
    if implementation == "memory":
        return _memory_under_test()
    return _s3_under_test(request.getfixturevalue("s3"))


@pytest.fixture(scope="module")
def small_jpeg() -> bytes:
    """A real 320x200 JPEG."""
    return encode(320, 200, "JPEG")


# -- store -----------------------------------------------------------------------------------
@pytest.mark.parametrize("image_format", sorted(FORMATS))
def test_given_an_image_when_stored_then_its_real_format_size_and_digest_come_back(
    images: ImagesUnderTest, image_format: str
) -> None:
    data = encode(320, 200, image_format)
    extension, content_type = FORMATS[image_format]

    stored = images.store.store(chunked(data, 100), "tasks/t1/output-0")

    assert stored == StoredImage(
        bucket=images.bucket,
        key=f"tasks/t1/output-0.{extension}",
        content_type=content_type,
        width=320,
        height=200,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def test_given_a_stored_image_when_streamed_then_the_same_bytes_come_back(
    images: ImagesUnderTest, small_jpeg: bytes
) -> None:
    stored = images.store.store(chunked(small_jpeg, 1000), "inputs/i1")

    assert b"".join(images.store.open_stream(stored.key)) == small_jpeg


@pytest.mark.parametrize(
    "prefix", ["", "data:image/jpeg;base64,", "data:image/png;base64,"],
    ids=["raw", "data-url", "data-url-claiming-png"],
)  # fmt: skip
def test_given_base64_text_when_stored_then_the_decoded_image_is_stored(
    images: ImagesUnderTest, small_jpeg: bytes, prefix: str
) -> None:
    text = prefix + base64.b64encode(small_jpeg).decode("ascii")

    stored = images.store.store_base64(chunked(text, 7), "tasks/t3/output-0")

    assert (stored.key, stored.content_type, stored.width, stored.height) == (
        "tasks/t3/output-0.jpg",
        "image/jpeg",
        320,
        200,
    )
    assert b"".join(images.store.open_stream(stored.key)) == small_jpeg


def test_given_bytes_that_are_not_an_image_when_stored_then_invalid_image_and_nothing_kept(
    images: ImagesUnderTest,
) -> None:
    with pytest.raises(InvalidImage):
        images.store.store(chunked(b"<html>" + bytes(100_000), 4096), "tasks/t4/x")

    assert images.held() == []


def test_given_invalid_base64_when_stored_then_invalid_image_and_nothing_kept(
    images: ImagesUnderTest,
) -> None:
    with pytest.raises(InvalidImage, match="not valid base64"):
        images.store.store_base64(["iVBORw0KGgo*"], "tasks/t5/x")

    assert images.held() == []


def test_given_an_image_over_the_byte_limit_when_stored_then_too_large_and_nothing_kept(
    images: ImagesUnderTest, small_jpeg: bytes
) -> None:
    store = images.with_limit(len(small_jpeg) - 1)

    with pytest.raises(PayloadTooLarge):
        store.store(chunked(small_jpeg, 1000), "tasks/t6/output-0")

    assert images.held() == []


def test_given_an_image_of_exactly_the_byte_limit_when_stored_then_it_is_kept(
    images: ImagesUnderTest, small_jpeg: bytes
) -> None:
    store = images.with_limit(len(small_jpeg))

    stored = store.store(chunked(small_jpeg, 1000), "tasks/t6/output-0")

    assert images.held() == [stored.key]


@pytest.mark.parametrize(
    "cut",
    [
        lambda data: png_header(320, 200),
        lambda data: data[: len(data) // 2],
        lambda data: data[:-2],
    ],
    ids=["header-only-png", "half-a-jpeg", "jpeg-without-eoi"],
)
def test_given_an_incomplete_image_when_stored_then_invalid_image_and_nothing_kept(
    images: ImagesUnderTest, small_jpeg: bytes, cut: Callable[[bytes], bytes]
) -> None:
    with pytest.raises(InvalidImage):
        images.store.store(chunked(cut(small_jpeg), 1000), "inputs/i2")

    assert images.held() == []


def test_given_a_check_when_stored_then_it_sees_the_header_before_anything_is_kept(
    images: ImagesUnderTest, small_jpeg: bytes
) -> None:
    seen: list[tuple[ImageInfo, list[str]]] = []

    def check(info: ImageInfo) -> None:
        seen.append((info, images.held()))

    stored = images.store.store(chunked(small_jpeg, 1000), "inputs/i3", check=check)

    assert seen == [(ImageInfo("image/jpeg", "jpg", 320, 200), [])]
    assert images.held() == [stored.key]


def test_given_a_check_that_refuses_when_stored_then_its_error_and_nothing_kept(
    images: ImagesUnderTest,
) -> None:
    # GIVEN a 40000x40000 PNG (a decompression bomb) and the input pixel limit
    text = base64.b64encode(png_bomb()).decode()

    with pytest.raises(InvalidImage) as refused:
        images.store.store_base64([text], "inputs/i4", check=InputCheck(16_777_216))

    assert refused.value.code == "image_too_many_pixels"
    assert images.held() == []


# -- delete ----------------------------------------------------------------------------------
def test_given_a_stored_image_when_deleted_then_it_is_gone(
    images: ImagesUnderTest, small_jpeg: bytes
) -> None:
    stored = images.store.store([small_jpeg], "inputs/i5")

    images.store.delete(stored.key)

    assert images.store.exists(stored.key) is False
    assert images.held() == []


def test_given_no_object_when_deleted_then_nothing_happens(
    images: ImagesUnderTest, small_jpeg: bytes
) -> None:
    kept = images.store.store([small_jpeg], "inputs/i6")

    images.store.delete("inputs/missing.png")

    assert images.held() == [kept.key]


# -- read ------------------------------------------------------------------------------------
def test_given_a_stored_image_when_asked_then_it_exists(
    images: ImagesUnderTest, small_jpeg: bytes
) -> None:
    stored = images.store.store([small_jpeg], "inputs/i1")

    assert images.store.exists(stored.key) is True


def test_given_no_object_when_asked_then_it_does_not_exist(images: ImagesUnderTest) -> None:
    assert images.store.exists("inputs/missing.png") is False


def test_given_a_start_when_streamed_then_the_bytes_from_there_on(
    images: ImagesUnderTest,
) -> None:
    # GIVEN a file of 200,000 bytes
    data = bytes(range(256)) * 781 + b"tail"
    images.store.put_file("inputs/c/uploads/u/0.jsonl", data, content_type="application/x-ndjson")

    # WHEN it is streamed from byte 150,000, and from its end
    rest = b"".join(images.store.open_stream("inputs/c/uploads/u/0.jsonl", start=150_000))
    nothing = b"".join(images.store.open_stream("inputs/c/uploads/u/0.jsonl", start=len(data)))

    # THEN the bytes from there on, and none
    assert (rest, nothing) == (data[150_000:], b"")


def test_given_no_object_when_streamed_then_not_found(images: ImagesUnderTest) -> None:
    with pytest.raises(NotFound):
        list(images.store.open_stream("inputs/missing.png"))


def test_given_a_key_when_presigned_then_the_url_names_the_bucket_and_the_key(
    images: ImagesUnderTest,
) -> None:
    url = images.store.presigned_get_url("tasks/t1/output-0.png", expires_in=600)

    assert url.startswith("https://")
    assert "tasks/t1/output-0.png" in url
    assert images.bucket in url


def test_given_a_store_when_asked_its_bucket_then_it_names_the_bucket(
    images: ImagesUnderTest,
) -> None:
    assert images.store.bucket == images.bucket


def test_given_a_key_type_and_length_when_presigned_for_upload_then_the_url_names_them(
    images: ImagesUnderTest,
) -> None:
    url = images.store.presigned_put_url(
        "inputs/c1/uploads/u1/0.png", content_type="image/png", content_length=1234, expires_in=600
    )

    assert url.startswith("https://")
    assert "inputs/c1/uploads/u1/0.png" in url
    assert images.bucket in url
    assert "content-type" in url and "content-length" in url  # signed (S3) or named (fake)
