"""The demo's batch step: three requests sent as one batch (``POST /v1/batches``) with the
``imagegw`` Python client, one of them asking for two images (``n``) and each of its own
size; the batch is waited on as one and its images saved by ``custom_id``. It prints three
lines: the batch sent, the batch finished (status, counts, cost, seconds), and where its
results file and images are."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from imagegw import Gateway
from imagegw.batch import BatchInfo, DownloadSummary
from imagegw.errors import ImagegwError

from devstack.stack import StackInfo
from devstack.template import ROOT

OUTPUT_DIR = ROOT / "demo-output" / "batch"
BATCH_LINES: list[dict[str, Any]] = [
    {"custom_id": "mug-red", "body": {"prompt": "a red mug, studio light", "size": "1024x1024"}},
    {
        "custom_id": "mug-blue",
        "body": {"prompt": "a blue mug on slate", "size": "1536x1024"},
    },
    {
        "custom_id": "mug-pair",
        "body": {"prompt": "two green mugs, two takes", "size": "1024x1536", "n": 2},
    },
]
"""The demo's batch: three sizes, and one line that asks for two images."""


def _say(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    print(f"[{stamp}] {message}", flush=True)


def results_location(results_url: str | None, bucket: str) -> str:
    """The results file as ``s3://bucket/key``, read from its presigned URL (path-style, as
    devstack's moto signs it; on AWS the key is the URL's path too)."""
    if not results_url:
        return "-"
    path = unquote(urlsplit(results_url).path).lstrip("/")
    return f"s3://{bucket}/{path.removeprefix(bucket + '/')}"


def finished_line(info: BatchInfo, seconds: float) -> str:
    """The batch's end in one line: status, counts, images, cost and time."""
    c = info.counts
    cost = f"${info.final_cost_usd:.3f}" if info.final_cost_usd else "no price configured"
    return (
        f"batch: {info.batch_id} {info.status} in {seconds:.1f} s: {c.succeeded} of {c.total} "
        f"lines succeeded, {c.failed} failed, {c.invalid} invalid, {c.cancelled + c.expired} "
        f"cancelled or expired; cost {cost}"
    )


def saved_line(summary: DownloadSummary, folder: Path) -> str:
    """Where the batch's images went, by file name."""
    names = ", ".join(p.name for p in summary.saved + summary.kept) or "none"
    return f"batch: {len(summary.saved) + len(summary.kept)} images in {folder}/: {names}"


def run_batch_demo(info: StackInfo, timeout: float = 120) -> int:
    """Send the batch, wait for it, save its images; returns the number of failures (0 or 1)."""
    sizes = ", ".join(
        f"{line['custom_id']} {line['body']['size']}"
        + (f" n={line['body']['n']}" if "n" in line["body"] else "")
        for line in BATCH_LINES
    )
    with Gateway(info.api_url, info.api_key) as gateway:
        started = time.monotonic()
        try:
            batch = gateway.batch(BATCH_LINES, metadata={"demo": "batch"})
            _say(f"batch: POST /v1/batches, {len(BATCH_LINES)} lines ({sizes}) -> {batch.id}")
            done = batch.wait(timeout, every=0.5)
            _say(finished_line(done, time.monotonic() - started))
            if done.status != "completed" or done.counts.succeeded != len(BATCH_LINES):
                return 1
            summary = batch.download(OUTPUT_DIR)
        except ImagegwError as error:
            _say(f"batch: {type(error).__name__}: {error}")
            return 1
    folder = OUTPUT_DIR.relative_to(ROOT)
    _say(f"batch: results file {results_location(done.results_url, info.bucket_name)}")
    _say(saved_line(summary, folder))
    expected = sum(int(line["body"].get("n", 1)) for line in BATCH_LINES)
    return 0 if len(summary.saved) + len(summary.kept) == expected else 1
