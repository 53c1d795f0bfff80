"""Provider selection: which providers to try for a request, in order, and why not others.

Capability and size checks run here, before anything is written or spent. The providers able
to make the request are then ranked by the routing policy (``health.ranking``: the request's,
else the client's, else the stack's, else ``order``), within the caller's ``provider`` /
``providers`` when given; the breaker has the last word (providers it would refuse go last).
The decision, with the ranking it saw and whether the task hedges, is stored on the task
(``routing`` of its view).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast, get_args

from aws_lambda_powertools import Logger

from image_gateway.errors import Unprocessable
from image_gateway.health.breaker import usable as breaker_usable
from image_gateway.health.circuit import Circuit
from image_gateway.health.ranking import MEASURED_POLICIES, Contender, Ranked, explores, rank
from image_gateway.limits.ports import LimitOverrides
from image_gateway.models.request import ImageRequest, RoutingPolicy
from image_gateway.models.routing import PolicySource, RankingRow, RoutingDecision
from image_gateway.ports import Dependencies
from image_gateway.providers.base import Provider, SizePlan
from image_gateway.providers.sizes import requested_label
from image_gateway.service.health import measured, order_by_health, read_circuits

logger = Logger(child=True)


@dataclass(frozen=True)
class Candidate:
    """A provider that can honour the request, and how it will make the size."""

    provider: Provider
    plan: SizePlan


@dataclass(frozen=True)
class Route:
    """The providers to try, in order, and the decision that ordered them."""

    candidates: list[Candidate]
    decision: RoutingDecision


def candidate_providers(deps: Dependencies, request: ImageRequest) -> list[Candidate]:
    """The providers to try, in order (``route`` without a client or a task)."""
    return route(deps, request).candidates


def route(
    deps: Dependencies,
    request: ImageRequest,
    *,
    client_id: str | None = None,
    token: str = "",
    client: Callable[[], LimitOverrides] | None = None,
) -> Route:
    """The providers to try, in order: enabled, able to honour the request, ranked by the
    routing policy, those whose circuit breaker is open last (by the end of their cool-down,
    so none is ever dropped); ``token`` (the task id) decides exploration.

    A pinned provider or the caller's list, else the configured default order. When no provider
    qualifies, the 422 names every provider's reason (and, for sizes, what each one supports);
    when ``max_price_usd`` leaves none, 422 ``price_limit_exceeded`` names the cheapest.
    ``client``: the client's limits item, read at most once (:func:`client_limits_once`), when
    the caller reads it too.
    """
    names = [request.provider] if request.provider else request.providers or deps.directory.order()
    usable, refusals, disabled = qualify(deps, names, request)
    if usable:
        client = client or client_limits_once(deps, client_id)
        return _ranked(
            deps, request, usable, refusals, client_id=client_id, token=token, client=client
        )
    if len(refusals) == 1 and not disabled:
        raise refusals[0]
    if refusals:
        fields = {r.details.get("field") for r in refusals}
        field = fields.pop() if len(fields) == 1 else None
        sized = field in SIZE_FIELDS and all("supported" in r.details for r in refusals)
        reasons = (
            size_reasons(requested_label(request), refusals)
            if sized
            else "no enabled provider can honour this request: "
            + "; ".join(r.message for r in refusals)
        )
        raise Unprocessable(
            reasons + (f" (disabled: {', '.join(disabled)})" if disabled else ""),
            code="no_provider_can_honour",
            **({"field": field} if field else {}),
            refusals=[{"message": r.message, **r.details} for r in refusals],
        )
    raise Unprocessable(
        f"none of the providers {', '.join(names)} is enabled in this stack",
        code="no_provider_available",
    )


def routing_policy(
    deps: Dependencies,
    request: ImageRequest,
    client_id: str | None,
    *,
    client: Callable[[], LimitOverrides] | None = None,
) -> tuple[RoutingPolicy, PolicySource]:
    """The policy in force: the request's, else the client's (its limits item, read by
    ``client`` when given), else the stack's (the providers parameter), else ``order``."""
    if request.routing_policy is not None:
        return request.routing_policy, "request"
    if client_id is not None:
        chosen = (client or (lambda: deps.usage.overrides(client_id)))().routing
        if chosen in get_args(RoutingPolicy):
            return cast(RoutingPolicy, chosen), "client"
        if chosen is not None:  # an operator's typo must not refuse the client's requests
            logger.warning("unknown routing policy in a client's limits", extra={"policy": chosen})
    stack = deps.directory.config.routing
    return (stack, "stack") if stack is not None else ("order", "default")


def hedging(
    deps: Dependencies,
    request: ImageRequest,
    client_id: str | None,
    *,
    client: Callable[[], LimitOverrides] | None = None,
) -> bool:
    """Whether the task hedges (``health.hedging``): the request's ``hedge``, else its
    client's (its limits item, read by ``client`` when given), else not."""
    if request.hedge is not None:
        return request.hedge
    if client_id is None:
        return False
    return (client or (lambda: deps.usage.overrides(client_id)))().hedge is True


def client_limits_once(deps: Dependencies, client_id: str | None) -> Callable[[], LimitOverrides]:
    """The client's limits item, read at most once (a submit's policy, hedging and limits may
    all need it: one GetItem, not three)."""
    read: list[LimitOverrides] = []

    def get() -> LimitOverrides:
        if not read:
            read.append(deps.usage.overrides(client_id) if client_id else LimitOverrides())
        return read[0]

    return get


def _ranked(
    deps: Dependencies,
    request: ImageRequest,
    usable: list[Candidate],
    refusals: list[Unprocessable],
    *,
    client_id: str | None,
    token: str,
    client: Callable[[], LimitOverrides],
) -> Route:
    policy, source = routing_policy(deps, request, client_id, client=client)
    reads = policy in MEASURED_POLICIES or request.max_seconds is not None
    contenders = [
        Contender(
            c.provider.name,
            deps.directory.estimate(c.provider.name, request, c.plan),
            measured(deps, c.provider.name, operation=request.operation, tier=request.tier())
            if reads
            else None,
        )
        for c in usable
    ]
    ranked = rank(
        policy,
        contenders,
        max_price_usd=request.max_price_usd,
        max_seconds=request.max_seconds,
        explore=reads and explores(token),
    )
    kept = [r.contender.name for r in ranked if r.skipped is None]
    if not kept:
        raise _over_price(request, contenders)
    circuits: dict[str, Circuit] = read_circuits(deps) if len(kept) > 1 else {}
    ordered = order_by_health(deps, kept, circuits)  # the breaker wins over every policy
    now = deps.health.now()
    held_back = {n for n in kept if not breaker_usable(circuits.get(n) or Circuit(n), now)}
    by_name = {c.provider.name: c for c in usable}
    rows = {r.contender.name: _row(r, reads, n in held_back) for n, r in _named(ranked)}
    decision = RoutingDecision(
        policy=policy,
        chosen_by=source,
        hedge=hedging(deps, request, client_id, client=client),
        max_price_usd=request.max_price_usd,
        max_seconds=request.max_seconds,
        ranking=[rows[n] for n in ordered]
        + [rows[r.contender.name] for r in ranked if r.skipped is not None]
        + [
            RankingRow(provider=str(r.details.get("provider")), skipped=r.message) for r in refusals
        ],
    )
    return Route([by_name[n] for n in ordered], decision)


def _named(ranked: list[Ranked]) -> list[tuple[str, Ranked]]:
    return [(r.contender.name, r) for r in ranked]


def _row(ranked: Ranked, reads: bool, held_back: bool) -> RankingRow:
    contender, figures = ranked.contender, ranked.contender.figures
    note = "breaker open: tried after the usable ones" if held_back else ranked.note
    return RankingRow(
        provider=contender.name,
        price_usd=contender.price,
        latency_p50_seconds=figures.latency_p50_seconds if figures else None,
        latency_p90_seconds=figures.latency_p90_seconds if figures else None,
        success_rate=figures.success_rate if figures else None,
        samples=figures.samples if figures and reads else None,
        skipped=ranked.skipped,
        note=note,
    )


def _over_price(request: ImageRequest, contenders: list[Contender]) -> Unprocessable:
    priced = [c for c in contenders if c.price is not None]
    limit = f"{request.max_price_usd:g}"
    if not priced:
        return Unprocessable(
            f"no provider able to make this request has a price configured, so none can be "
            f"held to max_price_usd {limit}: drop max_price_usd, or ask the operator for prices",
            code="price_limit_exceeded",
            field="routing.max_price_usd",
        )
    cheapest = min(priced, key=lambda c: c.price or 0.0)
    return Unprocessable(
        f"no provider makes this request for max_price_usd {limit}: the cheapest is "
        f"{cheapest.name} at {cheapest.price:g} USD",
        code="price_limit_exceeded",
        field="max_price_usd",
        cheapest={"provider": cheapest.name, "price_usd": cheapest.price},
    )


def qualify(
    deps: Dependencies, names: list[str], request: ImageRequest
) -> tuple[list[Candidate], list[Unprocessable], list[str]]:
    """Split ``names`` into usable candidates (in order), refusals, and disabled providers."""
    usable: list[Candidate] = []
    refusals: list[Unprocessable] = []
    disabled: list[str] = []
    for name in names:
        provider = deps.directory.provider(name)  # 400 for an unknown name
        if not deps.directory.enabled(name):
            disabled.append(name)
            continue
        try:
            usable.append(Candidate(provider, provider.check(request)))
        except Unprocessable as refusal:
            refusals.append(refusal)
    return usable, refusals, disabled


SIZE_FIELDS = frozenset({"size", "aspect_ratio"})
"""The fields of a size refusal (``Provider.check``)."""
SIZES_NAMED = 8
"""Sizes a refusal names at most; ``refusals`` keeps every provider's full list."""
_PIXEL_SIZE = re.compile(r"^\d+x\d+$")


def size_reasons(requested: str, refusals: list[Unprocessable]) -> str:
    """A short reason for a size no provider makes: the sizes most providers make (an ``auto``
    or aspect ratio + resolution alternative), and the ``nearest`` policy. Every provider's
    own list stays in the refusal's ``refusals``."""
    makers: dict[str, list[str]] = {}
    ratios: list[str] = []
    for refusal in refusals:
        provider = str(refusal.details.get("provider"))
        for entry in refusal.details["supported"]:
            if _PIXEL_SIZE.match(entry):
                makers.setdefault(entry, []).append(provider)
            elif entry.startswith("aspect_ratio") and provider not in ratios:
                ratios.append(provider)
    common = sorted(makers, key=lambda size: (-len(makers[size]), makers[size][0]))
    named = ", ".join(f"{size} ({len(makers[size])})" for size in common[:SIZES_NAMED])
    more = f" and {len(common) - SIZES_NAMED} more" if len(common) > SIZES_NAMED else ""
    ratio = f"; aspect_ratio + resolution (1K/2K/4K) at {_names(ratios)}" if ratios else ""
    return (
        f"no enabled provider makes size {requested} exactly. Sizes that work (providers that make "
        f"them): {named or 'none'}{more}{ratio}; size 'auto' everywhere. Or send "
        "size_policy='nearest' for each provider's nearest size (every provider's list: "
        "refusals)"
    )


def _names(providers: list[str]) -> str:
    return ", ".join(providers[:4]) + (
        f" and {len(providers) - 4} more" if len(providers) > 4 else ""
    )
