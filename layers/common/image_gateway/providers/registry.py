"""The providers the gateway knows. Adding one is one line here: its adapter and its base URL.

Everything else that lists providers is derived from this table (the stack's environment, the
default order, devstack's wiring, the docs tables are checked against it by tests that name the
file to fix). Adapters are imported on first use, so a function that talks to one provider (the
webhook, the poll step) does not pay for importing the other five at cold start.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from functools import cache

from image_gateway.errors import InvalidRequest
from image_gateway.providers.base import Provider

# name: (adapter "module:Class", documented public base URL; PROVIDER_BASE_URLS overrides it)
_REGISTRY: dict[str, tuple[str, str]] = {
    "apimart": ("image_gateway.providers.apimart:ApimartProvider", "https://api.apimart.ai"),
    "mountsea-async": ("image_gateway.providers.mountsea_async:MountseaAsyncProvider", "https://api.mountsea.ai"),
    "mountsea-compat": ("image_gateway.providers.openai_compat:MountseaCompatProvider", "https://api.mountsea.ai"),
    "pmock": ("image_gateway.providers.pmock:PmockProvider", "https://ai.pmock.com"),
    "apimodels": ("image_gateway.providers.apimodels:ApimodelsProvider", "https://apimodels.app"),
    "openai": ("image_gateway.providers.openai_compat:OpenAIProvider", "https://api.openai.com"),
}  # fmt: skip

PROVIDER_NAMES: tuple[str, ...] = tuple(_REGISTRY)
"""Every provider, in registration order."""
DEFAULT_BASE_URLS: Mapping[str, str] = {name: url for name, (_, url) in _REGISTRY.items()}
"""Each provider's documented public base URL."""
ADAPTER_MODULES: Mapping[str, str] = {
    name: ref.partition(":")[0] for name, (ref, _) in _REGISTRY.items()
}
"""Each provider's adapter module (imported only when the adapter is first used)."""


class _LazyTypes(Mapping[str, type[Provider]]):
    """Provider name -> adapter class; the module is imported when the class is first asked."""

    def __getitem__(self, name: str) -> type[Provider]:
        return _load(name)

    def __iter__(self) -> Iterator[str]:
        return iter(_REGISTRY)

    def __len__(self) -> int:
        return len(_REGISTRY)


@cache
def _load(name: str) -> type[Provider]:
    module, _, attribute = _REGISTRY[name][0].partition(":")  # KeyError for unknown names
    kind: type[Provider] = getattr(importlib.import_module(module), attribute)
    return kind


PROVIDER_TYPES: Mapping[str, type[Provider]] = _LazyTypes()


@cache
def get_provider(name: str) -> Provider:
    """The adapter called ``name`` with default options, or a 400 naming the known ones."""
    if name not in _REGISTRY:
        raise InvalidRequest(
            f"unknown provider {name!r}; known providers: {', '.join(sorted(_REGISTRY))}",
            code="unknown_provider",
        )
    return PROVIDER_TYPES[name]()
