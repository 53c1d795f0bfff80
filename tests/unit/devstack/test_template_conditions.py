"""devstack's resolver: ``Fn::If`` on the template's conditions, and ``AWS::NoValue``."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.template import Resolver

CONDITIONS: dict[str, Any] = {
    "On": {"Fn::Equals": [{"Ref": "Switch"}, "true"]},
    "Off": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Switch"}, "true"]}]},
    "AlsoOn": {"Condition": "On"},
}
ITEMS: list[Any] = [
    {"Name": "always"},
    {"Fn::If": ["On", {"Name": "when-on"}, {"Ref": "AWS::NoValue"}]},
    {"Fn::If": ["Off", {"Name": "when-off"}, {"Ref": "AWS::NoValue"}]},
]


@pytest.mark.parametrize(
    ("switch", "names"), [("true", ["always", "when-on"]), ("false", ["always", "when-off"])]
)
def test_an_item_under_a_false_condition_is_left_out_of_its_list(
    switch: str, names: list[str]
) -> None:
    resolver = Resolver(parameters={"Switch": switch}, conditions=CONDITIONS)
    assert [i["Name"] for i in resolver.resolve(ITEMS)] == names


def test_a_property_set_to_no_value_is_left_out_and_conditions_can_name_conditions() -> None:
    resolver = Resolver(parameters={"Switch": "false"}, conditions=CONDITIONS)
    value = {"A": 1, "B": {"Fn::If": ["AlsoOn", 2, {"Ref": "AWS::NoValue"}]}}
    assert resolver.resolve(value) == {"A": 1}
    assert resolver.condition("AlsoOn") is False


def test_an_unknown_condition_is_an_error_not_a_silent_false() -> None:
    with pytest.raises(KeyError, match="Missing"):
        Resolver(parameters={}, conditions=CONDITIONS).resolve({"Fn::If": ["Missing", 1, 2]})
