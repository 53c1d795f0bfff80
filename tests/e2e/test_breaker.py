"""A provider's circuit breaker through devstack: apimart made to fail (simulator fault marker)
opens its breaker after N failures; the next requests never reach it (the simulator's journal)
and succeed on the next provider; GET /v1/providers shows it open; after the cool-down one
trial call closes it. The breaker's thresholds are set for the test in the providers parameter
and restored after it, and apimart's breaker record is cleared before and after, so the other
tests of the session (which fail providers on purpose) see a closed breaker."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from devstack.stack import DevStack, StackInfo
from devstack.waiting import wait_until
from tests.e2e.support import EventLog, submit, wait_terminal

PARAMETER = "/imagegw-dev/providers"
FAILURES = 3
WINDOW_SECONDS = 1500.0  # x0.02 = 30 s: the three failures fall well inside it
COOLDOWN_SECONDS = 400.0  # x0.02 = 8 s: long enough to send two more requests while open
PAIR = ["apimart", "mountsea-async"]
CHANGED = "Provider Circuit Changed"


def _forget_apimart_breaker(info: StackInfo) -> None:
    boto3.client("dynamodb").delete_item(
        TableName=info.table_name, Key={"pk": {"S": "BREAKER"}, "sk": {"S": "apimart"}}
    )


@pytest.fixture
def tight_breaker(stack: DevStack, info: StackInfo) -> Iterator[None]:
    """apimart's breaker opens after 3 failures within 30 s, for 8 s (devstack's seconds)."""
    ssm = boto3.client("ssm")
    original = ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    breaker = {
        "failures": FAILURES,
        "window_seconds": WINDOW_SECONDS,
        "cooldown_seconds": COOLDOWN_SECONDS,
    }
    document = {**json.loads(original), "breaker": {"apimart": breaker}}
    cache = 60 * stack.config.time_scale + 0.5  # the providers parameter's cache, scaled
    _forget_apimart_breaker(info)
    ssm.put_parameter(Name=PARAMETER, Value=json.dumps(document), Type="String", Overwrite=True)
    time.sleep(cache)
    try:
        yield
    finally:
        ssm.put_parameter(Name=PARAMETER, Value=original, Type="String", Overwrite=True)
        _forget_apimart_breaker(info)
        time.sleep(cache)


def _apimart_health(api: httpx.Client) -> dict[str, Any]:
    listing = api.get("/v1/providers").raise_for_status().json()
    return next(p["health"] for p in listing["providers"] if p["name"] == "apimart")


def _apimart_requests_with(info: StackInfo, marker: str) -> list[dict[str, Any]]:
    journal = httpx.get(f"{info.simulator_url}/_sim/requests").raise_for_status().json()
    return [r for r in journal if r["provider"] == "apimart" and marker in json.dumps(r["body"])]


def _emf_names(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        if '"_aws"' in line and "ProviderCircuitChanged" in line:
            found.append(json.loads(line[line.index("{") :]))
    return found


@pytest.mark.usefixtures("tight_breaker")
def test_a_failing_provider_is_skipped_while_its_breaker_is_open_then_one_trial_closes_it(
    api: httpx.Client, info: StackInfo, events: EventLog, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = f"breaker-{uuid.uuid4().hex[:12]}"

    # GIVEN apimart answering 503 to three tasks in a row, each falling back to mountsea-async
    for index in range(FAILURES):
        created = submit(
            api, {"prompt": f"{marker}-fail-{index} [sim:create-503=apimart]", "providers": PAIR}
        )
        task = wait_terminal(api, created["task_id"])
        assert (task["status"], task["provider"]) == ("succeeded", "mountsea-async")
        assert [(a["provider"], a["outcome"]) for a in task["attempts"]] == [
            ("apimart", "failed"),
            ("mountsea-async", "completed"),
        ]
    assert len(_apimart_requests_with(info, f"{marker}-fail-")) == FAILURES

    # THEN its breaker is open: the listing says so, until the end of the cool-down
    health = _apimart_health(api)
    assert health["state"] == "open", health
    assert health["until"] is not None
    assert health["success_rate"] == 0.0
    opened = events.wait_for_other(CHANGED, {"provider": "apimart", "state": "open"})
    assert opened["detail"]["previous_state"] == "closed"
    assert opened["source"] == "image-gateway"

    # WHEN two more requests list apimart first (still carrying the 503 marker)
    skipped = [
        submit(api, {"prompt": f"{marker}-skip-{i} [sim:create-503=apimart]", "providers": PAIR})
        for i in range(2)
    ]

    # THEN they go straight to mountsea-async and succeed there, without apimart's failure
    for created in skipped:
        assert created["provider"] == "mountsea-async"  # routing put the open breaker last
        task = wait_terminal(api, created["task_id"])
        assert (task["status"], task["provider"]) == ("succeeded", "mountsea-async")
        assert [(a["provider"], a["outcome"]) for a in task["attempts"]] == [
            ("mountsea-async", "completed")
        ]
    # AND the simulator's journal proves apimart never received them
    assert _apimart_requests_with(info, f"{marker}-skip-") == []

    # WHEN the cool-down is over (half-open) and a request apimart can serve lists it first
    wait_until(lambda: _apimart_health(api)["state"] == "half_open", timeout=20, interval=0.2)
    created = submit(api, {"prompt": f"{marker}-trial", "providers": PAIR})

    # THEN it is apimart's one trial call, which succeeds and closes the breaker
    assert created["provider"] == "apimart"
    task = wait_terminal(api, created["task_id"])
    assert (task["status"], task["provider"]) == ("succeeded", "apimart")
    assert [a["provider"] for a in task["attempts"]] == ["apimart"]
    assert len(_apimart_requests_with(info, f"{marker}-trial")) >= 1
    assert _apimart_health(api)["state"] == "closed"
    events.wait_for_other(CHANGED, {"provider": "apimart", "state": "half_open"})
    closed = events.wait_for_other(CHANGED, {"provider": "apimart", "state": "closed"})
    assert closed["detail"]["task_id"] == task["task_id"]

    # AND every change was counted as the ProviderCircuitChanged metric (EMF lines)
    seen: list[dict[str, Any]] = []

    def counted() -> bool:
        seen.extend(_emf_names(capsys.readouterr().out))
        states = {d.get("State") for d in seen if d.get("Provider") == "apimart"}
        return {"open", "half_open", "closed"} <= states

    wait_until(counted, timeout=10, interval=0.2)
