"""Figure 4: AWS cost per task, by path, from the requests each task really makes in devstack.

Each path runs tasks one after the other, so every request recorded between a submit and the
task settling is that task's: API Gateway requests and Lambda invocations (with their billed
duration at the function's configured memory) from devstack's runtime, DynamoDB units, S3,
EventBridge, SQS and Secrets Manager requests from botocore, Step Functions transitions from the
execution history. Functions are warmed first (a new execution environment also reads its two
secrets: reported apart). The sweeper's idle runs are a fixed monthly cost, not a per-task one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from image_gateway.models.request import ImageRequest
from image_gateway.providers.registry import get_provider

from bench.cost import RequestCounts, billed_gb_seconds, compat_call_counts, price
from bench.stack import BenchStack
from bench.stats import summary

TARGETS_USD = {"callback": 0.00010, "poll": 0.00025}
COMPAT_TARGET_USD = 0.0005
"""Issue 11: an image through the OpenAI-compatible surface, at the providers' latencies."""
ESM_REQUESTS_PER_MESSAGE = 2
"""ReceiveMessage + DeleteMessage by Lambda's SQS event source, per message (batch size 1)."""
SWEEPS_PER_MONTH = 60 * 24 * 30


@dataclass(frozen=True)
class Path:
    """One way a task gets finished, and the request that takes it."""

    name: str
    description: str
    body: dict[str, Any]


PATHS = [
    Path(
        "callback",
        "apimart 1K text-to-image, URL result, finished by the provider's callback (webhook, "
        "FIFO finalize queue, finalize function; the event source's receive and delete are "
        "added as 2 FIFO requests per message)",
        {
            "prompt": "a lighthouse at dawn [sim:latency=0.3]",
            "provider": "apimart",
            "aspect_ratio": "1:1",
            "resolution": "1K",
        },
    ),
    Path(
        "poll",
        "mountsea-async 1024x1024 low, base64 result, Step Functions poll loop "
        "(simulated latency = the expected one, so the first wait lands on the result)",
        {
            "prompt": "a red fox",
            "provider": "mountsea-async",
            "size": "1024x1024",
            "quality": "low",
        },
    ),
    Path(
        "poll-late",
        "as poll, but the provider takes 2.5x its expected latency (extra backoff polls)",
        {
            "prompt": "a red fox [sim:latency=3.75]",
            "provider": "mountsea-async",
            "size": "1024x1024",
            "quality": "low",
        },
    ),
]


def _task_counts(bench: BenchStack, body: dict[str, Any]) -> tuple[RequestCounts, dict[str, Any]]:
    bench.recorder.reset()
    task = bench.submit(body)
    bench.wait_settled([task["task_id"]])
    counts = bench.recorder.counts(sfn_transitions=bench.transitions(task["task_id"]))
    # Lambda's event source receives and deletes each finalize message (FIFO requests it bills
    # to the account); devstack's poller does that outside any invocation, so it is added here.
    finalisations = sum(1 for i in bench.recorder.invocations if i.function == "FinalizeFunction")
    counts.sqs_fifo_requests += ESM_REQUESTS_PER_MESSAGE * finalisations
    doc = bench.task(task["task_id"])
    http = list(bench.recorder.http)
    detail = {
        "status": doc["status"],
        "finalized_by": doc.get("finalized_by"),
        "poll_invocations": sum(
            1 for i in bench.recorder.invocations if i.function == "PollFunction"
        ),
        "provider_status_calls": sum(
            1 for h in http if h.method == "GET" and "/files/" not in h.url
        ),
        "operations": bench.recorder.operations(),
        "dynamodb_index_wru": bench.recorder.index_write_units(),
        "gb_seconds_by_function": _gb_seconds_by_function(bench),
    }
    return counts, detail


def _gb_seconds_by_function(bench: BenchStack) -> dict[str, float]:
    totals: dict[str, float] = {}
    for inv in bench.recorder.invocations:
        totals[inv.function] = totals.get(inv.function, 0.0) + billed_gb_seconds(
            inv.duration_ms, inv.memory_mb
        )
    return totals


def measure_path(bench: BenchStack, path: Path, tasks: int, progress: Any) -> dict[str, Any]:
    """Run ``tasks`` tasks of one path (after one warm-up) and price each."""
    warm_counts, _ = _task_counts(bench, path.body)  # imports + secrets of new environments
    samples: list[float] = []
    per_task: list[RequestCounts] = []
    details: list[dict[str, Any]] = []
    for index in range(tasks):
        counts, detail = _task_counts(bench, path.body)
        if detail["status"] != "succeeded":
            raise RuntimeError(f"{path.name} task ended {detail['status']}")
        per_task.append(counts)
        details.append(detail)
        samples.append(price(counts).total)
        progress(f"  cost/{path.name}: task {index + 1}/{tasks} ${samples[-1]:.7f}")
    mean = sum(per_task, RequestCounts()).scaled(1 / len(per_task))
    breakdown = price(mean)
    middle = details[len(details) // 2]
    return {
        "path": path.name,
        "description": path.description,
        "usd": summary(samples),
        "target_usd": TARGETS_USD.get(path.name),
        "met": (summary(samples)["median"] <= TARGETS_USD[path.name])
        if path.name in TARGETS_USD
        else None,
        "counts_per_task": mean.as_dict(),
        "usd_by_service": breakdown.by_service(),
        "usd_by_item": breakdown.by_item,
        "polls_per_task": summary([float(d["poll_invocations"]) for d in details]),
        "provider_status_calls_per_task": summary(
            [float(d["provider_status_calls"]) for d in details]
        ),
        "operations_per_task": middle["operations"],
        "gb_seconds_by_function": middle["gb_seconds_by_function"],
        "finalized_by": middle["finalized_by"],
        "dynamodb_index_wru_per_task": summary([d["dynamodb_index_wru"] for d in details])[
            "median"
        ],
        "warmup_secrets_calls": warm_counts.secrets_calls,
        "floor_usd": price(minimal_floor(path.name)).total,
    }


def minimal_floor(path: str) -> RequestCounts:
    """What a minimal gateway must make AWS do per task on this path (modelled).

    One HTTP request in, one task write at submit and one at the end (1 KB items, no indexes),
    one object, one event, and 100 ms of a 256 MB function per invocation; the poll path adds
    one poll invocation and its loop (Wait, Task, Choice, Succeed: 4 transitions).
    """
    lambda_seconds = billed_gb_seconds(100, 256)
    floor = RequestCounts(
        api_gateway_requests=1,
        lambda_invocations=2,
        lambda_gb_seconds=2 * lambda_seconds,
        dynamodb_wru=2,
        dynamodb_rru=1,
        s3_put_class=1,
        eventbridge_events=1,
    )
    if path == "callback":
        floor.api_gateway_requests += 1  # the provider's callback
    else:
        floor.sfn_transitions = 4
    return floor


def sweeper_fixed_cost(bench: BenchStack, runs: int = 3) -> dict[str, Any]:
    """The sweeper's idle runs (every minute, tasks or not): per run and per month."""
    bench.recorder.reset()
    for _ in range(runs):
        bench.devstack.runtime.invoke(
            "SweeperFunction", {"source": "aws.events", "detail-type": "Scheduled Event"}
        )
    per_run = bench.recorder.counts().scaled(1 / runs)
    usd = price(per_run).total
    return {
        "counts_per_run": per_run.as_dict(),
        "usd_per_run": usd,
        "usd_per_month": usd * SWEEPS_PER_MONTH,
    }


def modelled_sync_path(
    callback: dict[str, Any], provider_latency_s: float = 45.0
) -> dict[str, Any]:
    """The sync path (SQS dispatch, a Lambda that waits on the provider), modelled.

    Measuring it in devstack would price a wait shortened by the time scale, so it is modelled
    from the measured callback path: no callback request or webhook invocation, plus
    three SQS requests (send, receive, delete) and a 256 MB dispatch function that waits
    ``provider_latency_s`` for the provider's answer.
    """
    counts = RequestCounts(**callback["counts_per_task"])
    counts.api_gateway_requests = max(0.0, counts.api_gateway_requests - 1)
    counts.sqs_requests += 3
    counts.lambda_gb_seconds += billed_gb_seconds(provider_latency_s * 1000, 256)
    breakdown = price(counts)
    return {
        "path": "sync",
        "description": (
            f"modelled, not measured (devstack shortens the provider wait): callback path + "
            f"SQS dispatch + a 256 MB function waiting {provider_latency_s:.0f} s on the provider"
        ),
        "usd": {"median": breakdown.total},
        "counts_per_task": counts.as_dict(),
        "usd_by_service": breakdown.by_service(),
        "modelled": True,
    }


SAFETY_NET_DISPATCH_S = 0.1
"""The dispatch function's run on a compat task's delayed safety-net message: a task read, no
provider call (the compat function made the attempt)."""

COMPAT_PATHS: dict[str, tuple[str, dict[str, Any]]] = {
    "callback": ("apimart", {"prompt": "x", "aspect_ratio": "1:1", "resolution": "1K"}),
    "poll": ("mountsea-async", {"prompt": "x", "size": "1024x1024", "quality": "medium"}),
    "sync": ("mountsea-compat", {"prompt": "x", "size": "1024x1024", "quality": "medium"}),
}
"""The compat call modelled on each task path: the provider and request it is priced for."""


def modelled_compat_path(path: str, paths: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An OpenAI-compatible call on ``path`` (modelled from that path's task, measured or
    modelled): the function URL call waits the provider's documented latency for the request
    (its adapter's ``expected_latency_seconds``, where the first look lands) in a 192 MB
    function, instead of an HTTP API request and an API function invocation."""
    provider, body = COMPAT_PATHS[path]
    latency = get_provider(provider).expected_latency_seconds(ImageRequest.model_validate(body))
    # A sync provider is called by the compat function itself (service/compat.py): the task's
    # dispatch function only runs the safety-net message later, which finds nothing to do.
    base = (
        modelled_sync_path(paths["callback"], SAFETY_NET_DISPATCH_S)
        if path == "sync"
        else paths[path]
    )
    counts = RequestCounts(**base["counts_per_task"])
    counts.api_gateway_requests = max(0.0, counts.api_gateway_requests - 1)
    counts.lambda_invocations = max(0.0, counts.lambda_invocations - 1)
    # b64_json: a sync answer hands back the image the compat function just stored (no GET);
    # on the other paths another function stored it, and the answer GETs it from S3
    counts += compat_call_counts(wait_seconds=latency, inline_image=path != "sync")
    breakdown = price(counts)
    return {
        "path": f"compat-{path}",
        "description": (
            f"modelled: an OpenAI-compatible images.generate on {provider} ({path} path): the "
            f"{path} task, minus the HTTP API request and the API function's invocation, plus "
            f"the compat function (192 MB arm64) waiting {latency:.0f} s, the provider's "
            "documented latency (a sync provider's call made by the compat function itself, "
            "its dispatch function only reading the task), one look, and for b64_json one S3 "
            "GET (none on the sync path: the image it just stored is handed back from memory)"
        ),
        "usd": {"median": breakdown.total},
        "counts_per_task": counts.as_dict(),
        "usd_by_service": breakdown.by_service(),
        "modelled": True,
        "target_usd": COMPAT_TARGET_USD,
        "met": breakdown.total <= COMPAT_TARGET_USD,
    }


def run(bench: BenchStack, tasks: int, progress: Any) -> dict[str, Any]:
    """Every path, the sweeper's fixed cost and the modelled sync path."""
    paths = {}
    for path in PATHS:
        progress(f"cost: {path.name} path ({tasks} tasks, one at a time)")
        paths[path.name] = measure_path(bench, path, tasks, progress)
    paths["sync"] = modelled_sync_path(paths["callback"])
    for name in COMPAT_PATHS:
        paths[f"compat-{name}"] = modelled_compat_path(name, paths)
    poll, late = paths["poll"], paths["poll-late"]
    extra_polls = late["polls_per_task"]["median"] - poll["polls_per_task"]["median"]
    per_poll = (
        (late["usd"]["median"] - poll["usd"]["median"]) / extra_polls if extra_polls else math.nan
    )
    return {
        "paths": paths,
        "usd_per_extra_poll": per_poll,
        "sweeper": sweeper_fixed_cost(bench),
    }
