"""Routing policies on fakes: price, latency, reliability and balanced rankings, exploration of
unmeasured providers, max_price_usd and max_seconds, where the policy comes from, the breaker's
precedence over every policy, and the decision recorded on the task."""

from __future__ import annotations

from typing import Any

import pytest
from image_gateway.errors import Unprocessable
from image_gateway.health.circuit import Circuit, CircuitState
from image_gateway.health.measure import Sample
from image_gateway.health.ranking import EXPLORE_ONE_IN, MIN_SAMPLES, explores
from image_gateway.models.request import Operation
from image_gateway.service.routing import route
from image_gateway.service.submit import submit_task

from tests.fakes import FakeDependencies
from tests.unit.service.support import fox

THREE = ["apimart", "mountsea-async", "mountsea-compat"]
PRICES = {  # USD per 1K image at medium (auto quality reads medium)
    "apimart": {"per_image": {"1K": {"medium": 0.04}}},
    "mountsea-async": {"per_image": {"1K": {"medium": 0.02}}},
    "mountsea-compat": {"per_image": {"1K": {"medium": 0.03}}},
}
STAYS = next(f"tsk_{i}" for i in range(1000) if not explores(f"tsk_{i}"))
EXPLORES = next(f"tsk_{i}" for i in range(1000) if explores(f"tsk_{i}"))


def measure(
    deps: FakeDependencies, provider: str, seconds: float, *, ok: int = 10, failed: int = 0
) -> None:
    """``ok`` images of ``seconds`` each and ``failed`` failures at ``provider`` (1K generate)."""
    now = deps.health.now()
    for _ in range(ok):
        deps.health.measurements.add(Sample(provider, Operation.GENERATE, "1K", now, True, seconds))
    for _ in range(failed):
        deps.health.measurements.add(Sample(provider, Operation.GENERATE, "1K", now, False))


def order(
    deps: FakeDependencies, token: str = STAYS, client: str | None = None, **fields: Any
) -> list[str]:
    request = fox(**{"providers": THREE, **fields})
    routed = route(deps, request, client_id=client, token=token)
    return [c.provider.name for c in routed.candidates]


# -- the policies ----------------------------------------------------------------------------------
def test_order_keeps_the_callers_order_and_reads_no_measurements(deps: FakeDependencies) -> None:
    # GIVEN mountsea-async measured fastest WHEN routed without a policy THEN the list's order
    measure(deps, "mountsea-async", 0.3)

    assert order(deps) == THREE


def test_price_puts_five_of_five_tasks_on_the_cheapest(deps: FakeDependencies) -> None:
    # GIVEN a price for every provider WHEN five tasks are submitted with routing price
    deps.configure(prices=PRICES)
    tasks = [submit_task(deps, fox(routing="price"), client_id="c").task for _ in range(5)]

    # THEN all five went to the cheapest, the next cheapest as their fallback
    assert [t.provider for t in tasks] == ["mountsea-async"] * 5
    assert all(t.fallbacks == ["mountsea-compat", "apimart"] for t in tasks)


def test_price_puts_providers_without_a_price_last(deps: FakeDependencies) -> None:
    # GIVEN only apimart unpriced WHEN routed by price THEN it is tried last
    deps.configure(prices={k: v for k, v in PRICES.items() if k != "apimart"})

    assert order(deps, routing="price") == ["mountsea-async", "mountsea-compat", "apimart"]


def test_latency_takes_the_lowest_p50(deps: FakeDependencies) -> None:
    # GIVEN apimart at 3 s, mountsea-async at 0.3 s, mountsea-compat at 1 s
    measure(deps, "apimart", 3.0)
    measure(deps, "mountsea-async", 0.3)
    measure(deps, "mountsea-compat", 1.0)

    assert order(deps, routing="latency") == ["mountsea-async", "mountsea-compat", "apimart"]


def test_latency_ties_on_p50_are_broken_by_p90(deps: FakeDependencies) -> None:
    # GIVEN equal medians, apimart with a slow tail WHEN routed by latency THEN the other first
    measure(deps, "apimart", 1.0, ok=6)
    measure(deps, "apimart", 30.0, ok=4)
    measure(deps, "mountsea-async", 1.0, ok=6)
    measure(deps, "mountsea-async", 2.0, ok=4)

    chosen = order(deps, routing="latency", providers=["apimart", "mountsea-async"])

    assert chosen == ["mountsea-async", "apimart"]


def test_reliability_takes_the_highest_success_rate(deps: FakeDependencies) -> None:
    # GIVEN the fastest failing one call in two WHEN routed by reliability
    measure(deps, "mountsea-async", 0.3, ok=5, failed=5)
    measure(deps, "apimart", 3.0, ok=10)
    measure(deps, "mountsea-compat", 1.0, ok=9, failed=1)

    assert order(deps, routing="reliability") == ["apimart", "mountsea-compat", "mountsea-async"]


def test_balanced_takes_the_cheapest_of_the_reliable_and_fast_enough(
    deps: FakeDependencies,
) -> None:
    # GIVEN apimart dearest and fastest, mountsea-compat cheaper and within 2x its p50,
    # mountsea-async cheapest but slow
    deps.configure(prices=PRICES)
    measure(deps, "apimart", 1.0)
    measure(deps, "mountsea-compat", 1.8)
    measure(deps, "mountsea-async", 10.0)

    # WHEN routed balanced THEN the cheap-enough fast one first, the slow cheap one last
    assert order(deps, routing="balanced") == ["mountsea-compat", "apimart", "mountsea-async"]


def test_balanced_leaves_an_unreliable_provider_after_the_reliable(deps: FakeDependencies) -> None:
    # GIVEN the cheapest failing often WHEN routed balanced THEN it goes after the reliable
    deps.configure(prices=PRICES)
    measure(deps, "mountsea-async", 1.0, ok=5, failed=5)
    measure(deps, "mountsea-compat", 1.0)
    measure(deps, "apimart", 1.0)

    assert order(deps, routing="balanced")[-1] == "mountsea-async"


# -- exploration -----------------------------------------------------------------------------------
def test_an_unmeasured_provider_goes_after_the_measured_ones(deps: FakeDependencies) -> None:
    # GIVEN apimart with too few samples WHEN a task that does not explore is routed by latency
    measure(deps, "apimart", 0.1, ok=MIN_SAMPLES - 1)
    measure(deps, "mountsea-async", 3.0)
    measure(deps, "mountsea-compat", 1.0)

    # THEN apimart is tried last, however fast its few samples were
    assert order(deps, token=STAYS, routing="latency")[-1] == "apimart"


def test_one_task_in_ten_tries_the_least_sampled_unmeasured_provider_first(
    deps: FakeDependencies,
) -> None:
    # GIVEN apimart unmeasured WHEN a task chosen to explore is routed by latency
    measure(deps, "mountsea-async", 3.0)
    measure(deps, "mountsea-compat", 1.0)

    routed = route(deps, fox(providers=THREE, routing="latency"), token=EXPLORES)

    # THEN apimart first, and the ranking says why
    assert routed.candidates[0].provider.name == "apimart"
    assert "explored" in (routed.decision.ranking[0].note or "")


def test_about_one_task_id_in_ten_explores() -> None:
    # GIVEN 2000 task ids WHEN asked which explore THEN about a tenth (hash of the id)
    share = sum(explores(f"tsk_{i:05d}") for i in range(2000)) / 2000

    assert abs(share - 1 / EXPLORE_ONE_IN) < 0.03


# -- bounds ----------------------------------------------------------------------------------------
def test_max_price_leaves_out_a_provider_over_it_even_as_a_fallback(
    deps: FakeDependencies,
) -> None:
    # GIVEN apimart at 0.04 WHEN submitted in order with max_price_usd 0.035
    deps.configure(prices=PRICES)
    task = submit_task(
        deps, fox(providers=THREE, routing={"max_price_usd": 0.035}), client_id="c"
    ).task

    # THEN it is neither the provider nor a fallback, and the ranking says why
    assert [task.provider, *task.fallbacks] == ["mountsea-async", "mountsea-compat"]
    assert task.routing is not None
    skipped = {r.provider: r.skipped for r in task.routing.ranking if r.skipped}
    assert "over max_price_usd" in (skipped["apimart"] or "")


def test_max_price_with_no_provider_under_it_is_a_422_naming_the_cheapest(
    deps: FakeDependencies,
) -> None:
    # GIVEN every price over 0.01 WHEN routed with max_price_usd 0.01 THEN 422 names the cheapest
    deps.configure(prices=PRICES)

    with pytest.raises(Unprocessable) as refused:
        order(deps, routing={"max_price_usd": 0.01})

    assert refused.value.code == "price_limit_exceeded"
    assert "mountsea-async at 0.02 USD" in refused.value.message
    assert refused.value.details["cheapest"] == {"provider": "mountsea-async", "price_usd": 0.02}


def test_max_price_leaves_out_a_provider_without_a_price(deps: FakeDependencies) -> None:
    # GIVEN apimart unpriced WHEN routed with max_price_usd THEN it is never used
    deps.configure(prices={k: v for k, v in PRICES.items() if k != "apimart"})

    assert order(deps, routing={"max_price_usd": 1.0}) == ["mountsea-async", "mountsea-compat"]


def test_max_seconds_moves_providers_whose_p90_is_over_it_last(deps: FakeDependencies) -> None:
    # GIVEN apimart's p90 at 30 s WHEN routed in order with max_seconds 10 THEN apimart last
    measure(deps, "apimart", 30.0)
    measure(deps, "mountsea-async", 2.0)
    measure(deps, "mountsea-compat", 2.0)

    assert order(deps, routing={"max_seconds": 10}) == [
        "mountsea-async",
        "mountsea-compat",
        "apimart",
    ]


def test_a_policy_stays_within_the_callers_providers(deps: FakeDependencies) -> None:
    # GIVEN the cheapest not in the caller's list WHEN routed by price THEN never chosen
    deps.configure(prices=PRICES)

    assert order(deps, routing="price", providers=["apimart", "mountsea-compat"]) == [
        "mountsea-compat",
        "apimart",
    ]


# -- where the policy comes from -------------------------------------------------------------------
def test_the_stack_policy_applies_without_a_request_or_client_one(deps: FakeDependencies) -> None:
    deps.configure(prices=PRICES, routing="price")

    routed = route(deps, fox(providers=THREE), client_id="c", token=STAYS)

    assert (routed.decision.policy, routed.decision.chosen_by) == ("price", "stack")
    assert routed.candidates[0].provider.name == "mountsea-async"


def test_the_clients_policy_wins_over_the_stacks(deps: FakeDependencies) -> None:
    deps.configure(prices=PRICES, routing="price")
    deps.usage.set_limits("c", routing="order")

    routed = route(deps, fox(providers=THREE), client_id="c", token=STAYS)

    assert (routed.decision.policy, routed.decision.chosen_by) == ("order", "client")
    assert routed.candidates[0].provider.name == "apimart"


def test_the_requests_policy_wins_over_the_clients(deps: FakeDependencies) -> None:
    deps.configure(prices=PRICES)
    deps.usage.set_limits("c", routing="order")

    routed = route(deps, fox(providers=THREE, routing="price"), client_id="c", token=STAYS)

    assert (routed.decision.policy, routed.decision.chosen_by) == ("price", "request")


def test_an_unknown_client_policy_is_ignored_for_the_stacks(deps: FakeDependencies) -> None:
    deps.configure(prices=PRICES, routing="price")
    deps.usage.set_limits("c", routing="fastest")

    routed = route(deps, fox(providers=THREE), client_id="c", token=STAYS)

    assert (routed.decision.policy, routed.decision.chosen_by) == ("price", "stack")


# -- the breaker -----------------------------------------------------------------------------------
def test_the_breaker_wins_over_every_policy(deps: FakeDependencies) -> None:
    # GIVEN mountsea-async cheapest and fastest, but its breaker open
    deps.configure(prices=PRICES)
    measure(deps, "mountsea-async", 0.3)
    measure(deps, "apimart", 3.0)
    measure(deps, "mountsea-compat", 1.0)
    now = deps.health.now()
    opened = Circuit("mountsea-async", CircuitState.OPEN, open_until=now + 30, version=1)
    assert deps.health.circuits.put(opened, expires_at=now + 86400)

    # WHEN routed by each policy THEN mountsea-async is tried last every time
    for policy in ("order", "price", "latency", "reliability", "balanced"):
        routed = route(deps, fox(providers=THREE, routing=policy), token=STAYS)
        assert routed.candidates[-1].provider.name == "mountsea-async", policy
        assert "breaker open" in (routed.decision.ranking[-1].note or "")


# -- the explanation -------------------------------------------------------------------------------
def test_the_task_records_the_policy_and_the_ranking_it_saw(deps: FakeDependencies) -> None:
    # GIVEN prices and measurements WHEN a task is submitted by latency
    deps.configure(prices=PRICES)
    measure(deps, "apimart", 3.0)
    measure(deps, "mountsea-async", 0.3, ok=9, failed=1)
    measure(deps, "mountsea-compat", 1.0)
    task = submit_task(
        deps, fox(providers=THREE, routing="latency"), client_id="c", task_id=STAYS
    ).task

    # THEN its routing names the policy and each provider's price, p50 and success rate
    decision = task.routing
    assert decision is not None and (decision.policy, decision.chosen_by) == ("latency", "request")
    first = decision.ranking[0]
    assert (first.provider, first.price_usd, first.success_rate, first.samples) == (
        "mountsea-async",
        0.02,
        0.9,
        10,
    )
    assert first.latency_p50_seconds is not None and first.latency_p50_seconds <= 0.3
    assert [r.provider for r in decision.ranking] == [task.provider, *task.fallbacks]


def test_a_provider_that_cannot_honour_the_request_is_listed_as_skipped(
    deps: FakeDependencies,
) -> None:
    # GIVEN apimart refusing a transparent background WHEN routed THEN its reason is listed
    routed = route(deps, fox(providers=THREE, background="transparent"), token=STAYS)

    skipped = {r.provider: r.skipped for r in routed.decision.ranking if r.skipped}
    assert "apimart" in skipped and "background" in (skipped["apimart"] or "")
