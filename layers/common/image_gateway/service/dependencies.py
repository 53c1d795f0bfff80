"""Dependencies: every client and store a service needs, built lazily, once per environment.

Handlers keep one ``Dependencies`` per execution environment (built at the first event, never at
import); tests build their own against moto and the provider simulator.
"""

from __future__ import annotations

import json
import time
from functools import cached_property
from typing import Any

import boto3
import httpx
from botocore.config import Config

from image_gateway.auth import ApiKeyStore, WebhookSigner
from image_gateway.config import Settings
from image_gateway.errors import ProviderError
from image_gateway.events import EventPublisher
from image_gateway.fetch import SafeFetcher
from image_gateway.idempotency import IdempotencyStore
from image_gateway.images.store import ImageStore
from image_gateway.providers.client import InputOpener, ProviderClient
from image_gateway.providers.directory import ProviderDirectory
from image_gateway.service.inputs import input_opener
from image_gateway.tasks import TaskStore

_SECRET_TTL_SECONDS = 300.0
PROVIDERS_CACHE_SECONDS = 60.0
"""How long the providers parameter is cached (edits apply within this, x TIME_SCALE)."""
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5)


class SecretCache:
    """Secrets Manager values cached for a few minutes (one call per cold start, not per event)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._values: dict[str, tuple[float, str]] = {}

    def get(self, secret_id: str) -> str:
        """The secret's string value."""
        cached = self._values.get(secret_id)
        if cached and time.monotonic() - cached[0] < _SECRET_TTL_SECONDS:
            return cached[1]
        value = str(self._client.get_secret_value(SecretId=secret_id)["SecretString"])
        self._values[secret_id] = (time.monotonic(), value)
        return value


class Dependencies:
    """The gateway's ports, wired to AWS (or moto) and to the providers over HTTP."""

    def __init__(self, settings: Settings, *, session: boto3.Session | None = None) -> None:
        self.settings = settings
        self._session = session or boto3.Session()

    def _client(self, service: str) -> Any:
        return self._session.client(service, config=_BOTO_CONFIG)

    @cached_property
    def dynamodb(self) -> Any:
        """DynamoDB client."""
        return self._client("dynamodb")

    @cached_property
    def s3(self) -> Any:
        """S3 client (SigV4, so presigned URLs work everywhere)."""
        return self._session.client(
            "s3", config=_BOTO_CONFIG.merge(Config(signature_version="s3v4"))
        )

    @cached_property
    def tasks(self) -> TaskStore:
        """The task table."""
        return TaskStore(self.dynamodb, self.settings.table_name)

    @cached_property
    def api_keys(self) -> ApiKeyStore:
        """Hashed caller API keys."""
        return ApiKeyStore(self.dynamodb, self.settings.table_name)

    @cached_property
    def idempotency(self) -> IdempotencyStore:
        """Idempotency-Key records."""
        return IdempotencyStore(self.dynamodb, self.settings.table_name)

    @cached_property
    def images(self) -> ImageStore:
        """The output/input bucket."""
        return ImageStore(
            self.s3, self.settings.bucket_name, max_bytes=self.settings.max_image_bytes
        )

    @cached_property
    def events(self) -> EventPublisher:
        """The custom event bus."""
        return EventPublisher(
            self._client("events"), self.settings.event_bus_name, self.settings.event_source
        )

    @cached_property
    def stepfunctions(self) -> Any:
        """Step Functions client (starting poll loops)."""
        return self._client("stepfunctions")

    @cached_property
    def sqs(self) -> Any:
        """SQS client (the dispatch queue)."""
        return self._client("sqs")

    @cached_property
    def directory(self) -> ProviderDirectory:
        """Provider order, enabled set, options and prices (SSM parameter, cached 60 s)."""
        name = self.settings.providers_parameter
        if name is None:
            return ProviderDirectory(self.settings, None)
        return ProviderDirectory(
            self.settings,
            lambda: str(self.ssm.get_parameter(Name=name)["Parameter"]["Value"]),
            ttl_seconds=self.settings.scaled(PROVIDERS_CACHE_SECONDS),
        )

    def input_opener(self, stored_images: list[str], stored_mask: str | None) -> InputOpener:
        """Streams a task's stored inputs (S3 objects or https URLs) for multipart uploads."""
        return input_opener(self, stored_images, stored_mask)

    @cached_property
    def ssm(self) -> Any:
        """SSM client (the inbox rules parameter)."""
        return self._client("ssm")

    @cached_property
    def secrets(self) -> SecretCache:
        """Secrets Manager, cached."""
        return SecretCache(self._client("secretsmanager"))

    @cached_property
    def http(self) -> httpx.Client:
        """One pooled HTTP client for provider calls."""
        return httpx.Client(follow_redirects=False)

    @cached_property
    def fetcher(self) -> SafeFetcher:
        """SSRF-safe downloader for provider result URLs."""
        return SafeFetcher(
            self.settings.fetch_allow_private_hosts, max_bytes=self.settings.max_image_bytes
        )

    @cached_property
    def signer(self) -> WebhookSigner:
        """Per-task webhook tokens."""
        return WebhookSigner(self.secrets.get(self.settings.webhook_secret_arn).encode())

    def provider_client(self, name: str) -> ProviderClient:
        """A client for provider ``name`` with its key from Secrets Manager."""
        provider = self.directory.provider(name)
        endpoint = self.settings.provider_endpoint(name)
        if endpoint is None or not self.directory.enabled(name):
            raise ProviderError(
                f"{name} is not configured or disabled in this stack",
                provider=name,
                retryable=True,
                code="provider_disabled",
            )
        keys = json.loads(self.secrets.get(self.settings.provider_keys_secret_arn))
        api_key = keys.get(name)
        if not api_key:
            raise ProviderError(
                f"no API key for {name} in the provider keys secret",
                provider=name,
                retryable=True,
                code="provider_key_missing",
            )
        return ProviderClient(
            provider,
            base_url=endpoint.base_url,
            api_key=str(api_key),
            http=self.http,
            timeout=self.settings.provider_timeout_seconds,
            sync_timeout=self.settings.provider_sync_timeout_seconds,
        )


class LazyDependencies:
    """One ``Dependencies`` per execution environment, built at the first event."""

    def __init__(self) -> None:
        self._deps: Dependencies | None = None

    def get(self) -> Dependencies:
        """Build on first use from the function's environment."""
        if self._deps is None:
            self._deps = Dependencies(Settings.from_env())
        return self._deps

    def reset(self) -> None:
        """Forget the built dependencies (tests and devstack restarts)."""
        self._deps = None
