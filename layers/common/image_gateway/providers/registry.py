"""The providers the gateway knows. Adding one is one line here.

Adapters are imported on first use, so a function that talks to one provider (the webhook,
the poll step) does not pay for importing the other five at cold start.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from functools import cache

from image_gateway.errors import InvalidRequest
from image_gateway.providers.base import Provider

_ADAPTERS = {
    "apimart": "image_gateway.providers.apimart:ApimartProvider",
    "mountsea-async": "image_gateway.providers.mountsea_async:MountseaAsyncProvider",
    "mountsea-compat": "image_gateway.providers.openai_compat:MountseaCompatProvider",
    "pmock": "image_gateway.providers.pmock:PmockProvider",
    "apimodels": "image_gateway.providers.apimodels:ApimodelsProvider",
    "openai": "image_gateway.providers.openai_compat:OpenAIProvider",
}


class _LazyTypes(Mapping[str, type[Provider]]):
    """Provider name -> adapter class; the module is imported when the class is first asked."""

    def __getitem__(self, name: str) -> type[Provider]:
        return _load(name)

    def __iter__(self) -> Iterator[str]:
        return iter(_ADAPTERS)

    def __len__(self) -> int:
        return len(_ADAPTERS)


@cache
def _load(name: str) -> type[Provider]:
    module, _, attribute = _ADAPTERS[name].partition(":")  # KeyError for unknown names
    kind: type[Provider] = getattr(importlib.import_module(module), attribute)
    return kind


PROVIDER_TYPES: Mapping[str, type[Provider]] = _LazyTypes()


@cache
def get_provider(name: str) -> Provider:
    """The adapter called ``name`` with default options, or a 400 naming the known ones."""
    if name not in _ADAPTERS:
        raise InvalidRequest(
            f"unknown provider {name!r}; known providers: {', '.join(sorted(_ADAPTERS))}",
            code="unknown_provider",
        )
    return PROVIDER_TYPES[name]()
