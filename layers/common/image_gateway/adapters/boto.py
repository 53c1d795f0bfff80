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
from pathlib import Path
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


class LazyClient:
    """A botocore client built at its first use (a method call or attribute), not when an
    adapter that holds it is made: a route that only names the bucket (a queued task's view)
    never builds the S3 client, the costliest to build (its endpoint rules: 10-20 ms of a
    cold start on Python 3.13, profiled on the built layer)."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = self._build()
        return getattr(self._client, name)


OPERATIONS: dict[str, frozenset[str]] = {
    "dynamodb": frozenset(
        {
            "BatchGetItem",
            "BatchWriteItem",
            "DeleteItem",
            "GetItem",
            "PutItem",
            "Query",
            "TransactWriteItems",
            "UpdateItem",
        }
    ),
    "events": frozenset({"PutEvents"}),
    "kms": frozenset({"Decrypt", "Encrypt"}),
    "s3": frozenset(
        {
            "AbortMultipartUpload",
            "CompleteMultipartUpload",
            "CreateMultipartUpload",
            "DeleteObject",
            "GetObject",
            "HeadObject",
            "ListObjectsV2",
            "PutObject",
            "UploadPart",
        }
    ),
    "secretsmanager": frozenset({"GetSecretValue"}),
    "sqs": frozenset({"SendMessage"}),
    "ssm": frozenset({"GetParameter", "GetParameters"}),
    "stepfunctions": frozenset({"StartExecution"}),
}
"""Every AWS operation the adapters call (presigned URLs included), by service; a test checks
the adapters' calls against it, and :mod:`image_gateway.adapters.botocore_models` is made
from it."""

SERVICES = frozenset(OPERATIONS)
"""Every AWS service the adapters make a client of (a test checks the adapters against it)."""

MODELS_DIR = Path(__file__).with_name("botocore_models")
"""The service models the adapters' clients are built from: botocore's own, with only the
:data:`OPERATIONS` (see :class:`_KnownServicesLoader`)."""


class _KnownServicesLoader(Loader):  # type: ignore[misc]  # botocore has no types
    """botocore's loader, told which services exist instead of listing its data directory, and
    reading each service's model with only the operations the adapters call.

    Before loading a service's model, botocore checks the name against every service it has a
    model of, which lists about 400 directories (twice: the model and the endpoint rules). On
    the built layer with Python 3.13 that was 11 ms of the first event's three clients
    (API: 58 -> 47 ms, best of six). A name outside :data:`SERVICES` is an
    ``UnknownServiceError``, as it would be for a misspelt one.

    The models themselves come from :data:`MODELS_DIR` first: botocore's ``service-2`` of the
    same API version, cut to :data:`OPERATIONS` and the shapes they use, without their
    documentation. botocore parses the whole model and builds a method per operation at each
    client; the finaliser's five clients went from about 100 to 45 ms of CPU (median of seven,
    built layer, Python 3.13). ``endpoints.json`` comes from there too, with only
    :data:`SERVICES` (the whole file is 1.2 MB, 22 ms of CPU at a session's first client).
    Endpoint rules, paginators and everything else are botocore's. A runtime whose botocore has
    a newer API version of a service uses its own full model.
    """

    def list_available_services(self, type_name: str) -> list[str]:
        """The services the adapters use (see the class)."""
        return sorted(SERVICES)


def new_session() -> botocore.session.Session:
    """A botocore session whose loader knows :data:`SERVICES` and reads their trimmed models
    (``AWS_DATA_PATH`` honoured, after them), and whose refused calls are logged and counted
    (:mod:`image_gateway.adapters.access_denied`)."""
    session = botocore.session.get_session()
    data_path = session.get_config_variable("data_path")
    extra = [str(MODELS_DIR), *(p for p in (data_path or "").split(os.pathsep) if p)]
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
