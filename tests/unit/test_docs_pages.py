"""The docs: README.md stays a front page, and the site's hook publishes the benchmark report."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

from devstack.template import ROOT

README_MAX_LINES = 300


def hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hook", ROOT / "tools/docs_hook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_a_front_page_of_at_most_300_lines() -> None:
    # Given the README
    lines = (ROOT / "README.md").read_text().splitlines()

    # Then it is short: the rest is in docs/
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move text to docs/"
    )


def test_every_docs_page_the_readme_links_to_exists() -> None:
    # Given the README's relative links
    links = re.findall(r"\]\(((?:docs/)?[\w./-]+?)(?:#[\w-]+)?\)", (ROOT / "README.md").read_text())

    # Then each names a file of the repository (GitHub shows them; mkdocs does not read README)
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing, missing


def test_a_link_to_the_benchmark_report_points_at_its_published_page() -> None:
    text = "full table in [bench/RESULTS.md](../bench/RESULTS.md)."

    assert hook().rewrite_links(text) == "full table in [bench/RESULTS.md](results.md)."


def test_the_speed_page_links_to_the_report_as_bench_writes_it() -> None:
    # Given the page make bench writes its section into
    page = (ROOT / "docs/performance.md").read_text()

    # Then its link to the full report is one the hook publishes (and works on GitHub)
    assert "](../bench/RESULTS.md)" in page
    assert (ROOT / "bench/RESULTS.md").exists()
