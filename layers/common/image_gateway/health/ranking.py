"""Routing policies: pure rules that rank the providers able to make a request by configured
price and measured latency and success (``health.measure``). The breaker still has the last
word: ``service.routing`` puts providers it would refuse last, whatever their rank.

- ``order``: the caller's list, else the stack's order (the default).
- ``price``: cheapest for the request's tier and quality (price tables); unpriced ones last.
- ``latency``: lowest measured p50, p90 breaking ties.
- ``reliability``: highest measured success rate, p50 breaking ties.
- ``balanced``: the cheapest among the *good enough*: a success rate of at least
  ``BALANCED_MIN_SUCCESS`` and a p50 within ``BALANCED_SLOWER`` times the fastest good one's;
  the others after them, fastest first.
- ``max_price_usd``: a provider whose price is over it, or unknown, is skipped (never a
  fallback either). ``max_seconds``: providers whose p90 is over it go after the others.

**Exploration.** A provider with fewer than ``MIN_SAMPLES`` samples in the window is
*unmeasured*; the measured policies (latency, reliability, balanced) rank unmeasured providers
after the measured ones, except for one task in ``EXPLORE_ONE_IN`` (chosen by a hash of its
id, so retries agree), which tries the least sampled unmeasured provider first. New and
recovered providers so get measured at a bounded cost (10% of the tasks while any is
unmeasured); when none is measured, the order stands.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from image_gateway.health.measure import Measured
from image_gateway.models.request import RoutingPolicy

MIN_SAMPLES = 5
"""Samples in the window below which a provider is explored rather than ranked by measure."""
EXPLORE_ONE_IN = 10
"""One task in this many explores an unmeasured provider (while any is unmeasured)."""
BALANCED_MIN_SUCCESS = 0.9
"""``balanced``: the success rate a provider needs to be good enough."""
BALANCED_SLOWER = 2.0
"""``balanced``: how many times the fastest good provider's p50 is still fast enough."""
MEASURED_POLICIES: frozenset[RoutingPolicy] = frozenset({"latency", "reliability", "balanced"})
"""The policies that read measurements."""


@dataclass(frozen=True)
class Contender:
    """A provider able to make the request: its price for it and what it measured."""

    name: str
    price: float | None
    figures: Measured | None = None


@dataclass(frozen=True)
class Ranked:
    """One row of a ranking: the contender, and why it was skipped or moved (if it was)."""

    contender: Contender
    skipped: str | None = None
    note: str | None = None


def explores(token: str) -> bool:
    """Whether the task with this id is one of the ``1 / EXPLORE_ONE_IN`` that explore."""
    digest = hashlib.sha256(token.encode()).digest()
    return int.from_bytes(digest[:4], "big") % EXPLORE_ONE_IN == 0


def is_measured(contender: Contender) -> bool:
    """Enough samples in the window to be ranked by them."""
    figures = contender.figures
    return figures is not None and figures.samples >= MIN_SAMPLES


def rank(
    policy: RoutingPolicy,
    contenders: list[Contender],
    *,
    max_price_usd: float | None = None,
    max_seconds: float | None = None,
    explore: bool = False,
) -> list[Ranked]:
    """The contenders in the policy's order, those skipped (``max_price_usd``) at the end."""
    kept: list[Contender] = []
    skipped: list[Ranked] = []
    for contender in contenders:
        reason = _over_price(contender, max_price_usd)
        if reason is None:
            kept.append(contender)
        else:
            skipped.append(Ranked(contender, skipped=reason))
    ordered, notes = _ordered(policy, kept, explore)
    if max_seconds is not None:
        slow = {c.name for c in ordered if (_p90(c) or 0.0) > max_seconds}
        for name in slow:
            notes[name] = f"measured p90 over max_seconds ({max_seconds:g} s)"
        ordered = [c for c in ordered if c.name not in slow] + [
            c for c in ordered if c.name in slow
        ]
    return [Ranked(c, note=notes.get(c.name)) for c in ordered] + skipped


def _over_price(contender: Contender, max_price_usd: float | None) -> str | None:
    if max_price_usd is None:
        return None
    if contender.price is None:
        return "no price configured: max_price_usd cannot be checked"
    if contender.price > max_price_usd + 1e-9:
        return f"price {contender.price:g} USD over max_price_usd ({max_price_usd:g})"
    return None


def _ordered(
    policy: RoutingPolicy, kept: list[Contender], explore: bool
) -> tuple[list[Contender], dict[str, str]]:
    position = {c.name: i for i, c in enumerate(kept)}
    if policy == "order":
        return list(kept), {}
    if policy == "price":
        by_price = sorted(kept, key=lambda c: (c.price is None, c.price or 0.0, position[c.name]))
        return by_price, {c.name: "no price configured" for c in kept if c.price is None}
    measured = [c for c in kept if is_measured(c)]
    unmeasured = [c for c in kept if not is_measured(c)]
    notes = {c.name: f"unmeasured (fewer than {MIN_SAMPLES} samples)" for c in unmeasured}
    if not measured:
        return list(kept), notes
    if policy == "latency":
        measured.sort(key=lambda c: (_p50(c), _p90(c) or math.inf, position[c.name]))
    elif policy == "reliability":
        measured.sort(key=lambda c: (-_success(c), _p50(c), position[c.name]))
    else:
        measured = _balanced(measured, position, notes)
    if explore and unmeasured:
        first = min(unmeasured, key=lambda c: (_samples(c), position[c.name]))
        notes[first.name] = "explored: unmeasured, tried first by one task in " + str(
            EXPLORE_ONE_IN
        )
        return [first, *measured, *(c for c in unmeasured if c is not first)], notes
    return measured + unmeasured, notes


def _balanced(
    measured: list[Contender], position: dict[str, int], notes: dict[str, str]
) -> list[Contender]:
    reliable = [c for c in measured if _success(c) >= BALANCED_MIN_SUCCESS]
    fastest = min((_p50(c) for c in reliable), default=math.inf)
    good = [c for c in reliable if _p50(c) <= fastest * BALANCED_SLOWER]
    good.sort(key=lambda c: (c.price is None, c.price or 0.0, _p50(c), position[c.name]))
    rest = [c for c in measured if c not in good]
    rest.sort(key=lambda c: (_p50(c), position[c.name]))
    for c in rest:
        notes[c.name] = (
            f"success rate under {BALANCED_MIN_SUCCESS:g}"
            if _success(c) < BALANCED_MIN_SUCCESS
            else f"p50 over {BALANCED_SLOWER:g}x the fastest good provider's"
        )
    return good + rest


def _p50(c: Contender) -> float:
    value = c.figures.latency_p50_seconds if c.figures else None
    return math.inf if value is None else value


def _p90(c: Contender) -> float | None:
    return c.figures.latency_p90_seconds if c.figures else None


def _success(c: Contender) -> float:
    value = c.figures.success_rate if c.figures else None
    return 0.0 if value is None else value


def _samples(c: Contender) -> int:
    return c.figures.samples if c.figures else 0
