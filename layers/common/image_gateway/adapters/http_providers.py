"""HttpProviderClients: a ``ProviderClient`` per provider, with its base URL and key
(adapter of ``ports.ProviderClients``)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from image_gateway.config import Settings
from image_gateway.errors import ProviderError
from image_gateway.providers.client import ProviderClient
from image_gateway.providers.directory import ProviderDirectory


class HttpProviderClients:
    """Builds clients from the directory (configured adapters), settings and the keys secret."""

    def __init__(
        self,
        settings: Settings,
        directory: ProviderDirectory,
        keys: Callable[[], str],
        http: httpx.Client,
    ) -> None:
        self._settings = settings
        self._directory = directory
        self._keys = keys
        self._http = http

    def client(self, name: str) -> ProviderClient:
        """A client for provider ``name``; ProviderError (retryable) if disabled or keyless."""
        provider = self._directory.provider(name)
        if not self._directory.enabled(name):
            raise ProviderError(
                f"{name} is not configured or disabled in this stack",
                provider=name,
                retryable=True,
                code="provider_disabled",
            )
        api_key = json.loads(self._keys()).get(name)
        if not api_key:
            raise ProviderError(
                f"no API key for {name} in the provider keys secret",
                provider=name,
                retryable=True,
                code="provider_key_missing",
            )
        return ProviderClient(
            provider,
            base_url=self._settings.provider_base_url(name),
            api_key=str(api_key),
            http=self._http,
            timeout=self._settings.provider_timeout_seconds,
            sync_timeout=self._settings.provider_sync_timeout_seconds,
        )
