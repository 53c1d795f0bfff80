"""The providers the gateway knows. Adding one is one line here."""

from __future__ import annotations

from image_gateway.errors import InvalidRequest
from image_gateway.providers.apimart import ApimartProvider
from image_gateway.providers.base import Provider
from image_gateway.providers.mountsea_async import MountseaAsyncProvider

PROVIDERS: dict[str, Provider] = {
    provider.name: provider for provider in (ApimartProvider(), MountseaAsyncProvider())
}


def get_provider(name: str) -> Provider:
    """The adapter called ``name``, or a 400 naming the known ones."""
    provider = PROVIDERS.get(name)
    if provider is None:
        raise InvalidRequest(
            f"unknown provider {name!r}; known providers: {', '.join(sorted(PROVIDERS))}",
            code="unknown_provider",
        )
    return provider
