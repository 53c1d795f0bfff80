"""Figure 10: a 2,000-line batch through ``imagegw batch`` on devstack (issue 21's done-when).

devstack runs as ``make devstack`` runs it (every function in worker processes of its own,
schedules on, IAM enforced, the default time scale 0.02 and provider order). A client of its
own (per-minute rate lifted, as the scale figure does: the figure times the batch, not the
rate limit; its running limit is the default, so most lines wait their turn in its queue)
writes a JSONL file of ``LINES`` lines of three sizes and runs the command a person would:

    imagegw batch catalogue.jsonl -o catalogue/ --json

Over 1,000 lines the command uploads the file and sends it as ``input_file``; it waits for the
batch, then saves every image as ``<custom_id>.png``, each checked against its sha256. The
figure is the command's time from start to exit, and what it did: the images saved, the lines
without an image, the batch's status and counts. Then the same command again on the same folder
(a resumed run): it must find the same batch and download nothing (every image kept). Target:
every line succeeded, every image saved, and the resumed run downloads 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore

from devstack.stack import DevStack, StackConfig

LINES = 2000
SIZES = ("1024x1024", "1536x1024", "1024x1536")
LIFTED_RATE = 1_000_000
IMAGEGW = Path(sys.executable).parent / "imagegw"

Row = tuple[str, str, str, str, str, str]


def catalogue(lines: int) -> list[dict[str, Any]]:
    """The batch's lines: one product shot each, the three sizes in turn."""
    return [
        {
            "custom_id": f"sku-{i:05d}",
            "body": {"prompt": f"product shot {i}, studio light", "size": SIZES[i % len(SIZES)]},
        }
        for i in range(lines)
    ]


def _imagegw(
    file: Path, folder: Path, env: dict[str, str], timeout: float
) -> tuple[float, int, dict[str, Any]]:
    """``imagegw batch FILE -o FOLDER --json``: seconds, exit code, its JSON document."""
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 (our own command)
        [str(IMAGEGW), "batch", str(file), "-o", str(folder), "--json", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.monotonic() - started
    try:
        document: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        document = {"error": (done.stdout + done.stderr)[-2000:]}
    return seconds, done.returncode, document


def summarise(
    lines: int, first: tuple[float, int, dict[str, Any]], again: tuple[float, int, dict[str, Any]]
) -> dict[str, Any]:
    """The figure from the two runs' documents."""
    seconds, code, doc = first
    seconds_again, code_again, doc_again = again
    batch = doc.get("batch") or {}
    counts = batch.get("counts") or {}
    saved, kept = len(doc.get("saved", [])), len(doc.get("kept", []))
    saved_again, kept_again = len(doc_again.get("saved", [])), len(doc_again.get("kept", []))
    all_saved = code == 0 and counts.get("succeeded") == lines and saved + kept == lines
    resumed_once = (
        code_again == 0
        and (doc_again.get("batch") or {}).get("batch_id") == batch.get("batch_id")
        and saved_again == 0
        and kept_again == lines
    )
    return {
        "lines": lines,
        "batch_id": batch.get("batch_id"),
        "status": batch.get("status"),
        "counts": counts,
        "input_file": batch.get("input_file") is not None,
        "seconds": seconds,
        "lines_per_second": lines / seconds if seconds else 0.0,
        "exit_code": code,
        "saved": saved,
        "kept": kept,
        "without_image": len(doc.get("failed", [])),
        "resumed": {
            "seconds": seconds_again,
            "exit_code": code_again,
            "saved": saved_again,
            "kept": kept_again,
        },
        "all_saved": all_saved,
        "resumed_downloads_nothing": resumed_once,
        "met": all_saved and resumed_once,
        "error": doc.get("error") or doc_again.get("error"),
    }


def run(*, lines: int = LINES, progress: Any) -> dict[str, Any]:
    """The figure: one batch of ``lines`` lines through ``imagegw batch``, then resumed."""
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    config = StackConfig(log_level="ERROR", state_file=work / "stack.json", runtime="process")
    with DevStack(config) as devstack:
        info = devstack.info
        assert info is not None
        ddb = boto3.client("dynamodb")
        client = f"batch-{uuid.uuid4().hex[:6]}"
        key = DynamoDBApiKeyStore(ddb, info.table_name).create_key(client)
        ddb.update_item(
            TableName=info.table_name,
            Key={"pk": {"S": f"LIMITS#{client}"}, "sk": {"S": "LIMITS"}},
            UpdateExpression="SET requests_per_minute = :r",
            ExpressionAttributeValues={":r": {"N": str(LIFTED_RATE)}},
        )
        file = work / "catalogue.jsonl"
        file.write_text("".join(json.dumps(line) + "\n" for line in catalogue(lines)))
        folder = work / "catalogue"
        env = {**os.environ, "IMAGEGW_URL": info.api_url, "IMAGEGW_KEY": key}
        timeout = 600 + lines * 2.0
        progress(f"  imagegw batch of {lines} lines: sending, waiting, saving ...")
        first = _imagegw(file, folder, env, timeout)
        progress(f"  done in {first[0]:.0f} s (exit {first[1]}); the same command again ...")
        again = _imagegw(file, folder, env, timeout)
        progress(f"  resumed run: {again[0]:.1f} s (exit {again[1]})")
    return summarise(lines, first, again)


def report_rows(fig: dict[str, Any] | None) -> list[Row]:
    """The figure's rows of the results table: the batch's time and images, the resumed run."""
    if not fig:
        return []
    counts = fig["counts"]
    how = "input_file" if fig["input_file"] else "inline"
    resumed = fig["resumed"]
    return [
        (
            f"batch: {fig['lines']:,}-line JSONL through `imagegw batch` on devstack ({how}; "
            f"{counts.get('succeeded', 0):,} succeeded, {fig['without_image']:,} without image)",
            f"{fig['seconds']:.0f} s ({fig['lines_per_second']:.1f} lines/s), "
            f"{fig['saved']:,} images saved",
            "-",
            "-",
            "all succeed, all saved",
            "met" if fig["all_saved"] else "**missed**",
        ),
        (
            "batch: the same command again on the same folder (resumed)",
            f"{resumed['seconds']:.1f} s, {resumed['saved']:,} downloaded, "
            f"{resumed['kept']:,} kept",
            "-",
            "-",
            "0 downloaded",
            "met" if fig["resumed_downloads_nothing"] else "**missed**",
        ),
    ]
