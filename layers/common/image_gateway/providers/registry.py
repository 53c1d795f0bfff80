"""The providers the gateway knows. Adding one is one line here."""

from __future__ import annotations

from functools import cache

from image_gateway.errors import InvalidRequest
from image_gateway.providers.apimart import ApimartProvider
from image_gateway.providers.apimodels import ApimodelsProvider
from image_gateway.providers.base import Provider
from image_gateway.providers.mountsea_async import MountseaAsyncProvider
from image_gateway.providers.openai_compat import MountseaCompatProvider, OpenAIProvider
from image_gateway.providers.pmock import PmockProvider

PROVIDER_TYPES: dict[str, type[Provider]] = {
    kind.name: kind
    for kind in (
        ApimartProvider,
        MountseaAsyncProvider,
        MountseaCompatProvider,
        PmockProvider,
        ApimodelsProvider,
        OpenAIProvider,
    )
}


@cache
def get_provider(name: str) -> Provider:
    """The adapter called ``name`` with default options, or a 400 naming the known ones."""
    kind = PROVIDER_TYPES.get(name)
    if kind is None:
        raise InvalidRequest(
            f"unknown provider {name!r}; known providers: {', '.join(sorted(PROVIDER_TYPES))}",
            code="unknown_provider",
        )
    return kind()
