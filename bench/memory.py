"""Figure 3: peak memory growth while finalising 1K, 2K and 4K results, gateway vs naive.

Results are real PNGs of full-frame noise (incompressible, so as large as such images get:
about 3 bytes per pixel), served over HTTP by this process, either as the image itself (a URL
result) or inside a provider-style JSON body as base64. Each sample is a fresh interpreter that
warms its clients on a tiny image, then finalises one result into the devstack bucket:
- gateway, URL: ``SafeFetcher.stream`` -> ``ImageStore.store`` (spool, sniff, 8 MiB parts);
- gateway, base64: streamed body -> ``parse_json_with_blobs`` -> ``ImageStore.store_base64``;
- naive: ``httpx.get().content`` (+ ``json.loads`` + ``b64decode``) -> one ``put_object``.
Growth is the peak resident set (VmHWM, reset just before) minus the resident set before, in a
run without tracemalloc; the Python-heap peak comes from a separate run with tracemalloc.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

from bench.stack import BenchStack
from bench.stats import summary

TARGET_4K_MB = 32.0
SIZES = {"1K": (1536, 864), "2K": (2048, 1152), "4K": (3840, 2160)}
SOURCES = ("base64", "url")
IMPLEMENTATIONS = ("gateway", "naive")

_CHILD = r"""
import base64, gc, json, sys, time, tracemalloc
args = json.loads(sys.argv[1])
import boto3, httpx
from botocore.config import Config
from image_gateway.fetch import SafeFetcher
from image_gateway.images.json_blobs import parse_json_with_blobs
from image_gateway.adapters.s3_images import S3ImageStore as ImageStore

s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
store = ImageStore(s3, args["bucket"])
fetcher = SafeFetcher(frozenset({"127.0.0.1"}))
http = httpx.Client(trust_env=False)
bucket = args["bucket"]

def gateway(url, key):
    if args["source"] == "url":
        with fetcher.stream(url) as chunks:
            store.store(chunks, key)
    else:
        with http.stream("GET", url) as response:
            body, blobs = parse_json_with_blobs(response.iter_bytes())
        value = body["data"][0]["b64_json"]  # a Blob when long, else the string itself
        try:
            store.store_base64([value] if isinstance(value, str) else value.iter_chunks(), key)
        finally:
            for blob in blobs:
                blob.close()

def naive(url, key):
    data = http.get(url).content
    if args["source"] == "base64":
        data = base64.b64decode(json.loads(data)["data"][0]["b64_json"])
    s3.put_object(Bucket=bucket, Key=key + ".png", Body=data)

run = gateway if args["impl"] == "gateway" else naive
run(args["warm_url"], "bench/memory/warm")
gc.collect()

def rss_kb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0

try:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset VmHWM, the peak resident set
    reset = True
except OSError:
    reset = False
before = rss_kb("VmRSS")
if args["measure"] == "tracemalloc":
    tracemalloc.start()
started = time.perf_counter()
run(args["url"], "bench/memory/" + args["label"])
elapsed = time.perf_counter() - started
heap_peak = tracemalloc.get_traced_memory()[1] if args["measure"] == "tracemalloc" else None
peak = rss_kb("VmHWM")
print(json.dumps({
    "rss_growth_mb": (peak - before) / 1024,
    "heap_peak_mb": None if heap_peak is None else heap_peak / 2**20,
    "seconds": elapsed,
    "hwm_reset": reset,
}))
"""


def _noise_png(width: int, height: int) -> bytes:
    pixels = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    buffer = io.BytesIO()
    pixels.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _write_files(folder: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for label, (width, height) in {"warm": (64, 64), **SIZES}.items():
        png = _noise_png(width, height)
        sizes[label] = len(png)
        (folder / f"{label}.png").write_bytes(png)
        document = {"status": "completed", "data": [{"b64_json": base64.b64encode(png).decode()}]}
        (folder / f"{label}.json").write_text(json.dumps(document))
    return sizes


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log."""


def _child(args: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", _CHILD, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(bench: BenchStack, repeats: int, progress: Any) -> dict[str, Any]:
    """Every size x source x implementation, ``repeats`` times for each of the two measures."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        file_sizes = _write_files(Path(folder))
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=folder))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        results: dict[str, Any] = {}
        try:
            for label in SIZES:
                for source in SOURCES:
                    ext = "png" if source == "url" else "json"
                    row: dict[str, Any] = {"image_bytes": file_sizes[label]}
                    for impl in IMPLEMENTATIONS:
                        rss: list[float] = []
                        heap: list[float] = []
                        for measure in ("rss", "tracemalloc"):
                            for _ in range(repeats):
                                sample = _child(
                                    {
                                        "impl": impl,
                                        "source": source,
                                        "measure": measure,
                                        "bucket": bench.info.bucket_name,
                                        "url": f"{base}/{label}.{ext}",
                                        "warm_url": f"{base}/warm.{ext}",
                                        "label": f"{label}-{source}-{impl}",
                                    }
                                )
                                if measure == "rss":
                                    rss.append(sample["rss_growth_mb"])
                                else:
                                    heap.append(sample["heap_peak_mb"])
                        row[impl] = {"rss_growth_mb": summary(rss), "heap_peak_mb": summary(heap)}
                    gateway = row["gateway"]["rss_growth_mb"]["median"]
                    naive = row["naive"]["rss_growth_mb"]["median"]
                    row["ratio"] = gateway / naive if naive > 0 else None
                    if label == "4K":
                        row["target_mb"] = TARGET_4K_MB
                        row["met"] = gateway <= TARGET_4K_MB
                    results[f"{label}/{source}"] = row
                    progress(
                        f"  memory {label} {source}: gateway +{gateway:.1f} MB, "
                        f"naive +{naive:.1f} MB ({file_sizes[label] / 2**20:.1f} MiB image)"
                    )
        finally:
            server.shutdown()
            server.server_close()
    return results
