"""A task's routing decision as it is stored and shown (``routing`` of ``GET /v1/tasks/{id}``):
which policy chose its provider, from where, and the ranking it saw."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from image_gateway.models.request import RoutingPolicy

PolicySource = Literal["request", "client", "stack", "default"]
"""Where the policy came from: the request wins, then the client's limits, then the stack."""


class RankingRow(BaseModel):
    """One provider as routing saw it for this request."""

    model_config = ConfigDict(frozen=True)

    provider: str
    price_usd: float | None = Field(default=None, description="its price for this request")
    latency_p50_seconds: float | None = Field(
        default=None, description="measured for this operation and tier (policies that read it)"
    )
    latency_p90_seconds: float | None = None
    success_rate: float | None = None
    samples: int | None = Field(
        default=None, description="in the window; None when the policy read no measurements"
    )
    skipped: str | None = Field(
        default=None, description="why it was never to be used (cannot honour, max_price_usd)"
    )
    note: str | None = Field(
        default=None, description="why it was moved (unmeasured, explored, breaker open, slow)"
    )


class RoutingDecision(BaseModel):
    """How a task's providers were chosen and ordered (the first one is where it went)."""

    model_config = ConfigDict(frozen=True)

    policy: RoutingPolicy
    chosen_by: PolicySource = Field(description="request, client, stack, or default (order)")
    max_price_usd: float | None = None
    max_seconds: float | None = None
    ranking: list[RankingRow] = Field(
        description="the usable providers in the order they are tried, then those skipped"
    )
