"""What ``GET /v1/providers`` returns: each provider's capabilities, price, health and measured
figures.

Apart from ``models.views`` (the task views): a webhook delivery renders a task view at its first
event, and the health and measured models these import (with ``health.breaker`` and
``health.measure``) are no part of it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from image_gateway.models.circuits import ProviderHealthView
from image_gateway.models.measured import MeasuredView


class ProviderView(BaseModel):
    """One row of ``GET /v1/providers``."""

    name: str
    enabled: bool
    default_rank: int | None = Field(description="its place in the default order (1 = first)")
    capabilities: dict[str, Any] = Field(
        description="modes, callback, batch_poll, max_images, mask, backgrounds, "
        "output_formats, output_compression, sizes"
    )
    price: dict[str, Any] | None = Field(
        description="USD per image by tier and quality (per_image) and its source, if configured"
    )
    health: ProviderHealthView = Field(
        default_factory=lambda: ProviderHealthView(state="closed"),
        description="its circuit breaker: state, until when it is open, recent success rate",
    )
    measured: MeasuredView | None = Field(
        default=None,
        description="latency and success measured over the rolling window (routing policies "
        "latency, reliability and balanced read these); None when nothing was measured",
    )


class ProviderList(BaseModel):
    """``GET /v1/providers``: every provider this gateway knows, and the default order."""

    default_order: list[str]
    providers: list[ProviderView]
