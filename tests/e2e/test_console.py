"""The console in headless Chromium: paste the key, see a finished task's picture, submit a
generation and watch it succeed, open its detail. Screenshots go to ``test-artifacts/console/``.

The browser is Debian's chromium (``make test`` installs it with apt-get) driven by the pinned
PyPI ``playwright`` package; Playwright's own browser download is never used.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Page, sync_playwright

from devstack.stack import StackInfo
from devstack.template import ROOT
from devstack.waiting import wait_until
from devstack.webhook_receiver import WebhookReceiver
from tests.e2e.support import submit, wait_terminal

CHROMIUM = "/usr/bin/chromium"
# What works on these machines (no sandbox as root; no network beyond loopback).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ROOT / "test-artifacts" / "console"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium with a fresh profile (Playwright makes a new user data dir)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page of its own; what the page logs as an error fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    opened.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    yield opened
    context.close()
    assert problems == []


def _natural_width(page: Page, selector: str) -> Any:
    handle = page.wait_for_function(
        f"() => {{ const i = document.querySelector({selector!r}); "
        "return i && i.complete && i.naturalWidth; }",
        timeout=15_000,
    )
    return handle.json_value()


STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
"""The console's one time format (local date and time to the millisecond)."""


def thumbnail_made(api: httpx.Client, task_id: str) -> str:
    """The list row's thumbnail URL, once the thumbnail function stored it (bounded wait)."""

    def row() -> str | None:
        for task in api.get("/v1/tasks", params={"limit": 50}).json()["tasks"]:
            if task["task_id"] == task_id and task["thumbnail_url"]:
                return str(task["thumbnail_url"])
        return None

    return str(wait_until(row, timeout=15))


def login(page: Page, info: StackInfo) -> None:
    page.goto(info.console_url)
    page.get_by_label("API key").fill(info.api_key)
    page.get_by_role("button", name="Use key").click()


def test_the_console_shows_tasks_submits_one_and_opens_its_detail(
    info: StackInfo, api: httpx.Client, page: Page
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    # Given a finished task of this client, with its thumbnail made
    created = submit(api, {"prompt": "a lighthouse", "size": "1536x1024"})
    done = wait_terminal(api, created["task_id"])
    assert done["status"] == "succeeded"
    thumbnail_made(api, done["task_id"])

    # When the person opens the console and pastes the key
    login(page, info)

    # Then the finished task is in the gallery with its thumbnail (not the image) really loaded
    card = f'#gallery li[data-task="{done["task_id"]}"]'
    assert _natural_width(page, f"{card} img") == 320
    assert ".thumb.jpg" in str(page.get_attribute(f"{card} img", "src"))
    text = page.inner_text(card)
    assert "succeeded" in text and "a lighthouse" in text
    # And its full id, with a button that copies it
    assert page.inner_text(f"{card} .copyable code") == done["task_id"]
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click(f"{card} button.copy")
    assert page.evaluate("() => navigator.clipboard.readText()") == done["task_id"]
    assert STAMP.match(page.inner_text(f"{card} .meta > .muted").strip())
    stored = page.evaluate("() => [sessionStorage.getItem('imagegw.key'), localStorage.length]")
    assert stored == [info.api_key, 0]

    # When a generation is submitted from the form (a provider that takes 2 s)
    page.get_by_label("Prompt").fill("a red bicycle [sim:latency=2]")
    page.get_by_label("Size").select_option("1024x1536")
    page.wait_for_selector('#provider option[value="mountsea-async"]', state="attached")
    page.get_by_label("Provider").select_option("mountsea-async")
    page.get_by_role("button", name="Generate").click()

    # Then the new task shows progressing, then succeeded with its picture
    page.wait_for_selector("#live .card:not([data-status=succeeded])", timeout=15_000)
    page.screenshot(path=str(SHOTS / "console-progress.png"))
    page.wait_for_selector("#live .card[data-status=succeeded]", timeout=30_000)
    assert _natural_width(page, "#live img") == 1024
    new_id = page.get_attribute("#live .card", "data-task")
    page.wait_for_selector(f'#gallery li[data-task="{new_id}"][data-status=succeeded] img')
    page.screenshot(path=str(SHOTS / "console.png"), full_page=True)

    # When its detail is opened
    page.get_by_role("button", name=f"Open task {new_id}").first.click()

    # Then it shows the task's prompt, history and provider attempts, the attempt closed
    dialog = page.locator("dialog#detail")
    dialog.wait_for(state="visible")
    assert page.inner_text("#detail-h") == new_id
    text = dialog.inner_text()
    assert "History" in text and "Provider attempts" in text and "mountsea-async" in text
    assert "a red bicycle" in text
    assert page.locator("#detail-body table").nth(1).locator("tr").count() >= 3  # head + 2
    outcomes = page.locator("table.attempts td:nth-child(5)").all_inner_texts()
    assert outcomes == ["completed"]
    for stamp in page.locator("table.attempts td:nth-child(3)").all_inner_texts():
        assert STAMP.match(stamp), stamp
    page.screenshot(path=str(SHOTS / "console-detail.png"))

    # And what it shows is labelled: every picture has alt text, every field a label
    unlabelled = page.evaluate(
        "() => [...document.querySelectorAll('img:not([alt]), input:not([type=hidden]), "
        "select, textarea')].filter(e => e.tagName === 'IMG' || e.labels.length === 0)"
        ".map(e => e.outerHTML)"
    )
    assert unlabelled == []


def test_the_api_reference_renders_every_operation_with_nothing_from_outside(
    page: Page, info: StackInfo
) -> None:
    # GIVEN every request the page makes WHEN /docs is opened in the browser
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{info.api_url}/docs")

    # THEN Swagger UI rendered one block per operation of the live document
    document = httpx.get(f"{info.api_url}/v1/openapi.json").json()
    operations = sum(len(methods) for methods in document["paths"].values())
    page.wait_for_function(
        f"() => document.querySelectorAll('.opblock').length === {operations}", timeout=20_000
    )
    assert page.locator(".info .title").inner_text().startswith(document["info"]["title"])
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "docs.png"), full_page=False)
    # AND every file came from the gateway itself (no CDN: /docs works without internet)
    assert requested and all(url.startswith(info.api_url) for url in requested), requested


def _data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_an_edits_detail_shows_its_inputs_its_webhook_deliveries_and_tidy_attempts(
    info: StackInfo, api: httpx.Client, page: Page
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    # Given a masked edit of two images on mountsea-async, announced to a callback_url
    photo = Image.new("RGB", (1024, 1024), (40, 90, 160))
    ImageDraw.Draw(photo).ellipse((312, 312, 712, 712), fill=(240, 200, 40))
    mask = Image.new("RGBA", (1024, 1024), (0, 0, 0, 255))
    ImageDraw.Draw(mask).ellipse((362, 362, 662, 662), fill=(0, 0, 0, 0))
    receiver = WebhookReceiver(info.webhook_secret)
    try:
        created = submit(api, {
            "prompt": "Replace the centre with a glowing moon, in the style of the second picture",
            "provider": "mountsea-async", "size": "1024x1024", "quality": "low",
            "images": [_data_url(photo), _data_url(Image.new("RGB", (512, 768), (200, 80, 60)))],
            "mask": _data_url(mask), "callback_url": receiver.url("/console/hook"),
        })  # fmt: skip
        task_id = created["task_id"]
        assert wait_terminal(api, task_id)["status"] == "succeeded"
        wait_until(lambda: api.get(f"/v1/tasks/{task_id}").json()["deliveries"], timeout=15)
        thumbnail_made(api, task_id)

        # When its detail is opened from the gallery
        login(page, info)
        page.get_by_role("button", name=f"Open task {task_id}").first.click()
        dialog = page.locator("dialog#detail")
        dialog.wait_for(state="visible")

        # Then its inputs are shown (both images and the mask, really loaded)
        page.wait_for_function(
            "() => { const shown = [...document.querySelectorAll('.inputs img')]; "
            "return shown.length === 3 && shown.every(i => i.complete && i.naturalWidth); }",
            timeout=15_000,
        )
        text = dialog.inner_text()
        assert "Inputs (2 images and a mask)" in text
        # And its webhook deliveries, and what was asked
        assert page.locator("table.deliveries tr").count() >= 2
        assert "delivered" in page.inner_text("table.deliveries")
        assert "quality" in text and "low" in text and "finished by" in text
        # And the attempts table keeps each cell on one line: the provider task id is cut, whole
        # in its title
        cell = page.locator("table.attempts td.tid").first
        assert cell.evaluate("td => getComputedStyle(td).whiteSpace") == "nowrap"
        attempt = api.get(f"/v1/tasks/{task_id}").json()["attempts"][0]
        assert cell.get_attribute("title") == attempt["provider_task_id"]
        heights = page.locator("table.attempts tr").evaluate_all(
            "rows => rows.map(r => r.getBoundingClientRect().height)"
        )
        assert max(heights) < 2 * min(heights), heights
        dialog.screenshot(path=str(SHOTS / "console-edit-detail.png"))
    finally:
        receiver.close()


def test_the_console_lists_batches_with_their_progress_and_shows_every_image_of_a_task(
    info: StackInfo, api: httpx.Client, page: Page
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    # Given a batch of this client whose two lines take two seconds each, one asking for 2 images
    lines = [
        {"custom_id": "slow-0", "body": {"prompt": "a slow kite [sim:latency=2]", "n": 2}},
        {"custom_id": "slow-1", "body": {"prompt": "a slow boat [sim:latency=2]"}},
    ]
    answer = api.post("/v1/batches", json={"requests": lines})
    assert answer.status_code == 202, answer.text
    batch_id = answer.json()["batch_id"]

    # When the person opens the console
    login(page, info)

    # Then the batch is listed, first unfinished, then completed with 2/2 lines and its results
    row = f'#batches tr[data-batch="{batch_id}"]'
    page.wait_for_selector(row, timeout=15_000)
    page.wait_for_selector(f"{row}[data-status=completed]", timeout=60_000)
    text = page.inner_text(row)
    assert "2/2" in text and "2 succeeded" in text, text
    assert page.get_attribute(f"{row} progress", "value") == "2"
    assert page.get_attribute(f"{row} a", "href", timeout=5_000)
    page.locator("#batches-panel").screenshot(path=str(SHOTS / "console-batches.png"))

    # When the line of two images is opened from the gallery
    results = api.get(f"/v1/batches/{batch_id}").json()["results_url"]
    rows = [json.loads(x) for x in httpx.get(results).text.splitlines()]
    two = next(r["task_id"] for r in rows if r["custom_id"] == "slow-0")
    page.get_by_role("button", name="Refresh").click()
    page.get_by_role("button", name=f"Open task {two}").first.click()

    # Then its detail shows both images, each really loaded
    page.locator("dialog#detail").wait_for(state="visible")
    images = page.locator("#detail-body .outputs img")
    images.nth(1).wait_for(timeout=15_000)
    assert images.count() == 2
    for index in range(2):
        assert _natural_width(page, f"#detail-body .outputs img:nth-child({index + 1})") > 0
