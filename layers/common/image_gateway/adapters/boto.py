"""AWS client settings every function uses (the timing policy's retries and timeouts), and the
Secrets Manager cache.

botocore only, no boto3: every function builds its clients from a botocore session
(:mod:`image_gateway.adapters.webhook`, :mod:`image_gateway.adapters.aws`). boto3 adds its
resource layer and s3transfer, which no adapter uses, and importing it costs about 35 ms of a
cold start on Python 3.13 (measured on the built layer: ``python -X importtime``).
"""

from __future__ import annotations

import time
from typing import Any

from botocore.config import Config

from image_gateway.timing import TimingPolicy


def client_config(service: str, timing: TimingPolicy) -> Config:
    """Standard retry mode with the policy's attempts and connect timeout; S3 signs with SigV4,
    so presigned URLs work everywhere (SSE-KMS included)."""
    config = Config(
        retries={"mode": "standard", "max_attempts": timing.aws_max_attempts},
        connect_timeout=timing.aws_connect_timeout_seconds,
    )
    if service == "s3":
        config = config.merge(Config(signature_version="s3v4"))
    return config


class SecretCache:
    """Secrets Manager values cached for a few minutes (one call per cold start, not per event)."""

    def __init__(self, client: Any, *, ttl_seconds: float) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._values: dict[str, tuple[float, str]] = {}

    def get(self, secret_id: str) -> str:
        """The secret's string value."""
        cached = self._values.get(secret_id)
        if cached and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        value = str(self._client.get_secret_value(SecretId=secret_id)["SecretString"])
        self._values[secret_id] = (time.monotonic(), value)
        return value
