"""The docs site's diagrams draw: every Mermaid block of docs/*.md becomes a picture.

The site is built as ``make docs`` builds it (mkdocs-material, the pinned Mermaid served with
the site) into a temporary folder, served on loopback, and each page with a diagram is opened
in Debian's chromium (the console test's browser). A block Mermaid cannot parse draws an error
picture ("Syntax error in text") or nothing at all, so both fail here, as would a site that
fetches Mermaid from the network (these machines have none). Each picture is saved under
test-artifacts/docs/ for a reviewer to look at.
"""

from __future__ import annotations

import functools
import http.server
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from devstack.template import ROOT

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS = ROOT / "docs"
MERMAID = DOCS / "assets" / "vendor" / "mermaid.min.js"
SHOTS = ROOT / "test-artifacts" / "docs"
FENCE = re.compile(r"^```mermaid\s*$", re.M)


def _pages_with_diagrams() -> dict[str, int]:
    """docs page (site path) -> how many Mermaid blocks it has."""
    found = {}
    for page in sorted(DOCS.glob("*.md")):
        count = len(FENCE.findall(page.read_text(encoding="utf-8")))
        if count:
            found[f"{page.stem}/" if page.stem != "index" else ""] = count
    return found


PAGES = _pages_with_diagrams()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The docs site built into a temporary folder and served on loopback; its base URL."""
    assert MERMAID.is_file(), f"{MERMAID} is missing: `make docs` fetches the pinned Mermaid"
    out = tmp_path_factory.mktemp("site")
    subprocess.run(  # noqa: S603 (this interpreter's mkdocs, fixed arguments)
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT,
        check=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent)},
    )
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No access log on the test's output."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield launched
        launched.close()


def test_the_docs_have_the_promised_diagrams() -> None:
    # Given the docs pages / Then the task's flow and the finalisation paths (concepts) and
    # the per-client queueing (limits) are drawn
    assert PAGES.get("concepts/", 0) >= 2 and PAGES.get("limits/", 0) >= 1, PAGES


@pytest.mark.parametrize("path", sorted(PAGES))
def test_every_diagram_of_a_page_draws_without_the_network(
    site: str, browser: Browser, path: str
) -> None:
    # Given the built site, served on loopback, and a page with Mermaid blocks
    context = browser.new_context(viewport={"width": 1280, "height": 3000})  # whole diagrams
    page = context.new_page()
    outside: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith((site, "data:")) else None,
    )
    # When the page is opened
    page.goto(site + path)
    # Then each block becomes an SVG picture (mkdocs-material draws them in closed shadow
    # roots, so the drawn pictures are counted by their hosts' size and Mermaid's own output)
    pictures = page.locator("div.mermaid")
    pictures.first.wait_for(state="attached", timeout=15_000)
    page.wait_for_function(
        "n => [...document.querySelectorAll('div.mermaid')]"
        ".filter(d => d.getBoundingClientRect().height > 50).length >= n",
        arg=PAGES[path],
        timeout=15_000,
    )
    assert pictures.count() == PAGES[path]
    # And none of them is Mermaid's error picture, and nothing was fetched from outside
    assert "Syntax error" not in page.content()
    assert outside == [], outside
    SHOTS.mkdir(parents=True, exist_ok=True)
    for index in range(pictures.count()):
        name = (path.strip("/") or "index") + f"-{index + 1}.png"
        pictures.nth(index).screenshot(path=str(SHOTS / name))
    context.close()
