"""The finaliser's path, provider JSON -> Blob -> base64 -> ImageStore, in bounded memory.

An in-memory fake stands in for S3 and keeps only sizes and a hash, so tracemalloc sees the
pipeline's own allocations and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from image_gateway.adapters.s3_images import S3ImageStore as ImageStore
from image_gateway.errors import InvalidImage
from image_gateway.images.json_blobs import parse_json_with_blobs

MIB = 1024 * 1024


class DiscardingS3:
    """Fake of the S3 calls ImageStore makes: records calls and part sizes, hashes the bytes."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.part_sizes: list[int] = []
        self.digest = hashlib.sha256()

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        """Hash the body."""
        self.calls.append("PutObject")
        self.digest.update(kwargs["Body"])
        return {}

    def create_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        """Start an upload."""
        self.calls.append("CreateMultipartUpload")
        return {"UploadId": "upload-1"}

    def upload_part(self, **kwargs: Any) -> dict[str, Any]:
        """Hash one part and remember its size."""
        self.calls.append("UploadPart")
        self.part_sizes.append(len(kwargs["Body"]))
        self.digest.update(kwargs["Body"])
        return {"ETag": f'"etag-{kwargs["PartNumber"]}"'}

    def complete_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        """Finish the upload."""
        self.calls.append("CompleteMultipartUpload")
        return {}

    def abort_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        """Abort the upload."""
        self.calls.append("AbortMultipartUpload")
        return {}


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    """Data in chunks of ``size`` bytes."""
    return (data[i : i + size] for i in range(0, len(data), size))


@pytest.fixture
def big_png(make_png: Callable[..., bytes], pad_png: Callable[[bytes, int], bytes]) -> bytes:
    """A valid 3840x2160 PNG grown to 19 MB (25 MB as base64, like a real 4K result)."""
    return pad_png(make_png(3840, 2160), 19_000_000)


def test_25_mb_json_response_is_stored_with_bounded_memory(big_png: bytes) -> None:
    """Given a 25 MB provider response fed in 64 KiB chunks, when finalised, then the traced
    memory peak stays under 32 MB (json.loads + b64decode would need about 90 MB)."""
    b64 = base64.b64encode(big_png).decode("ascii")
    response = json.dumps({"status": "completed", "data": [{"b64_json": b64}]}).encode()
    del b64
    s3 = DiscardingS3()

    tracemalloc.start()
    try:
        document, blobs = parse_json_with_blobs(chunked(response, 64 * 1024))
        with document["data"][0]["b64_json"] as blob:
            stored = ImageStore(s3, "bucket").store_base64(blob.iter_chunks(), "tasks/t/out-0")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 32 * MIB, f"peak {peak / MIB:.1f} MiB"
    assert len(blobs) == 1
    assert stored.sha256 == s3.digest.hexdigest() == hashlib.sha256(big_png).hexdigest()


def test_parts_are_part_size_except_the_last(big_png: bytes) -> None:
    """Given a 19 MB image and 8 MiB parts, when stored, then parts are 8, 8 and the rest."""
    s3 = DiscardingS3()

    ImageStore(s3, "bucket").store(chunked(big_png, MIB), "tasks/t/out-0")

    assert s3.part_sizes == [8 * MIB, 8 * MIB, len(big_png) - 16 * MIB]


def test_image_of_exactly_one_part_size_uses_multipart(
    make_png: Callable[..., bytes], pad_png: Callable[[bytes, int], bytes]
) -> None:
    """Given an image of exactly part_size bytes, when stored, then one multipart part."""
    image = pad_png(make_png(10, 10), 8 * MIB)
    assert len(image) == 8 * MIB
    s3 = DiscardingS3()

    ImageStore(s3, "bucket").store([image], "tasks/t/out-0")

    assert s3.calls == ["CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"]


def test_image_just_below_part_size_uses_one_put(
    make_png: Callable[..., bytes], pad_png: Callable[[bytes, int], bytes]
) -> None:
    """Given an image one byte below part_size, when stored, then one PutObject."""
    image = pad_png(make_png(10, 10), 8 * MIB - 1)
    s3 = DiscardingS3()

    ImageStore(s3, "bucket").store([image], "tasks/t/out-0")

    assert s3.calls == ["PutObject"]


def test_empty_input_is_an_invalid_image() -> None:
    """Given no bytes at all, when stored, then InvalidImage and no S3 call."""
    s3 = DiscardingS3()

    with pytest.raises(InvalidImage, match="empty"):
        ImageStore(s3, "bucket").store([], "tasks/t/out-0")

    assert s3.calls == []
