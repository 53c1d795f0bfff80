"""``imagegw admin``'s argument handling that needs no stack: durations, limit values, and the
operator's provider document each flag builds."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta

import pytest
from imagegw.admin import _changed, _hedge, _limit_value, _routing, duration
from imagegw.cli import build_parser
from imagegw.errors import InputError

DEFAULTS = json.dumps({"disabled": ["openai"], "concurrency": {"apimart": 4}})


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86400), ("30m", 1800), ("90s", 90), ("2d", 172800), ("0", 0)]
)
def test_a_grace_period_is_read_in_its_unit(text: str, seconds: int) -> None:
    assert duration(text) == timedelta(seconds=seconds)


def test_a_grace_period_without_a_number_is_a_usage_error() -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        duration("a day")


def test_a_limit_may_not_be_negative() -> None:
    with pytest.raises(InputError, match="--max-running-tasks must be 0 or more"):
        _limit_value("max_running_tasks", "-1")


def test_a_running_limit_of_zero_is_accepted_it_pauses_the_client() -> None:
    assert _limit_value("max_running_tasks", "0") == 0


def test_a_limit_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(InputError, match="wants a number or 'default'"):
        _limit_value("requests_per_minute", "lots")


def test_a_budget_may_be_a_decimal() -> None:
    assert _limit_value("daily_budget_usd", "2.50") == 2.5


@pytest.mark.parametrize("policy", ["order", "price", "latency", "reliability", "balanced"])
def test_a_routing_policy_the_functions_accept_is_taken(policy: str) -> None:
    assert _routing(policy) == policy


def test_an_unknown_routing_policy_is_refused_naming_the_policies() -> None:
    with pytest.raises(InputError, match=r"--routing wants one of order, price, .* got 'cheap'"):
        _routing("cheap")


@pytest.mark.parametrize(
    ("text", "value"), [("on", True), ("TRUE", True), ("off", False), ("false", False)]
)
def test_hedge_is_on_or_off(text: str, value: bool) -> None:
    assert _hedge(text) is value


def test_hedge_default_removes_it_and_anything_else_is_refused() -> None:
    assert (_hedge("default"), _routing("default")) == ("default", "default")
    with pytest.raises(InputError, match="--hedge wants on, off or 'default', got 'yes'"):
        _hedge("yes")


def set_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["admin", "providers", "set", *argv])


def test_enable_takes_a_provider_off_the_disabled_list_in_force() -> None:
    assert _changed({}, set_args("--enable", "openai"), DEFAULTS)["disabled"] == []


def test_disable_adds_to_the_disabled_list_in_force() -> None:
    changed = _changed({}, set_args("--disable", "apimart"), DEFAULTS)

    assert changed["disabled"] == ["openai", "apimart"]


def test_concurrency_adds_to_the_operators_earlier_settings() -> None:
    mine = {"concurrency": {"pmock": 2}}

    changed = _changed(mine, set_args("--concurrency", "apimodels=3"), DEFAULTS)

    assert changed["concurrency"] == {"pmock": 2, "apimodels": 3}


def test_concurrency_without_a_number_is_refused() -> None:
    with pytest.raises(InputError, match="NAME=N"):
        _changed({}, set_args("--concurrency", "apimodels"), DEFAULTS)


def test_merge_must_be_a_json_object() -> None:
    with pytest.raises(InputError, match="JSON object"):
        _changed({}, set_args("--merge", "[1]"), DEFAULTS)
