"""mkdocs hook: publish ``bench/RESULTS.md`` (written by ``make bench``) as the site's
``results.md``.

The pages themselves are docs/*.md. The one file the site shows from elsewhere in the
repository is the benchmark's full report, which ``make bench`` writes next to its
``results.json``; docs/performance.md links to it as ``../bench/RESULTS.md`` (a link that works
on GitHub), and that link is pointed at the published copy here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parent.parent

COPIED = {"bench/RESULTS.md": "results.md"}
"""Repository files the docs link to, published as pages: source -> page."""


def rewrite_links(markdown: str) -> str:
    """The docs' links to a copied file (``../bench/RESULTS.md``) pointed at its page."""
    for source, page in COPIED.items():
        markdown = markdown.replace(f"](../{source})", f"]({page})")
    return markdown


def on_files(files: Files, config: Any) -> Files:
    """Add the copied files as pages."""
    for source, page in COPIED.items():
        files.append(File.generated(config, page, content=(ROOT / source).read_text()))
    return files


def on_page_markdown(markdown: str, page: Page, config: Any, files: Files) -> str:
    """Point links to copied files at their pages."""
    return rewrite_links(markdown)
