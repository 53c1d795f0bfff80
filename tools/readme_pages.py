"""mkdocs hook: the docs site's pages made from the README's sections, while the README is still
the one source of the text (the README is being split into docs/ step by step; a page that has
moved to docs/ is read from there, and its section leaves the README).

Each page is the README's ``## `` sections named in PAGES, in order; a heading the README no
longer has fails the build (``mkdocs build --strict`` in ``make test``), so the two cannot drift.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
PAGES: dict[str, list[str]] = {
    "index.md": ["", "The two commands", "Make an image in one line"],
    "concepts.md": ["How it works", "Callbacks: answered at once, finalised once"],
    "api.md": ["Calling the API", "Events"],
    "openai.md": ["OpenAI-compatible API (the official `openai` SDK)"],
    "webhooks.md": ["Webhooks to your app (signed, Standard Webhooks)"],
    "inbox.md": ["S3 inbox: uploads start edits"],
    "providers.md": ["Providers"],
    "limits.md": ["Per-client limits, queueing and budgets"],
    "timing.md": ["Timing: every wait, retry and deadline"],
    "operations.md": ["Operations: metrics, alarms, dashboard, tracing, logs"],
    "deploy.md": ["Deploying"],
    "development.md": ["devstack", "Development"],
    "capacity.md": ["What it costs and how fast it is"],
    "licence.md": ["Licence"],
}
"""Page -> the README sections it holds ("" is the text before the first section)."""
COPIED = {"bench/RESULTS.md": "results.md"}
"""Repository files the README links to, published as pages (the link is rewritten)."""


def sections(readme: str) -> dict[str, str]:
    """The README's text by ``## `` heading ("" for what comes first)."""
    found: dict[str, str] = {}
    title, lines = "", []
    fenced = False
    for line in readme.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            found[title] = "\n".join(lines)
            title, lines = line[3:].strip(), [line]
        else:
            lines.append(line)
    found[title] = "\n".join(lines)
    return found


def page_text(parts: dict[str, str], titles: list[str]) -> str:
    """One page: its sections, the first one's heading as the page's title."""
    missing = [t for t in titles if t not in parts]
    if missing:
        raise ValueError(f"README.md has no section {missing}: update tools/readme_pages.py")
    text = "\n\n".join(parts[t] for t in titles)
    text = re.sub(r"^## ", "# ", text, count=1, flags=re.M) if titles[0] else text
    for source, page in COPIED.items():
        text = text.replace(f"]({source})", f"]({page})")
    return text + "\n"


def on_files(files: Files, config: Any) -> Files:
    """Add the README's pages (and the files it links to) unless docs/ has them already."""
    parts = sections((ROOT / "README.md").read_text())
    for name, titles in PAGES.items():
        if files.get_file_from_path(name) is None:
            files.append(File.generated(config, name, content=page_text(parts, titles)))
    for source, page in COPIED.items():
        if files.get_file_from_path(page) is None:
            files.append(File.generated(config, page, content=(ROOT / source).read_text()))
    return files
