"""The operator's provider settings laid over the stack's defaults (providers/settings.py)."""

from __future__ import annotations

import json

from image_gateway.providers.settings import effective_document, loader, operator_parameter, overlay

DEFAULTS = {
    "disabled": ["openai"],
    "prices": {"apimodels": {"per_image": {"1K": {"low": 0.005}}}},
    "concurrency": {"apimart": 4},
}


def test_the_operators_parameter_sits_under_the_stacks() -> None:
    assert operator_parameter("/gw/providers") == "/gw/providers/operator"


def test_a_per_provider_key_is_merged_provider_by_provider() -> None:
    merged = overlay(DEFAULTS, {"concurrency": {"apimodels": 2}})

    assert merged["concurrency"] == {"apimart": 4, "apimodels": 2}


def test_a_list_key_is_replaced_whole_so_the_operator_can_enable_a_default_disabled() -> None:
    merged = overlay(DEFAULTS, {"disabled": []})

    assert merged["disabled"] == []


def test_without_operator_settings_the_defaults_are_read_as_they_are() -> None:
    defaults = json.dumps(DEFAULTS)

    assert effective_document(defaults, None) == defaults


def test_an_operator_document_that_is_not_json_is_passed_on_for_the_parser_to_refuse() -> None:
    assert effective_document(json.dumps(DEFAULTS), "{not json") == "{not json"


def test_the_loader_reads_both_parameters_by_name() -> None:
    parameters = {
        "/gw/providers": json.dumps(DEFAULTS),
        "/gw/providers/operator": '{"order": ["pmock"]}',
    }

    asked: list[tuple[str, str]] = []

    def get_both(defaults: str, operator: str) -> tuple[str, str | None]:
        asked.append((defaults, operator))
        return parameters[defaults], parameters.get(operator)

    load = loader(get_both, "/gw/providers")

    assert json.loads(load())["order"] == ["pmock"]
    assert json.loads(load())["disabled"] == ["openai"]
    assert asked == [("/gw/providers", "/gw/providers/operator")] * 2
