"""AwsCallbackDependencies: the webhook's two ports on AWS (``ports.CallbackDependencies``).

The webhook's cold path on purpose: botocore (not boto3: its resource layer and s3transfer are
not needed for two plain clients), a Secrets Manager client for the tokens' key and an SQS
client for the finalize queue, built at the first event, and nothing of the rest of the gateway
(no pydantic settings, no httpx, no provider code). Everything the callback then needs (the
provider, the download, S3, the task table) happens in the finalize function.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import botocore.session

from image_gateway.adapters.boto import PerEnvironment, SecretCache, client_config, new_session
from image_gateway.adapters.sqs_finalize import SqsFinalizeQueue
from image_gateway.auth import WebhookSigner
from image_gateway.timing import DEFAULT_TIMING, TimingPolicy
from image_gateway.webhooks.settings import WebhookSettings


class AwsCallbackDependencies:
    """The callback tokens' key (Secrets Manager, cached) and the finalize queue (SQS)."""

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        session: botocore.session.Session | None = None,
        timing: TimingPolicy = DEFAULT_TIMING,
    ) -> None:
        self._settings = settings
        self._timing = timing
        self._session = session or new_session()

    def _client(self, service: str) -> Any:
        return self._session.create_client(service, config=client_config(service, self._timing))

    @property
    def settings(self) -> WebhookSettings:
        """The webhook's environment."""
        return self._settings

    @cached_property
    def _secrets(self) -> SecretCache:
        return SecretCache(
            self._client("secretsmanager"), ttl_seconds=self._timing.secrets_cache_seconds
        )

    @property
    def signer(self) -> WebhookSigner:
        """Per-task callback tokens (the key re-read after the secrets cache's age)."""
        return WebhookSigner(self._secrets.get(self._settings.webhook_secret_arn).encode())

    @cached_property
    def finalize_queue(self) -> SqsFinalizeQueue:
        """The FIFO queue the finalize function reads."""
        return SqsFinalizeQueue(self._client("sqs"), self._settings.finalize_queue_url)


def lazy_callback_dependencies() -> PerEnvironment[AwsCallbackDependencies]:
    """One ``AwsCallbackDependencies`` per execution environment, built at the first event."""
    return PerEnvironment(lambda: AwsCallbackDependencies(WebhookSettings.from_env()))
