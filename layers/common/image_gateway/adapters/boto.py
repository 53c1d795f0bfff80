"""boto3 clients as every function builds them: the timing policy's retries and timeouts.

Kept apart from :mod:`image_gateway.adapters.aws` so that the webhook's cold path
(:mod:`image_gateway.adapters.webhook`) can build its two clients without importing the other
adapters, pydantic or httpx.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
from botocore.config import Config

from image_gateway.timing import TimingPolicy


def client_config(timing: TimingPolicy) -> Config:
    """Standard retry mode with the policy's attempts, and its connect timeout."""
    return Config(
        retries={"mode": "standard", "max_attempts": timing.aws_max_attempts},
        connect_timeout=timing.aws_connect_timeout_seconds,
    )


def make_client(session: boto3.Session, service: str, timing: TimingPolicy) -> Any:
    """A client of ``service``; S3 signs with SigV4 so presigned URLs work everywhere."""
    config = client_config(timing)
    if service == "s3":  # SSE-KMS included
        config = config.merge(Config(signature_version="s3v4"))
    return session.client(service, config=config)


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
