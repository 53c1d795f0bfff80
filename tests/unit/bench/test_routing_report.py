"""The routing figure's rows: latency against the faster provider (with its target), price
against order, hedging's p90 and cost."""

from __future__ import annotations

from typing import Any

from bench.report import routing_rows


def _spread(median: float, p90: float | None = None) -> dict[str, float]:
    spread = {"median": median, "p25": median, "p75": median, "min": median, "max": median}
    return {**spread, "n": 1, **({"p90": p90} if p90 is not None else {})}


def _routing(*, latency_s: float) -> dict[str, Any]:
    return {
        "tasks": 40,
        "latency": {
            "order_seconds": _spread(3.2),
            "latency_seconds": _spread(latency_s),
            "faster_provider_seconds": _spread(2.0),
            "ratio_latency_to_faster": latency_s / 2.0,
            "target_ratio": 1.3,
            "met": latency_s / 2.0 <= 1.3,
        },
        "price": {"order_usd": 1.0, "price_usd": 0.5, "ratio_price_to_order": 0.5},
        "hedging": {
            "hedged_seconds": _spread(2.0, p90=3.0),
            "unhedged_seconds": _spread(6.0, p90=6.5),
            "p90_cut": 1 - 3.0 / 6.5,
            "hedged_usd": 1.5,
            "unhedged_usd": 1.0,
            "extra_cost": 0.5,
            "hedges_started": 30,
            "hedges_won": 28,
        },
    }


def test_latency_within_its_target_is_met() -> None:
    # Given latency routing at 2.4 s against the faster provider's 2.0 s When reported
    latency, price, p90, cost = routing_rows(_routing(latency_s=2.4))

    # Then 1.20x, met; price at half of order; hedging's p90 and its cost as ratios
    assert (latency[3], latency[4], latency[5]) == ("1.20x", "<= 1.3x", "met")
    assert price[3] == "0.50x"
    assert p90[1:4] == ("3.0 s", "unhedged 6.5 s", "0.46x")
    assert "28 of 30 hedges won" in p90[0]
    assert cost[3] == "1.50x"


def test_latency_over_its_target_is_missed() -> None:
    # Given latency routing at 3.0 s against 2.0 s When reported Then missed
    (latency, *_) = routing_rows(_routing(latency_s=3.0))

    assert (latency[3], latency[5]) == ("1.50x", "**missed**")


def test_no_routing_figure_makes_no_rows() -> None:
    assert routing_rows(None) == []
