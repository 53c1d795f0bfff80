"""Provider settings that change without a redeploy: order, enabled, options and prices.

They live in SSM (read at most once a minute): the stack's defaults in ``PROVIDERS_PARAMETER``,
the operator's settings over them in ``<that name>/operator`` (``providers/settings.py``):

    {
      "order":    ["apimart", "mountsea-async", "apimodels", ...],   # default fallback order
      "disabled": ["openai"],                                       # never used while listed
      "options":  {"apimart": {"official_fallback": false}, "pmock": {...}},
      "prices":   {"apimodels": {"per_image": {"1K": {"low": 0.005, ...}, ...}}},
      "concurrency": {"apimodels": 4},                               # default 16 each
      "breaker":  {"apimart": {"failures": 3, "window_seconds": 60, "cooldown_seconds": 30}},
      "routing":  "price"                                           # the stack's policy
    }

Every key is optional: without ``order`` the stack's ``DEFAULT_PROVIDERS`` apply, ``disabled``
adds to ``DISABLED_PROVIDERS``. Every registered provider is usable unless disabled; its base URL
is the registry's (or ``PROVIDER_BASE_URLS``'), its key comes from the provider keys secret.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from image_gateway.config import Settings
from image_gateway.errors import GatewayError, InvalidRequest
from image_gateway.models.request import ImageRequest, RoutingPolicy
from image_gateway.providers.base import Provider, SizePlan
from image_gateway.providers.registry import PROVIDER_TYPES

logger = Logger(child=True)

DEFAULT_CONCURRENCY = 16
"""Calls in flight per provider unless the parameter's ``concurrency`` says otherwise."""

Quality = Literal["low", "medium", "high", "auto"]
Tier = Literal["1K", "2K", "4K"]


class PriceTable(BaseModel):
    """USD per image by tier (long edge <= 1536: 1K, <= 2048: 2K, above: 4K) and quality."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_image: dict[Tier, dict[Quality, float]]
    source: str | None = Field(default=None, description="where the prices come from, dated")

    def estimate(self, request: ImageRequest, plan: SizePlan | None) -> float | None:
        """The price of one image of this request; None when the table has no such cell."""
        tier = _tier_of(plan.expected) if plan is not None and plan.expected else request.tier()
        row = self.per_image.get(tier)
        if row is None:
            return None
        price = row.get(request.quality)
        if price is None and request.quality == "auto":
            price = row.get("medium")
        return None if price is None else round(price * request.n, 6)


class BreakerConfig(BaseModel):
    """One provider's circuit breaker thresholds; a field left out is TimingPolicy's default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    failures: int | None = Field(default=None, ge=1, le=1000)
    window_seconds: float | None = Field(default=None, gt=0, le=86400)
    cooldown_seconds: float | None = Field(default=None, gt=0, le=86400)


class ProviderConfig(BaseModel):
    """The providers parameter, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    order: list[str] | None = None
    disabled: list[str] = Field(default_factory=list)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    prices: dict[str, PriceTable] = Field(default_factory=dict)
    concurrency: dict[str, Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=dict,
        description="calls in flight per provider; more wait in the dispatch queue",
    )
    breaker: dict[str, BreakerConfig] = Field(
        default_factory=dict,
        description="circuit breaker thresholds per provider (real-world seconds)",
    )
    routing: RoutingPolicy | None = Field(
        default=None,
        description="the stack's routing policy (a client's or a request's wins); None: order",
    )

    @field_validator("order", "disabled", "options", "prices", "concurrency", "breaker")
    @classmethod
    def _known(cls, names: Any) -> Any:  # provider names (routing is a policy, not a name)
        for name in names or []:
            if name not in PROVIDER_TYPES:
                raise ValueError(f"unknown provider {name!r}; known: {sorted(PROVIDER_TYPES)}")
        return names

    @model_validator(mode="after")
    def _options_valid(self) -> ProviderConfig:
        for name, options in self.options.items():
            try:
                PROVIDER_TYPES[name](options)
            except InvalidRequest as exc:
                raise ValueError(exc.message) from None
        return self

    @classmethod
    def parse(cls, document: str) -> ProviderConfig:
        """Parse the parameter's JSON; a misconfiguration is an operator error, said plainly."""
        try:
            return cls.model_validate(json.loads(document or "{}"))
        except (ValueError, ValidationError) as exc:
            raise GatewayError(
                f"the providers parameter is not valid: {exc}", code="providers_config_invalid"
            ) from None


class ProviderDirectory:
    """Which providers exist, in what order, with what options and prices (cached 60 s)."""

    def __init__(
        self,
        settings: Settings,
        load: Callable[[], str] | None,
        *,
        ttl_seconds: float = 60.0,
    ) -> None:
        self._settings = settings
        self._load = load
        self._ttl = ttl_seconds
        self._cached: tuple[float, ProviderConfig, dict[str, Provider]] | None = None

    def _current(self) -> tuple[ProviderConfig, dict[str, Provider]]:
        """The configuration and the adapters built from it so far (built on first use)."""
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] >= self._ttl:
            try:
                config = ProviderConfig.parse(self._load()) if self._load else ProviderConfig()
            except Exception:
                if self._cached is None:
                    raise
                # keep serving the last good configuration (a bad edit, SSM throttling)
                logger.exception("providers parameter unreadable; keeping the previous one")
                self._cached = (now, self._cached[1], self._cached[2])
                return self._cached[1], self._cached[2]
            self._cached = (now, config, {})
        return self._cached[1], self._cached[2]

    @property
    def config(self) -> ProviderConfig:
        """The current configuration."""
        return self._current()[0]

    def provider(self, name: str) -> Provider:
        """The adapter for ``name`` with its configured options."""
        from image_gateway.providers.registry import get_provider  # the 400 for unknown names

        get_provider(name)
        config, adapters = self._current()
        if name not in adapters:
            adapters[name] = PROVIDER_TYPES[name](config.options.get(name))
        return adapters[name]

    def order(self) -> list[str]:
        """The default fallback order."""
        config = self.config
        return list(config.order) if config.order is not None else self._settings.default_providers

    def enabled(self, name: str) -> bool:
        """True for a registered provider that neither the stack nor the parameter disabled."""
        if name not in PROVIDER_TYPES or name in self._settings.disabled_providers:
            return False
        return name not in set(self.config.disabled)

    def concurrency(self, name: str) -> int:
        """How many calls to ``name`` may be in flight at once (the rest wait in the queue)."""
        return self.config.concurrency.get(name, DEFAULT_CONCURRENCY)

    def breaker(self, name: str) -> BreakerConfig:
        """The circuit breaker thresholds configured for ``name`` (unset fields: None)."""
        return self.config.breaker.get(name) or BreakerConfig()

    def price(self, name: str) -> PriceTable | None:
        """The configured price table of ``name``."""
        return self.config.prices.get(name)

    def estimate(self, name: str, request: ImageRequest, plan: SizePlan | None) -> float | None:
        """The cost estimate of ``request`` at ``name``; None without a price table."""
        table = self.price(name)
        return None if table is None else table.estimate(request, plan)


def _tier_of(size: tuple[int, int]) -> Tier:
    long_edge = max(size)
    return "1K" if long_edge <= 1536 else "2K" if long_edge <= 2048 else "4K"
