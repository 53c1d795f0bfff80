"""S3 (moto, in process) and real images for the ImageStore integration tests."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws
from PIL import Image

BUCKET = "image-gateway-images-test"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An S3 client on moto with an empty bucket; never real AWS (dummy credentials)."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        # SigV4 as the functions configure it (SigV2 presigned URLs fail on SSE-KMS objects).
        client = boto3.client(
            "s3", region_name="us-east-1", config=Config(signature_version="s3v4")
        )
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def s3_calls(s3: Any) -> list[str]:
    """Names of the S3 operations the client makes from now on, in order."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    s3.meta.events.register("before-call.s3", record)
    return calls


@pytest.fixture(scope="session")
def noise_png_4k() -> bytes:
    """A 3840x2160 PNG of random noise, stored uncompressed: about 25 MB, made once."""
    pixels = os.urandom(3840 * 2160 * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (3840, 2160), pixels).save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


@pytest.fixture
def small_jpeg() -> bytes:
    """A real 320x200 JPEG."""
    buffer = io.BytesIO()
    Image.new("RGB", (320, 200), "navy").save(buffer, "JPEG")
    return buffer.getvalue()
