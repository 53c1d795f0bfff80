"""Every list of providers outside the registry agrees with it, or names the file to fix.

A new provider is its adapter module, its simulator dialect, its tests and one line in
``image_gateway/providers/registry.py``; these checks say what else is missing.
"""

from __future__ import annotations

import re

from image_gateway.providers.registry import ADAPTER_MODULES, DEFAULT_BASE_URLS, PROVIDER_NAMES

from devstack.template import ROOT, load_template

PROVIDERS_PAGE = (ROOT / "docs/providers.md").read_text()


def _section(title: str) -> str:
    start = PROVIDERS_PAGE.index(f"# {title}\n")
    end = PROVIDERS_PAGE.find("\n## ", start + 1)
    return PROVIDERS_PAGE[start : end if end != -1 else None]


def _first_column(table_text: str) -> list[str]:
    return re.findall(r"^\| `([a-z0-9-]+)` \|", table_text, flags=re.MULTILINE)


def test_the_readme_providers_table_has_one_row_per_registered_provider() -> None:
    rows = _first_column(_section("Providers").split("**Sizes.**")[0])

    assert sorted(rows) == sorted(PROVIDER_NAMES), (
        "docs/providers.md: the first table needs exactly one row per provider "
        f"of image_gateway/providers/registry.py (has {rows})"
    )


def test_the_readme_base_url_table_shows_each_providers_documented_url() -> None:
    section = _section("Providers")
    rows = dict(re.findall(r"^\| `([a-z0-9-]+)` \| (https://[^ |]+) \|", section, re.MULTILINE))

    assert rows == dict(DEFAULT_BASE_URLS), (
        "docs/providers.md, 'Keys and URLs' table: one row per provider with the "
        "base URL of image_gateway/providers/registry.py"
    )


def test_the_templates_default_order_names_only_registered_providers() -> None:
    default = load_template()["Parameters"]["DefaultProviders"]["Default"].split(",")

    unknown = set(default) - set(PROVIDER_NAMES)
    assert not unknown, f"template.yaml DefaultProviders names unregistered {sorted(unknown)}"


def test_each_adapter_module_has_its_contract_tests() -> None:
    missing = [
        f"tests/unit/providers/test_{module.rsplit('.', 1)[1]}_contract.py"
        for module in set(ADAPTER_MODULES.values())
        if not (
            ROOT / "tests/unit/providers" / f"test_{module.rsplit('.', 1)[1]}_contract.py"
        ).exists()
    ]

    assert not missing, f"write the adapter's contract tests: {missing}"
