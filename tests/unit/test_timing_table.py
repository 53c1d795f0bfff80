"""The timing table of docs/timing.md shows the TimingPolicy's values (and the template's)."""

from __future__ import annotations

import dataclasses
import re

from image_gateway.timing import DEFAULT_TIMING

from devstack.template import ROOT, load_template

SECTION = (ROOT / "docs/timing.md").read_text().split("# Timing: every wait, retry and deadline")[1]
TABLE = SECTION.split("\n## ")[0]
ROWS = [row.split(" | ") for row in re.findall(r"^\| (.+) \|$", TABLE, re.MULTILINE)]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def test_every_field_of_the_policy_has_a_row() -> None:
    documented = {
        name for row in ROWS for name in re.findall(r"`([a-z_]+)`", row[-1]) if len(row) == 3
    }
    fields = {f.name for f in dataclasses.fields(DEFAULT_TIMING)}

    assert fields <= documented, f"docs/timing.md timing table lacks {sorted(fields - documented)}"


def test_each_numeric_fields_row_shows_its_value() -> None:
    for what, value, where in (row for row in ROWS if len(row) == 3):
        for name in re.findall(r"`([a-z_]+)`", where):
            field = getattr(DEFAULT_TIMING, name, None)
            if isinstance(field, int | float):
                assert re.search(rf"\b{re.escape(_number(field))}\b", value), (what, name, field)


def test_the_template_numbers_in_the_table_are_the_templates() -> None:
    template = load_template()
    globals_env = template["Globals"]["Function"]["Environment"]["Variables"]
    dispatch_env = template["Resources"]["DispatchFunction"]["Properties"]["Environment"]
    deadline = template["Parameters"]["TaskDeadlineSeconds"]["Default"]
    rows = {row[2]: row[1] for row in ROWS if len(row) == 3}

    timeout = template["Parameters"]["ProviderTimeoutSeconds"]["Default"]
    assert rows["`ProviderTimeoutSeconds` parameter"] == f"{timeout} s"
    assert rows["`PROVIDER_SYNC_TIMEOUT_SECONDS` (template, `DispatchFunction`)"] == (
        f"{dispatch_env['Variables']['PROVIDER_SYNC_TIMEOUT_SECONDS']} s"
    )
    assert rows["`TaskDeadlineSeconds` parameter"] == f"{deadline} s"
    assert (
        rows["`OUTPUT_URL_TTL_SECONDS` (template)"] == f"{globals_env['OUTPUT_URL_TTL_SECONDS']} s"
    )
