"""ManifestFiles contract: ``InMemoryManifestFiles`` and ``S3ManifestFiles`` (moto).

A file put at a key of a bucket reads back as put; putting it again replaces it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from image_gateway.adapters.s3_inbox import S3ManifestFiles
from image_gateway.batches.events import ManifestFiles

from tests.fakes.batches import InMemoryManifestFiles


@pytest.fixture
def files(implementation: str, request: pytest.FixtureRequest) -> tuple[ManifestFiles, str, Any]:
    """The port, a bucket it may write to, and how to read a file back."""
    if implementation == "memory":
        memory = InMemoryManifestFiles()
        return memory, "inbox", lambda bucket, key: memory.objects[(bucket, key)]
    s3 = request.getfixturevalue("s3")
    bucket = f"inbox-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)

    def read(bucket: str, key: str) -> bytes:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    return S3ManifestFiles(s3), bucket, read


def test_a_file_put_reads_back_as_put(files: tuple[ManifestFiles, str, Any]) -> None:
    port, bucket, read = files

    port.put(bucket, "batches/shop/week-1.errors.jsonl", b'{"custom_id":"a"}\n')

    assert read(bucket, "batches/shop/week-1.errors.jsonl") == b'{"custom_id":"a"}\n'


def test_putting_a_file_again_replaces_it(files: tuple[ManifestFiles, str, Any]) -> None:
    port, bucket, read = files
    port.put(bucket, "batches/week-2.results.jsonl", b"old\n")

    port.put(bucket, "batches/week-2.results.jsonl", b"")

    assert read(bucket, "batches/week-2.results.jsonl") == b""
