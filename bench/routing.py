"""Figure 8: routing. What the routing policies and hedging buy, on devstack as a deployment runs
(every function in worker processes, schedules on, devstack's time scale: ``volume.parallel_stack``)
with the simulator's runtime profiles (``POST /_sim/profile``) changing a provider mid-run.

The pair is apimart (callbacks: the gateway sees its end at once) and mountsea-async (no
callbacks: its end is seen at a look of its poll loop, 1-3 s after it). Each phase starts from
no measurements (the providers' ``MEASURE#`` items deleted).

- **latency**: apimart starts fastest (1 s, mountsea-async 0.3 s but seen later by polling);
  ``n / 4`` tasks at each measure both. Then apimart's latency triples (3 s). ``n`` tasks under
  ``order`` (the list's order: apimart first, so all go there), then ``n`` under ``latency``.
  The baseline is the faster provider's own median: ``n / 4`` tasks pinned to mountsea-async
  after the change. Target: ``latency``'s median time to done at most 1.3x that.
- **price**: ``n`` tasks under ``order``, then ``n`` under ``price``, with a price for every
  provider (``PRICES``: apimodels' published 1K medium price, 0.025 USD, for apimart, and half of
  it for mountsea-async; the other resellers publish no price list). The figure is the sum of
  the tasks' ``cost_estimate_usd``.
- **hedging**: apimart measured at 1 s (``n / 4`` tasks), then slowed to 6 s, a change its
  measurements have not seen yet (a latency spike); ``n`` tasks with ``hedge: true``, then ``n``
  without, under ``order``. A hedged task's apimart attempt is superseded, and a superseded
  attempt is not measured, so apimart's p90 stays what it was through the hedged run (each task
  hedges after about 1-2 s); the unhedged run comes after it. The figures are the p90 time to
  done of each, and the cost of each (a hedge that started counts both prices).

Tasks run ``IN_FLIGHT`` at a time in a closed loop (the next submitted when one ended), so a
time to done is the providers' and the gateway's, not a 2-core machine's backlog.

Time to done is the task view's ``created_at`` to ``finished_at``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import httpx

from bench.stats import summary
from bench.volume import LIFTED_RATE, Stack, _Client, _seconds_to_done, _views

PAIR = ["apimart", "mountsea-async"]
FAST, SLOW = "mountsea-async", "apimart"
PARAMETER = "/imagegw-dev/providers"
PRICES = {
    "apimart": {"per_image": {"1K": {"medium": 0.025}}},
    "mountsea-async": {"per_image": {"1K": {"medium": 0.0125}}},
}
LATENCY_TARGET = 1.3
IN_FLIGHT = 4
"""Tasks in flight at once: devstack on this 2-core machine finishes about 2 tasks a second."""


def _profile(stack: Stack, provider: str, seconds: float) -> None:
    httpx.post(
        f"{stack.info.simulator_url}/_sim/profile",
        json={"provider": provider, "latency_seconds": seconds},
    ).raise_for_status()


def _forget(stack: Stack) -> None:
    """Delete both providers' measurement records: the phase measures from scratch."""
    for provider in PAIR:
        items = stack.ddb.query(
            TableName=stack.info.table_name,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": f"MEASURE#{provider}"}},
        )["Items"]
        for item in items:
            stack.ddb.delete_item(
                TableName=stack.info.table_name, Key={"pk": item["pk"], "sk": item["sk"]}
            )


def _run(
    stack: Stack, client: _Client, bodies: list[dict[str, Any]], timeout: float
) -> list[dict[str, Any]]:
    """Run the bodies ``IN_FLIGHT`` at a time, each submitted when one before it ended (a
    closed loop: the time to done is the providers' and the gateway's, not the backlog of a
    2-core machine); the ended tasks' documents, in order."""

    def one(body: dict[str, Any]) -> dict[str, Any]:
        with httpx.Client(
            base_url=stack.info.api_url,
            headers={"Authorization": f"Bearer {client.key}"},
            timeout=120,
        ) as http:
            answer = http.post("/v1/images", json=body)
        if answer.status_code != 202:
            raise RuntimeError(f"submit answered {answer.status_code}: {answer.text}")
        (doc,) = _views(stack, [str(answer.json()["task_id"])], timeout)
        return doc

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        return list(pool.map(one, bodies))


def _bodies(count: int, label: str, **fields: Any) -> list[dict[str, Any]]:
    return [{"prompt": f"{label} {i}", "quality": "medium", **fields} for i in range(count)]


def _times(docs: list[dict[str, Any]]) -> dict[str, float]:
    return summary([_seconds_to_done(d) for d in docs if d.get("finished_at")])


def _p90(docs: list[dict[str, Any]]) -> float:
    seconds = sorted(_seconds_to_done(d) for d in docs if d.get("finished_at"))
    return seconds[min(len(seconds) - 1, round(0.9 * (len(seconds) - 1)))]


def _cost(docs: list[dict[str, Any]]) -> float:
    return round(sum(d.get("cost_estimate_usd") or 0.0 for d in docs), 6)


def _providers(docs: list[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(str(d.get("provider")) for d in docs))


def _statuses(docs: list[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(str(d["status"]) for d in docs))


def run(stack: Stack, *, tasks: int, progress: Any) -> dict[str, Any]:
    """The three routing figures on ``stack`` with ``tasks`` tasks per measured run."""
    warm = max(5, tasks // 4)
    timeout = 300 + tasks * 2.0
    client = _Client(
        stack, "routing", requests_per_minute=LIFTED_RATE, max_running_tasks=max(100, 3 * tasks)
    )
    ssm = boto3.client("ssm")
    original = ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    document = {**json.loads(original), "prices": PRICES}
    ssm.put_parameter(Name=PARAMETER, Value=json.dumps(document), Type="String", Overwrite=True)
    time.sleep(60 * 0.02 + 1)  # the providers parameter's cache, at devstack's time scale
    try:
        return {
            "tasks": tasks,
            "latency": _latency(stack, client, tasks, warm, timeout, progress),
            "price": _price(stack, client, tasks, timeout, progress),
            "hedging": _hedging(stack, client, tasks, warm, timeout, progress),
        }
    finally:
        httpx.delete(f"{stack.info.simulator_url}/_sim/profile").raise_for_status()
        ssm.put_parameter(Name=PARAMETER, Value=original, Type="String", Overwrite=True)


def _latency(
    stack: Stack, client: _Client, tasks: int, warm: int, timeout: float, progress: Any
) -> dict[str, Any]:
    _forget(stack)
    _profile(stack, SLOW, 1.0)
    _profile(stack, FAST, 0.3)
    progress(f"  latency: {warm} tasks pinned to each provider, apimart at 1 s (fastest)")
    before = {
        p: _times(_run(stack, client, _bodies(warm, f"warm {p}", provider=p), timeout))
        for p in PAIR
    }
    _profile(stack, SLOW, 3.0)
    progress(f"  latency: apimart tripled (3 s); {tasks} tasks under order, then under latency")
    order = _run(stack, client, _bodies(tasks, "order", providers=PAIR), timeout)
    latency = _run(
        stack, client, _bodies(tasks, "latency", providers=PAIR, routing="latency"), timeout
    )
    progress(f"  latency: {warm} tasks pinned to {FAST}, its own median")
    faster = _times(_run(stack, client, _bodies(warm, "own", provider=FAST), timeout))
    ratio = _times(latency)["median"] / faster["median"]
    return {
        "before_change_seconds": before,
        "order_seconds": _times(order),
        "latency_seconds": _times(latency),
        "faster_provider_seconds": faster,
        "order_providers": _providers(order),
        "latency_providers": _providers(latency),
        "statuses": _statuses(order + latency),
        "ratio_latency_to_faster": ratio,
        "ratio_order_to_latency": _times(order)["median"] / _times(latency)["median"],
        "target_ratio": LATENCY_TARGET,
        "met": ratio <= LATENCY_TARGET,
    }


def _price(
    stack: Stack, client: _Client, tasks: int, timeout: float, progress: Any
) -> dict[str, Any]:
    _forget(stack)
    _profile(stack, SLOW, 1.0)
    _profile(stack, FAST, 0.3)
    progress(f"  price: {tasks} tasks under order, then under price")
    order = _run(stack, client, _bodies(tasks, "order", providers=PAIR), timeout)
    price = _run(stack, client, _bodies(tasks, "price", providers=PAIR, routing="price"), timeout)
    return {
        "prices": PRICES,
        "order_usd": _cost(order),
        "price_usd": _cost(price),
        "ratio_price_to_order": _cost(price) / _cost(order) if _cost(order) else None,
        "order_providers": _providers(order),
        "price_providers": _providers(price),
        "statuses": _statuses(order + price),
    }


def _hedging(
    stack: Stack, client: _Client, tasks: int, warm: int, timeout: float, progress: Any
) -> dict[str, Any]:
    _forget(stack)
    _profile(stack, SLOW, 1.0)
    _profile(stack, FAST, 0.3)
    progress(f"  hedging: {warm} tasks at apimart at 1 s (its p90 measured)")
    _run(stack, client, _bodies(warm, "warm", provider=SLOW), timeout)
    _profile(stack, SLOW, 6.0)
    progress(f"  hedging: apimart slowed to 6 s; {tasks} hedged tasks, then {tasks} unhedged")
    hedged = _run(stack, client, _bodies(tasks, "hedged", providers=PAIR, hedge=True), timeout)
    unhedged = _run(stack, client, _bodies(tasks, "plain", providers=PAIR), timeout)
    docs = hedged + unhedged
    started = sum(1 for d in hedged if any(a.get("hedge") for a in d.get("attempts", [])))
    won = sum(
        1
        for d in hedged
        if any(a.get("hedge") and a.get("outcome") == "completed" for a in d.get("attempts", []))
    )
    p90_plain, p90_hedged = _p90(unhedged), _p90(hedged)
    return {
        "unhedged_seconds": {**_times(unhedged), "p90": p90_plain},
        "hedged_seconds": {**_times(hedged), "p90": p90_hedged},
        "p90_cut": 1 - p90_hedged / p90_plain,
        "unhedged_usd": _cost(unhedged),
        "hedged_usd": _cost(hedged),
        "extra_cost": _cost(hedged) / _cost(unhedged) - 1 if _cost(unhedged) else None,
        "hedges_started": started,
        "hedges_won": won,
        "statuses": _statuses(docs),
    }
