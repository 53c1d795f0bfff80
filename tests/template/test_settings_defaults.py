"""The functions' settings and the template's parameters give the same defaults.

``Settings`` (config.py) holds a default for every setting a function reads from its environment,
so a function run outside the stack (devstack, tests, a bench) behaves as a deployed one; the
template's parameters give the deployed defaults. A change to one and not the other would make
the README's figures true in one place only, so every environment variable that the template
fills from a parameter with a default is compared here.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from typing import Any

import pytest
from image_gateway.config import OPTIONAL_ENVIRONMENT, Settings

from devstack.template import load_template

TEMPLATE = load_template()
VARIABLES: dict[str, Any] = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]


def _parameter_defaults() -> list[tuple[str, str, str]]:
    """(settings field, environment variable, template parameter) for each parameter-filled
    variable whose parameter has a non-empty default."""
    found = []
    for field, variable in OPTIONAL_ENVIRONMENT.items():
        value = VARIABLES.get(variable)
        if not (isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in PARAMETERS):
            continue
        if str(PARAMETERS[value["Ref"]].get("Default", "")) != "":
            found.append((field, variable, value["Ref"]))
    return found


PAIRS = _parameter_defaults()


def test_the_per_client_limits_are_among_the_compared_defaults() -> None:
    # Given the template's global environment
    # Then the per-client limits and the deadlines are compared (the ones operators tune)
    compared = {field for field, _, _ in PAIRS}
    assert {
        "client_requests_per_minute",
        "client_max_running_tasks",
        "client_max_queued_tasks",
        "queue_timeout_seconds",
        "task_deadline_seconds",
    } <= compared, compared


@pytest.mark.parametrize(("field", "variable", "parameter"), PAIRS)
def test_a_settings_default_is_the_template_parameters_default(
    field: str, variable: str, parameter: str
) -> None:
    # Given a setting the template fills from a parameter with a default
    default = PARAMETERS[parameter]["Default"]
    # When the function reads that default from its environment, as deployed
    deployed = getattr(Settings.from_env(_environment({variable: str(default)})), field)
    # Then it is the setting's own default (what a function outside the stack uses)
    assert deployed == Settings.model_fields[field].default, (
        f"template parameter {parameter} defaults to {default!r} but Settings.{field} "
        f"defaults to {Settings.model_fields[field].default!r}: change both"
    )


def _environment(extra: dict[str, str]) -> dict[str, str]:
    required = {
        "TABLE_NAME": "tasks",
        "BUCKET_NAME": "images",
        "EVENT_BUS_NAME": "bus",
        "WEBHOOK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:w",
        "PROVIDER_KEYS_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:p",
    }
    return {**required, **extra}


def test_the_functions_environment_turns_pydantic_plugin_discovery_off() -> None:
    # pydantic looks for plugins among every installed distribution's entry points when the
    # first model of a process is completed; the functions use none, and the template's value
    # must be one pydantic reads as "all off" (so that the lookup is never made).
    code = (
        "import pydantic.plugin._loader as loader\n"
        "calls = []\n"
        "loader.entry_points = lambda **kw: calls.append(kw) or []\n"
        "from pydantic import BaseModel\n"
        "class M(BaseModel):\n"
        "    x: int\n"
        "print(len(calls), M(x=1).x)\n"
    )
    run = functools.partial(
        subprocess.run, [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    environment = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}

    with_template = run(
        env={**environment, "PYDANTIC_DISABLE_PLUGINS": VARIABLES["PYDANTIC_DISABLE_PLUGINS"]}
    )
    without = run(env=environment)

    assert with_template.stdout.split() == ["0", "1"]
    assert without.stdout.split() == ["1", "1"]  # the lookup this setting saves
