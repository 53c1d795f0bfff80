"""``imagegw admin`` against devstack, with devstack's administrator credentials (found through
``.devstack/stack.json``, as the README's ``aws`` commands use them): keys made, listed without
their secret and disabled with effect at the next request; limits and provider settings."""

from __future__ import annotations

import json

import boto3
import httpx
from image_gateway.adapters.dynamodb_limits import DynamoDBUsageLedger

from devstack.stack import StackInfo
from devstack.template import ROOT
from tests.e2e.cli_support import run


def admin(*args: str) -> tuple[int, str, str]:
    """``imagegw admin ARGS`` in the repository (where devstack's state file is)."""
    done = run(None, "admin", *args, cwd=ROOT)
    return done.code, done.stdout, done.stderr


def status_with(info: StackInfo, api_key: str) -> int:
    """The HTTP status of listing tasks with ``api_key``."""
    headers = {"Authorization": f"Bearer {api_key}"}
    return httpx.get(f"{info.api_url}/v1/tasks", headers=headers, timeout=30).status_code


def test_a_created_key_works_is_listed_without_its_secret_and_disabled_answers_401(
    info: StackInfo,
) -> None:
    code, api_key, said = admin("keys", "create", "bars-acme", "--name", "ci")
    api_key = api_key.strip()
    works = status_with(info, api_key)

    listed_code, listed, _ = admin("keys", "list", "bars-acme", "--json")
    [record] = [r for r in json.loads(listed) if r["key_id"] in said]
    disabled_code, _, _ = admin("keys", "disable", record["key_id"])
    after = status_with(info, api_key)

    assert (code, listed_code, disabled_code) == (0, 0, 0)
    assert api_key.startswith("itg_") and works == 200
    assert (record["client_id"], record["name"], record["disabled"]) == ("bars-acme", "ci", False)
    assert api_key not in listed and api_key.removeprefix("itg_") not in listed
    assert record["last_used_at"] is not None  # the first request recorded it
    assert after == 401


def test_an_unknown_key_id_is_refused_with_exit_2_and_a_message() -> None:
    code, _, said = admin("keys", "disable", "key_0000000000000000")

    assert code == 2
    assert "no API key 'key_0000000000000000'" in said


def test_limits_set_then_show_gives_the_clients_own_limits() -> None:
    set_code, _, _ = admin("limits", "set", "bars-limits", "--max-running-tasks", "3")

    code, shown, _ = admin("limits", "show", "bars-limits", "--json")

    assert (set_code, code) == (0, 0)
    assert json.loads(shown) == {
        "client_id": "bars-limits",
        "requests_per_minute": None,
        "max_running_tasks": 3,
        "max_queued_tasks": None,
        "daily_budget_usd": None,
        "routing": None,
        "hedge": None,
    }


def test_limits_set_routing_and_hedge_then_default_removes_them(info: StackInfo) -> None:
    set_code, _, _ = admin("limits", "set", "bars-route", "--routing", "price", "--hedge", "on")
    _, shown, _ = admin("limits", "show", "bars-route", "--json")
    ledger = DynamoDBUsageLedger(boto3.client("dynamodb"), info.table_name)
    in_force = ledger.overrides("bars-route")  # as the functions read the item
    back_code, _, _ = admin(
        "limits", "set", "bars-route", "--routing", "default", "--hedge", "default"
    )
    _, after, _ = admin("limits", "show", "bars-route", "--json")
    bad_code, _, said = admin("limits", "set", "bars-route", "--routing", "cheapest")

    assert (set_code, back_code) == (0, 0)
    assert (json.loads(shown)["routing"], json.loads(shown)["hedge"]) == ("price", True)
    assert (in_force.routing, in_force.hedge) == ("price", True)
    assert (json.loads(after)["routing"], json.loads(after)["hedge"]) == (None, None)
    assert bad_code == 2 and "--routing wants one of order, price" in said


def test_providers_set_refuses_an_unknown_provider_and_writes_nothing() -> None:
    _, before, _ = admin("providers", "show", "--json")

    code, _, said = admin("providers", "set", "--concurrency", "no-such-provider=3")
    _, after, _ = admin("providers", "show", "--json")

    assert code == 2
    assert "unknown provider 'no-such-provider'" in said
    assert after == before


def test_providers_set_shows_a_diff_and_the_change_is_in_force() -> None:
    code, diff, _ = admin("providers", "set", "--concurrency", "apimodels=7")
    _, shown, _ = admin("providers", "show", "--json")
    admin("providers", "set", "--reset")

    assert code == 0
    assert '+    "apimodels": 7' in diff
    assert json.loads(shown)["effective"]["concurrency"]["apimodels"] == 7
