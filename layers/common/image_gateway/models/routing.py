"""A task's routing decision as it is stored and shown (``routing`` of ``GET /v1/tasks/{id}``):
which policy chose its provider, from where, and the ranking it saw; and what a request may ask
of routing (``Routing``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, WithJsonSchema

RoutingPolicy = Literal["order", "price", "latency", "reliability", "balanced"]
"""How the providers a request may use are ranked (docs/routing.md)."""

PolicySource = Literal["request", "client", "stack", "default"]
"""Where the policy came from: the request wins, then the client's limits, then the stack."""


class Routing(BaseModel):
    """A routing policy with bounds (``routing`` of a request, as an object)."""

    model_config = ConfigDict(extra="forbid")

    policy: RoutingPolicy | None = Field(
        default=None, description="the policy; default: the client's, the stack's, or order"
    )
    max_price_usd: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="a provider whose price for this request is higher (or unknown) is never "
        "used, not even as a fallback; 422 price_limit_exceeded naming the cheapest if none fits",
    )
    max_seconds: float | None = Field(
        default=None,
        gt=0,
        le=86400,
        description="providers whose measured p90 time to done is within this go first",
    )


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
    hedge: bool = Field(
        default=False,
        description="whether the next provider is started too when the first has not finished "
        "by its measured p90 (the request's hedge, else the client's)",
    )
    ranking: list[RankingRow] = Field(
        description="the usable providers in the order they are tried, then those skipped"
    )


def _given_is_a_boolean(value: object) -> object:
    if value is None:  # only an explicit null reaches this (omitted is the default)
        raise ValueError("hedge must be true or false; omit it for the client's default")
    return value


Hedge = Annotated[
    StrictBool | None,
    BeforeValidator(_given_is_a_boolean),
    # The document says boolean, not boolean-or-null (schemathesis cannot draw the negation of
    # that union, and a null is refused); 0, 1 or "true" are refused too (strict).
    WithJsonSchema(
        {
            "type": "boolean",
            "title": "Hedge",
            "description": "start the next provider too when the first has not finished by "
            "its measured p90 (docs/routing.md); the first image stored wins, the other's price "
            "is added to the cost; default: the client's, else off",
        }
    ),
]
"""A request's ``hedge``: true or false when given, None when omitted."""
