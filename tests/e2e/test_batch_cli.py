"""``imagegw batch FILE -o DIR`` against devstack: a JSONL file becomes one batch, a progress
line shows it, every image is saved as CUSTOM_ID.EXT with its sha256 checked, a bad line is
reported and makes the exit code 1, and a second run resumes the same batch and downloads
nothing twice. The Python client's ``gw.batch`` is the same path (the command uses it)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from imagegw import Gateway, read_requests
from PIL import Image

from devstack.stack import StackInfo
from tests.e2e.cli_support import Terminal, keep, run

SIZES = ["1024x1024", "1536x1024", "1024x1536"]


def _catalogue(folder: Path, count: int, *, bad: int | None = None) -> Path:
    """A JSONL file of ``count`` requests of mixed sizes (line ``bad`` asks for a bad size)."""
    lines = []
    for n in range(count):
        size = "banana" if n == bad else SIZES[n % len(SIZES)]
        body = {"prompt": f"product photo {n}", "provider": "mountsea-compat", "size": size}
        lines.append(json.dumps({"custom_id": f"sku-{n:03d}", "body": body}))
    path = folder / "catalogue.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.png"))
    }


def test_a_batch_file_is_saved_by_custom_id_and_a_second_run_downloads_nothing_again(
    info: StackInfo, tmp_path: Path
) -> None:
    # Given a file of 12 requests of mixed sizes, one of them with a size no provider makes
    catalogue = _catalogue(tmp_path, 12, bad=5)
    # When imagegw batch runs it into out/
    first = run(info, "batch", str(catalogue), "-o", "out", cwd=tmp_path, timeout=240)
    keep("batch-first.txt", first.stderr + first.stdout)
    # Then the 11 good lines are saved as sku-NNN.png, each of the size its line asked for
    out = tmp_path / "out"
    saved = _digests(out)
    assert sorted(saved) == [f"sku-{n:03d}.png" for n in range(12) if n != 5], first.stderr
    for n in (0, 1, 2):
        with Image.open(out / f"sku-{n:03d}.png") as image:
            assert "x".join(map(str, image.size)) == SIZES[n]
    # And the bad line is reported by its custom_id, so the exit code is 1 (not all made)
    assert first.code == 1, first.stderr
    assert re.search(r"sku-005: invalid", first.stderr), first.stderr
    assert "11 of 12 succeeded" in first.stderr
    # And results.jsonl beside the images lists every custom_id
    assert sorted(first.stdout.split()) == [f"out/{name}" for name in sorted(saved)]
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["custom_id"] for r in rows) == [f"sku-{n:03d}" for n in range(12)]

    # When the same command runs again
    again = run(info, "batch", str(catalogue), "-o", "out", cwd=tmp_path, timeout=240)
    keep("batch-again.txt", again.stderr + again.stdout)
    # Then it resumes the same batch and downloads nothing twice
    batch_id = json.loads((out / ".imagegw-batch.json").read_text())["batch_id"]
    assert f"resuming batch {batch_id}" in again.stderr
    assert "saved 0 images" in again.stderr and "kept 11" in again.stderr
    assert _digests(out) == saved


def test_a_batch_shows_one_progress_line_on_a_terminal(info: StackInfo, tmp_path: Path) -> None:
    # Given a file of 6 requests that take a second each at the provider
    catalogue = tmp_path / "six.jsonl"
    catalogue.write_text(
        "".join(
            json.dumps(
                {
                    "custom_id": f"v{n}",
                    "body": {"prompt": f"a vase {n} [sim:latency=1]", "provider": "apimart"},
                }
            )
            + "\n"
            for n in range(6)
        )
    )
    # When imagegw batch runs on a terminal
    terminal = Terminal(info, "batch", str(catalogue), "-o", "vases", cwd=tmp_path)
    code = terminal.finish(timeout=240)
    keep("batch-tty.txt", terminal.screen)
    # Then it ends well, with the bar redrawn in place and the last count 6/6
    assert code == 0, terminal.screen
    screen = terminal.screen
    assert "\r\x1b[2K" in screen
    assert re.search(r"\[#{20}\] 6/6 done · 6 succeeded", screen), screen[-2000:]
    assert len(list((tmp_path / "vases").glob("v*.png"))) == 6


def test_the_python_client_sends_waits_and_downloads_a_batch(
    info: StackInfo, tmp_path: Path
) -> None:
    # Given three requests in a JSONL file
    requests = read_requests(_catalogue(tmp_path, 3))
    with Gateway(info.api_url, info.api_key) as gw:
        # When the client sends them as a batch and waits
        batch = gw.batch(requests, metadata={"shop": "bars"})
        seen: list[int] = []
        final = batch.wait(timeout=180, on_update=lambda b: seen.append(b.counts.done))
        # Then the batch completed with three images, counted as it went
        assert final.status == "completed" and final.counts.succeeded == 3
        assert seen[-1] == 3
        # And download saves each by custom_id, then keeps them on a second call
        first = batch.download(tmp_path / "imgs")
        second = batch.download(tmp_path / "imgs")
    assert sorted(p.name for p in first.saved) == ["sku-000.png", "sku-001.png", "sku-002.png"]
    assert second.saved == [] and len(second.kept) == 3
