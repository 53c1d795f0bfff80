"""AWS client settings every function uses (the timing policy's retries and timeouts), and the
Secrets Manager cache.

botocore only, no boto3: every function builds its clients from a botocore session
(:mod:`image_gateway.adapters.webhook`, :mod:`image_gateway.adapters.aws`). boto3 adds its
resource layer and s3transfer, which no adapter uses, and importing it costs about 35 ms of a
cold start on Python 3.13 (measured on the built layer: ``python -X importtime``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import botocore.session
from botocore.config import Config
from botocore.loaders import Loader

from image_gateway.adapters.access_denied import watch_access_denied
from image_gateway.timing import TimingPolicy

T = TypeVar("T")


class PerEnvironment(Generic[T]):
    """What a handler keeps for its execution environment: built by ``build`` at the first
    event (never at import, so a cold start pays only for what its first route needs)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._built: T | None = None

    def get(self) -> T:
        """The built value (built now, the first time)."""
        if self._built is None:
            self._built = self._build()
        return self._built


SERVICES = frozenset(
    {"dynamodb", "events", "kms", "s3", "secretsmanager", "sqs", "ssm", "stepfunctions"}
)
"""Every AWS service the adapters make a client of (a test checks the adapters against it)."""


class _KnownServicesLoader(Loader):  # type: ignore[misc]  # botocore has no types
    """botocore's loader, told which services exist instead of listing its data directory.

    Before loading a service's model, botocore checks the name against every service it has a
    model of, which lists about 400 directories (twice: the model and the endpoint rules). On
    the built layer with Python 3.13 that was 11 ms of the first event's three clients
    (API: 58 -> 47 ms, best of six). The models themselves load as before; a name outside
    :data:`SERVICES` is an ``UnknownServiceError``, as it would be for a misspelt one.
    """

    def list_available_services(self, type_name: str) -> list[str]:
        """The services the adapters use (see the class)."""
        return sorted(SERVICES)


def new_session() -> botocore.session.Session:
    """A botocore session whose loader knows :data:`SERVICES` (``AWS_DATA_PATH`` honoured),
    and whose refused calls are logged and counted (:mod:`image_gateway.adapters.access_denied`)."""
    session = botocore.session.get_session()
    data_path = session.get_config_variable("data_path")
    extra = [p for p in (data_path or "").split(os.pathsep) if p]
    session.register_component("data_loader", _KnownServicesLoader(extra_search_paths=extra))
    watch_access_denied(session)
    return session


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
