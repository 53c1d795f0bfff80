"""The docs site's pages made from the README (tools/readme_pages.py, the mkdocs hook)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from devstack.template import ROOT


def hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_pages", ROOT / "tools/readme_pages.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_heading_inside_a_code_block_does_not_start_a_section() -> None:
    readme = "# T\nintro\n## A\n```bash\n## not a heading\n```\n## B\nb\n"

    parts = hook().sections(readme)

    assert list(parts) == ["", "A", "B"]
    assert "## not a heading" in parts["A"]


def test_a_page_takes_its_first_sections_heading_as_its_title() -> None:
    text = hook().page_text({"A": "## A\na", "B": "## B\nb"}, ["A", "B"])

    assert text.startswith("# A\na\n\n## B")


def test_a_section_the_readme_no_longer_has_fails_the_build() -> None:
    with pytest.raises(ValueError, match="no section"):
        hook().page_text({"A": "## A"}, ["A", "Gone"])


def test_every_page_of_the_site_has_its_readme_sections() -> None:
    module = hook()
    parts = module.sections((ROOT / "README.md").read_text())

    for titles in module.PAGES.values():
        module.page_text(parts, titles)  # raises for a missing section
