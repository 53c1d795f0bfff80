"""``GET /v1/providers``: every provider this gateway knows, as the stack and its operator set it
up and as its calls went.

Imported by the route when it is called: a submit needs none of the health and measured views
(the circuits, the measured figures and their models), so the API's cold start does not carry
them.
"""

from __future__ import annotations

from image_gateway.health.circuit import Circuit
from image_gateway.health.measure import Bucket, Measured, summarise
from image_gateway.models.circuits import ProviderHealthView
from image_gateway.models.measured import MeasuredFigures, MeasuredTier, MeasuredView
from image_gateway.models.provider_views import ProviderList, ProviderView
from image_gateway.models.request import Operation, Resolution
from image_gateway.ports import Dependencies
from image_gateway.providers.registry import PROVIDER_TYPES
from image_gateway.service.health import measured_by_tier, read_circuits


def provider_list(deps: Dependencies) -> ProviderList:
    """Enabled or not, default order, capabilities, prices, each circuit breaker's state and
    recent success rate, and what each provider's calls measured (one query each)."""
    directory = deps.directory
    order = directory.order()
    circuits, now = read_circuits(deps), deps.health.now()
    rows = []
    for name in PROVIDER_TYPES:
        price = directory.price(name)
        figures, buckets = measured_by_tier(deps, name)
        rows.append(
            ProviderView(
                name=name,
                enabled=directory.enabled(name),
                default_rank=order.index(name) + 1 if name in order else None,
                capabilities=directory.provider(name).capabilities.describe(),
                price=None if price is None else price.model_dump(),
                health=ProviderHealthView.of(circuits.get(name) or Circuit(name), now),
                measured=_measured_view(figures, buckets),
            )
        )
    return ProviderList(default_order=order, providers=rows)


def _measured_view(figures: Measured, buckets: list[Bucket]) -> MeasuredView | None:
    if not figures.samples:
        return None
    tiers: dict[tuple[Operation, Resolution], list[Bucket]] = {}
    for bucket in buckets:
        tiers.setdefault((bucket.operation, bucket.tier), []).append(bucket)
    by_tier = [
        MeasuredTier(operation=op, tier=tier, **MeasuredFigures.of(summarise(group)).model_dump())
        for (op, tier), group in sorted(tiers.items())
    ]
    return MeasuredView(**MeasuredFigures.of(figures).model_dump(), by_tier=by_tier)
