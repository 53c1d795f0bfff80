"""``python -m bench`` (``make bench``): every figure, its baseline and target, in one run."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    artefact,
    batchrun,
    coldstart,
    costrun,
    memory,
    overhead,
    routing,
    scale,
    throughput,
    volume,
    webhook,
)
from bench.report import console, markdown, update_readme
from bench.stack import bench_stack
from devstack.stack import StackConfig

HERE = Path(__file__).resolve().parent
FIGURES = (
    "cost",
    "overhead",
    "throughput",
    "webhook",
    "coldstart",
    "memory",
    "volume",
    "scale",
    "routing",
    "batch",
)
# The volume figure runs at devstack's default time scale (what a user of devstack gets: its
# queueing must never expire a task there); the others at 0.1, so their timings are not cut
# short by the simulator.
TIME_SCALES = {"volume": StackConfig.time_scale}
# Issue 19's counts: 1,000 tasks of client A (ten times its running limit of 100) beside B's 20,
# and a 1,000-image imagegw job, on devstack with worker processes; the ledger's 1,000 open
# tasks are only queued (a paused client) on the inline stack, where the recorder prices them.
VOLUME_TASKS = 1000
VOLUME_JOB_IMAGES = 1000
VOLUME_OPEN_TASKS = 1000
VOLUME_QUICK = 30
# Issue 19's done-when: 300 submits of one client from 16 threads, 150 photos dropped into the
# inbox at once (both at the default time scale and limits: all succeed), and no item but the
# tasks over 8 KB with 400 of one client's tasks open at a provider.
VOLUME_BURST = 300
VOLUME_PHOTOS = 150
VOLUME_HELD_OPEN = 400
SCALE_QUICK = 200
"""Issue 20's run is 2,000 tasks of 4 clients (``scale.TASKS``); a smoke run does a tenth."""
ROUTING_TASKS = 100
"""Tasks per measured run of the routing figure (``--routing-tasks``): 100 keeps a full
make bench near two hours on 2 cores (four runs at 0.5 tasks/s); issue 23 names no count."""
ROUTING_QUICK = 20
BATCH_QUICK = 200
"""Issue 21's batch is 2,000 lines (``batchrun.LINES``, an input_file); a smoke run does a
tenth (inline)."""

CAVEATS = [
    "Handlers run in-process on this x86-64 machine against moto and a local simulator: "
    "absolute times are not Lambda's (arm64 at 256 MB gets a fraction of a vCPU, so CPU-bound "
    "parts run several times slower there). Ratios to same-run baselines are the robust part.",
    "Lambda GB-seconds in the cost figure are the in-process durations measured here, priced at "
    "each function's configured memory (256 MB) and arm64 prices; time spent waiting on a real "
    "provider (create call, status call, download) would add to them.",
    "DynamoDB units are computed from the items written and read (sizes, consistency, GSI "
    "writes by AWS's rules), not reported by moto. S3 GETs made through presigned URLs (the "
    "provider fetching inputs, the client downloading outputs) are not counted.",
    "The sync path (SQS dispatch function) is modelled, not measured: its cost is dominated by "
    "the function waiting on the provider, which devstack shortens by its time scale, and by "
    "the SQS polling of Lambda's event source mapping, which devstack does not reproduce.",
    "The volume figure (7) runs its fairness and client job on devstack with every function in "
    "worker processes of its own (4 per function), concurrently, on this 2-core machine, which "
    "finishes about 2 tasks a second: Lambda gives each invocation its own environment, so "
    "there the dispatch and finalisation of client A's running tasks take no turn from client "
    "B's. The fairness target is therefore read with A's running limit sized to that capacity "
    "(8); the run at the default limit (100) shows the machine's backlog, for the record. The "
    "ledger's write units come from the inline bench stack's call recorder.",
    "Cold start excludes interpreter start-up and Lambda's own init (both the same for the "
    "floor); Lambda bills INIT for managed runtimes since 2025-08-01.",
    "Callback-to-event (figure 6) crosses devstack's SQS poller, a long poll of moto that "
    "returns as soon as the webhook's message lands; Lambda's event source for SQS also long "
    "polls, but its pollers and its scaling add latency devstack does not reproduce (typically "
    "tens of milliseconds, more when the queue has been idle).",
    "Cold start imports what `sam build` made (.aws-sam/build: the handlers and the layer's "
    "python/ folder), on Python 3.13 with PYTHONDONTWRITEBYTECODE=1 as on Lambda's read-only "
    "/opt. The layer is built for arm64; to import it on this x86-64 machine, a copy gets the "
    "x86-64 build of the same versions' native modules, pydantic_core's and Pillow's (with the "
    "libraries Pillow's wheel bundles; bench/artefact.py); every .py and .pyc is the built one.",
]


def _say(started: float, message: str) -> None:
    print(f"[bench {time.monotonic() - started:6.1f} s] {message}", flush=True)


def _findings(results: dict[str, Any]) -> list[str]:
    """Plain sentences: which part of the design costs what, and the targets missed."""
    lines: list[str] = []
    for name, fig in results["cost"]["paths"].items():
        by = sorted(fig["usd_by_service"].items(), key=lambda kv: kv[1], reverse=True)
        total = sum(v for _, v in by)
        parts = ", ".join(f"{s} {v / total:.0%}" for s, v in by[:3] if v)
        verdict = ""
        if fig.get("met") is False:
            verdict = f" It misses its target (${fig['target_usd']:.5f})."
        extra = ""
        index_wru = fig.get("dynamodb_index_wru_per_task")
        if index_wru:
            wru = fig["counts_per_task"]["dynamodb_wru"]
            extra = (
                f" Of its {wru:.0f} DynamoDB write units, {index_wru:.0f} go to the global "
                "secondary indexes (an entry made or removed, or its key changed: a task's"
                " check time on OpenByCheckTime; ByClientKeys holds keys only)."
            )
        lines.append(f"- **{name}**: ${total:.6f}, of which {parts}.{extra}{verdict}")
    return lines


def _run_figure(
    figure: str,
    bench: Any,
    results: dict[str, Any],
    *,
    quick: bool,
    progress: Callable[[str], None],
) -> None:
    """One figure's measurement, into ``results``."""
    if figure == "cost":
        progress("figure 4: AWS requests and cost per task, by path")
        results["cost"] = costrun.run(bench, tasks=2 if quick else 6, progress=progress)
        results["cost"]["findings"] = _findings(results)
    elif figure == "overhead":
        progress("figure 2: warm submit and finalise vs the same calls made directly")
        results["overhead"] = overhead.run(
            bench, rounds=2 if quick else 5, per_round=10 if quick else 40, progress=progress
        )
    elif figure == "throughput":
        progress("figure 5: throughput of the local stack")
        floor_ms = None
        if "overhead" in results:
            warm = results["overhead"]
            floor_ms = warm["submit"]["floor_p50_ms"] + warm["finalise"]["floor_p50_ms"]
        results["throughput"] = throughput.run(
            bench, tasks=10 if quick else 40, clients=4, floor_ms=floor_ms, progress=progress
        )
    elif figure == "webhook":
        progress("figure 6: webhook ack and callback-to-event latency")
        results["webhook"] = webhook.run(
            bench, calls=20 if quick else 200, tasks=4 if quick else 20, progress=progress
        )
    elif figure == "coldstart":
        progress("figure 1: cold start of the sam build artefact, fresh Python 3.13 children")
        results["coldstart"] = artefact.run(
            bench,
            rounds=2 if quick else 9,
            progress=progress,
            bare_rounds=1 if quick else 5,
            tries=1 if quick else 2,
        )
        progress("figure 1b: cold start on the development tree and virtualenv")
        results["coldstart_dev"] = coldstart.run(bench, rounds=2 if quick else 9, progress=progress)
        results["coldstart_dev"]["python"] = {"version": platform.python_version()}
    elif figure == "memory":
        progress("figure 3: finalise memory, 1K/2K/4K noise PNGs, base64 and URL")
        results["memory"] = memory.run(bench, repeats=1 if quick else 3, progress=progress)
    elif figure == "volume":
        open_tasks = 100 if quick else VOLUME_OPEN_TASKS
        progress(f"figure 7b: ledger write units per submit at 10 and {open_tasks} open tasks")
        results["volume"] = {
            "ledger": volume.ledger(bench, small=10, large=open_tasks, progress=progress)
        }


def _run_volume_on_parallel_stack(
    results: dict[str, Any], *, quick: bool, progress: Callable[[str], None]
) -> None:
    """Figure 7's fairness and client job, on devstack with worker processes (volume.py)."""
    count = VOLUME_QUICK if quick else VOLUME_TASKS
    images = VOLUME_QUICK if quick else VOLUME_JOB_IMAGES
    burst = VOLUME_QUICK if quick else VOLUME_BURST
    photos = VOLUME_QUICK if quick else VOLUME_PHOTOS
    held = VOLUME_QUICK if quick else VOLUME_HELD_OPEN
    progress("starting devstack with worker processes for figure 'volume' (fairness, job)")
    with volume.parallel_stack() as stack:
        progress("  warming every function's workers (a cold stack would slow B's baseline)")
        volume.warm_up(stack)
        sized = volume.DEVSTACK_RUNNING_LIMIT
        progress(f"figure 7: volume, {count} tasks of one client (limit {sized}) beside 20")
        fair = volume.fairness(
            stack, tasks_a=count, tasks_b=20, progress=progress, a_running_limit=sized
        )
        progress(f"figure 7: volume, {count} tasks of one client (default limit) beside 20")
        at_default = volume.fairness(stack, tasks_a=count, tasks_b=20, progress=progress)
        progress(f"figure 7c: imagegw submit-then-wait of {images} images, no retry code")
        job = volume.client_job(stack, images=images, progress=progress)
        progress(f"figure 7d: {burst} submits of one client from 16 threads, default limits")
        bursted = volume.burst(stack, submits=burst, progress=progress)
        progress(f"figure 7e: {photos} photos dropped into the inbox at once")
        dropped = volume.inbox_drop(stack, photos=photos, progress=progress)
    progress(f"figure 7f: the largest item that is not a task, {held} tasks open at a provider")
    items = volume.open_items(open_tasks=held, progress=progress)
    results["volume"] = {
        **results.get("volume", {}),
        "fairness": fair,
        "fairness_default_limit": at_default,
        "client_job": job,
        "burst": bursted,
        "inbox_drop": dropped,
        "open_items": items,
    }


def _run_routing_on_parallel_stack(
    results: dict[str, Any], *, tasks: int, progress: Callable[[str], None]
) -> None:
    """Figure 8 (routing.py), on devstack with worker processes, like figure 7."""
    progress("starting devstack with worker processes for figure 'routing'")
    with volume.parallel_stack() as stack:
        progress(f"figure 8: routing policies and hedging, {tasks} tasks per run")
        results["routing"] = routing.run(stack, tasks=tasks, progress=progress)


def merge_results(previous: dict[str, Any], rerun: dict[str, Any]) -> dict[str, Any]:
    """``previous`` with the figures of ``rerun`` replaced; the full run's meta is kept and
    the re-run is listed in it (``meta.reruns``), so the report says which figure is newer."""
    merged = {**previous, **{k: v for k, v in rerun.items() if k != "meta"}}
    meta = dict(previous.get("meta", rerun["meta"]))
    again = set(rerun["meta"]["figures"])  # an earlier re-run of the same figures is replaced
    kept = [r for r in meta.get("reruns", []) if not set(r["figures"]) <= again]
    meta["reruns"] = [*kept, rerun["meta"]]
    merged["meta"] = meta
    return merged


def main(argv: list[str] | None = None) -> int:
    """Run the figures, print the table, write results.json, RESULTS.md and docs/performance.md."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few repetitions (a smoke run)")
    parser.add_argument("--only", nargs="*", choices=FIGURES, default=list(FIGURES))
    parser.add_argument("--no-readme", action="store_true", help="leave docs/performance.md alone")
    parser.add_argument(
        "--routing-tasks",
        type=int,
        default=None,
        help=f"tasks per measured run of the routing figure (default {ROUTING_TASKS}; "
        f"{ROUTING_QUICK} with --quick)",
    )
    parser.add_argument("--output", type=Path, default=HERE)
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other figures of the output's results.json (a figure re-run alone)",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    quick = args.quick
    started = time.monotonic()

    def progress(message: str) -> None:
        _say(started, message)

    results: dict[str, Any] = {}
    # Each figure runs on a devstack of its own, so none measures what an earlier one left in
    # it: moto keeps every task of earlier figures (and copies a whole table for every
    # TransactWriteItems, which the client limits' reservation at submit is), and the bench
    # client's usage item grows with its open tasks. A fresh stack costs about 15 s.
    # A full run takes about two hours: each finished figure is kept in results.partial.json
    # (not tracked), so a run that dies later loses only the figure it was in.
    partial = args.output / "results.partial.json"
    args.output.mkdir(parents=True, exist_ok=True)
    for figure in FIGURES:
        if figure not in args.only:
            continue
        if figure == "scale":  # a devstack of its own, as `make devstack` runs it
            tasks = SCALE_QUICK if quick else scale.TASKS
            progress(f"figure 9: capacity, {tasks} tasks of {scale.CLIENTS} clients on devstack")
            results["scale"] = scale.run(tasks=tasks, progress=progress)
        elif figure == "routing":  # on a stack that runs functions in parallel, alone
            tasks = args.routing_tasks or (ROUTING_QUICK if quick else ROUTING_TASKS)
            _run_routing_on_parallel_stack(results, tasks=tasks, progress=progress)
        elif figure == "batch":  # a devstack of its own too
            lines = BATCH_QUICK if quick else batchrun.LINES
            progress(f"figure 10: a {lines}-line batch through imagegw batch, then resumed")
            results["batch"] = batchrun.run(lines=lines, progress=progress)
        else:
            progress(f"starting devstack for figure '{figure}' (moto, simulator, local API)")
            with bench_stack(time_scale=TIME_SCALES.get(figure, 0.1)) as bench:
                _run_figure(figure, bench, results, quick=quick, progress=progress)
            if figure == "volume":  # fairness and job on a stack running functions in parallel
                _run_volume_on_parallel_stack(results, quick=quick, progress=progress)
        partial.write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
        progress(f"figure '{figure}' done, kept in {partial}")
    results["caveats"] = CAVEATS
    results["meta"] = {
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {platform.system()}, "
        f"{__import__('os').cpu_count()} CPUs",
        "python": platform.python_version(),
        "seconds": time.monotonic() - started,
        "quick": quick,
        "figures": args.only,
    }
    previous = args.output / "results.json"
    if args.merge and previous.exists():
        results = merge_results(json.loads(previous.read_text()), results)
    (args.output / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (args.output / "RESULTS.md").write_text(markdown(results))
    if not args.no_readme:
        update_readme(HERE.parent / "docs" / "performance.md", results)
    partial.unlink(missing_ok=True)
    print()
    print(console(results))
    progress(f"done: {args.output / 'results.json'}, {args.output / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
