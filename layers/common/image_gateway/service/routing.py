"""Provider selection: which providers to try for a request, in which order, and why not others.

Capability and size checks run here, before anything is written or spent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from image_gateway.errors import Unprocessable
from image_gateway.models.request import ImageRequest
from image_gateway.ports import Dependencies
from image_gateway.providers.base import Provider, SizePlan
from image_gateway.providers.sizes import requested_label
from image_gateway.service.health import order_by_health


@dataclass(frozen=True)
class Candidate:
    """A provider that can honour the request, and how it will make the size."""

    provider: Provider
    plan: SizePlan


def candidate_providers(deps: Dependencies, request: ImageRequest) -> list[Candidate]:
    """The providers to try, in order: enabled, and able to honour the request, those whose
    circuit breaker is open last (by the end of their cool-down, so none is ever dropped).

    A pinned provider or the caller's list, else the configured default order. When no provider
    qualifies, the 422 names every provider's reason (and, for sizes, what each one supports).
    """
    names = [request.provider] if request.provider else request.providers or deps.directory.order()
    usable, refusals, disabled = qualify(deps, names, request)
    if usable:  # those whose circuit breaker lets a call through first (one read)
        by_name = {c.provider.name: c for c in usable}
        return [by_name[n] for n in order_by_health(deps, list(by_name))]
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
