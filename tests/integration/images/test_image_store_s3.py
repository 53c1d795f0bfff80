"""S3ImageStore on moto: one PUT for small images, sequential multipart for big ones.

What every image store does (checks, round trips, refusals) is the contract in
tests/contract/test_image_repository.py; this pins how S3 is used.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from image_gateway.adapters.s3_images import S3ImageStore as ImageStore
from image_gateway.errors import InvalidImage, NotFound

BUCKET = "image-gateway-images-test"
MIB = 1024 * 1024


def chunked(data: bytes | str, size: int) -> Iterator[Any]:
    """Data in chunks of ``size``."""
    return (data[i : i + size] for i in range(0, len(data), size))


def object_bytes(s3: Any, key: str) -> bytes:
    """The stored object's content."""
    body: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


def assert_bucket_is_empty(s3: Any) -> None:
    """No object and no unfinished multipart upload in the bucket."""
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_small_image_is_stored_with_one_put(
    s3: Any, s3_calls: list[str], small_jpeg: bytes
) -> None:
    """Given a small JPEG, when stored, then one PutObject writes it under the .jpg key."""
    stored = ImageStore(s3, BUCKET).store(chunked(small_jpeg, 1000), "tasks/t1/output-0")

    assert s3_calls == ["PutObject"]
    assert object_bytes(s3, "tasks/t1/output-0.jpg") == small_jpeg
    assert stored.key == "tasks/t1/output-0.jpg"


def test_content_type_and_metadata_are_set(s3: Any, small_jpeg: bytes) -> None:
    """Given metadata, when an image is stored, then the object carries it and its type."""
    stored = ImageStore(s3, BUCKET).store(
        [small_jpeg], "tasks/t1/output-0", metadata={"task-id": "t1", "provider": "apimart"}
    )

    head = s3.head_object(Bucket=BUCKET, Key=stored.key)
    assert head["ContentType"] == "image/jpeg"
    assert head["Metadata"] == {"task-id": "t1", "provider": "apimart"}


def test_4k_noise_png_is_uploaded_in_sequential_parts(
    s3: Any, s3_calls: list[str], noise_png_4k: bytes
) -> None:
    """Given a 25 MB 4K PNG, when stored, then three parts of at most 8 MiB make it."""
    stored = ImageStore(s3, BUCKET).store(
        chunked(noise_png_4k, 64 * 1024), "tasks/t2/output-0", metadata={"task-id": "t2"}
    )

    assert s3_calls == [
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPart",
        "UploadPart",
        "CompleteMultipartUpload",
    ]
    assert (stored.key, stored.content_type, stored.width, stored.height) == (
        "tasks/t2/output-0.png",
        "image/png",
        3840,
        2160,
    )
    assert stored.size_bytes == len(noise_png_4k)
    assert stored.sha256 == hashlib.sha256(noise_png_4k).hexdigest()
    assert object_bytes(s3, stored.key) == noise_png_4k


def test_multipart_object_keeps_content_type_and_metadata(s3: Any, noise_png_4k: bytes) -> None:
    """Given a multipart upload, then the object has the PNG type and the metadata."""
    stored = ImageStore(s3, BUCKET).store(
        chunked(noise_png_4k, MIB), "tasks/t2/output-0", metadata={"task-id": "t2"}
    )

    head = s3.head_object(Bucket=BUCKET, Key=stored.key)
    assert (head["ContentType"], head["Metadata"]) == ("image/png", {"task-id": "t2"})


def test_base64_data_url_of_a_4k_image_in_64k_chunks(s3: Any, noise_png_4k: bytes) -> None:
    """Given a 4K PNG as a 33 MB base64 data URL in 64 KiB chunks, then the image is stored."""
    text = "data:image/png;base64," + base64.b64encode(noise_png_4k).decode("ascii")

    stored = ImageStore(s3, BUCKET).store_base64(chunked(text, 64 * 1024), "tasks/t3/output-0")

    assert (stored.width, stored.height, stored.size_bytes) == (3840, 2160, len(noise_png_4k))
    assert object_bytes(s3, stored.key) == noise_png_4k


def test_non_image_makes_no_s3_call(s3: Any, s3_calls: list[str]) -> None:
    """Given 12 MB that are not an image, when stored, then InvalidImage before any S3 call.

    (That nothing is left in the bucket is the contract: tests/contract/test_image_repository.py.)
    """
    with pytest.raises(InvalidImage):
        ImageStore(s3, BUCKET).store(chunked(b"<html>" + bytes(12 * MIB), MIB), "tasks/t4/x")

    assert s3_calls == []


class FailingOnSecondPart:
    """An S3 client whose second UploadPart fails, as a dropped connection would."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def upload_part(self, **kwargs: Any) -> Any:
        """Fail on part 2; pass the others through."""
        if kwargs["PartNumber"] == 2:
            raise ConnectionResetError("connection reset by peer")
        return self._s3.upload_part(**kwargs)


def test_failed_multipart_upload_is_aborted(
    s3: Any, s3_calls: list[str], noise_png_4k: bytes
) -> None:
    """Given S3 failing on the second part, when stored, then the upload is aborted."""
    with pytest.raises(ConnectionResetError):
        ImageStore(FailingOnSecondPart(s3), BUCKET).store([noise_png_4k], "tasks/t7/output-0")

    assert s3_calls[-1] == "AbortMultipartUpload"
    assert_bucket_is_empty(s3)


def test_open_stream_gives_the_stored_bytes_in_chunks(s3: Any, noise_png_4k: bytes) -> None:
    """Given a stored 25 MB image, when streamed, then 1 MiB chunks rebuild it."""
    stored = ImageStore(s3, BUCKET).store([noise_png_4k], "inputs/i1")

    chunks = list(ImageStore(s3, BUCKET).open_stream(stored.key))

    assert max(len(chunk) for chunk in chunks) == MIB
    assert b"".join(chunks) == noise_png_4k


def test_the_image_just_stored_is_read_back_without_a_request(
    s3: Any, s3_calls: list[str], small_jpeg: bytes
) -> None:
    """Given a small image this store just put, when it is read back (whole or from a byte),
    then no GetObject is made and the bytes are the stored ones."""
    store = ImageStore(s3, BUCKET)
    stored = store.store([small_jpeg], "tasks/t1/output-0")

    assert b"".join(store.open_stream(stored.key)) == small_jpeg
    assert b"".join(store.open_stream(stored.key, start=10)) == small_jpeg[10:]
    assert s3_calls == ["PutObject"]
    assert object_bytes(s3, stored.key) == small_jpeg


def test_only_the_last_small_image_is_kept_and_never_after_its_delete(
    s3: Any, s3_calls: list[str], small_jpeg: bytes, noise_png_4k: bytes
) -> None:
    """Given images stored one after the other, when read back, then only the last one put
    with one PutObject comes from memory; a deleted one is not found; a multipart one is
    never kept (its bytes never were in memory at once)."""
    store = ImageStore(s3, BUCKET)
    first = store.store([small_jpeg], "tasks/t1/output-0")
    second = store.store([small_jpeg], "tasks/t1/output-1")
    s3_calls.clear()

    assert b"".join(store.open_stream(first.key)) == small_jpeg  # from S3
    assert b"".join(store.open_stream(second.key)) == small_jpeg  # from memory
    assert s3_calls == ["GetObject"]

    store.delete(second.key)
    with pytest.raises(NotFound):
        list(store.open_stream(second.key))

    big = store.store(chunked(noise_png_4k, 64 * 1024), "tasks/t2/output-0")
    s3_calls.clear()
    assert b"".join(store.open_stream(big.key)) == noise_png_4k
    assert s3_calls == ["GetObject"]


def test_presigned_get_url_is_sigv4_with_the_expiry(s3: Any) -> None:
    """Given a key, when presigned for 600 s, then a SigV4 URL that expires in 600 s."""
    url = ImageStore(s3, BUCKET).presigned_get_url("tasks/t1/output-0.png", expires_in=600)

    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    assert "X-Amz-Expires=600" in url


def test_part_size_below_the_s3_minimum_is_rejected(s3: Any) -> None:
    """Given a 1 MiB part size, when the store is built, then ValueError (S3 needs 5 MiB)."""
    with pytest.raises(ValueError, match="part_size"):
        ImageStore(s3, BUCKET, part_size=MIB)
