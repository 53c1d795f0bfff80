"""Provider selection: which providers to try for a request, in which order, and why not others.

Capability and size checks run here, before anything is written or spent.
"""

from __future__ import annotations

from dataclasses import dataclass

from image_gateway.errors import Unprocessable
from image_gateway.models.request import ImageRequest
from image_gateway.ports import Dependencies
from image_gateway.providers.base import Provider, SizePlan
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
        reasons = "; ".join(r.message for r in refusals)
        raise Unprocessable(
            f"no enabled provider can honour this request: {reasons}"
            + (f" (disabled: {', '.join(disabled)})" if disabled else ""),
            code="no_provider_can_honour",
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
