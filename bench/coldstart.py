"""Figure 1: cold start of each function against a fresh interpreter that only imports boto3.

Each sample is a fresh ``python -c`` with the function's environment (from template.yaml, as
devstack resolves it, with AWS_ENDPOINT_URL on the running moto): it imports the handler module
from ``functions/<name>/app.py`` by path and serves one real event; the clock (perf_counter,
inside the child) starts just before the import, so interpreter start-up, the same for both,
is left out. The floor child only runs ``import boto3``. Floor and functions alternate in every
round (each sample the fastest of ``tries`` children: other work on the machine can only slow
a child down), and each child waits until the stack is idle (no finalisation of an earlier
child's task running next to it). ``python -X importtime`` says which packages the import time
goes to, and each child names and times the AWS calls its first event made (the same calls
on AWS, each a network round trip). Each child also reports its own CPU time: the ratio of
those to the floor's (``cpu_ratio``) is what a busy shared machine disturbs least (the first
event's waits on the stack are not in it); the targets are on the wall-clock ratio.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore

from bench.stack import ZERO_LATENCY, BenchStack
from bench.stats import summary
from devstack.template import ROOT
from devstack.webhook_receiver import WebhookReceiver

# Median ratio to the same run's `import boto3`: every function at most 2x, the webhook (the
# cold start providers wait on) at most 1.4x.
DEFAULT_TARGET = 2.0
TARGETS = {"WebhookFunction": 1.4}
# Every function of template.yaml (a test keeps this in step with it).
FUNCTIONS = (
    "ApiFunction",
    "WebhookFunction",
    "FinalizeFunction",
    "PollFunction",
    "SweeperFunction",
    "UploadEditFunction",
    "DispatchFunction",
    "OpenAiCompatFunction",
    "WebhookDeliveryFunction",
    "ConsoleFunction",
    "BatchFunction",
    "ThumbnailFunction",
)
FIRST_EVENTS = {
    "ApiFunction": "POST /v1/images by a client of its own (apimart, callback path): 202",
    "WebhookFunction": "apimart's callback for a task: token checked, queued, 202",
    "FinalizeFunction": "the queued callback: provider asked, image downloaded and stored, "
    "task succeeded, event published",
    "PollFunction": "one poll step of a mountsea-async task that is done: finalised",
    "SweeperFunction": "the schedule, on a stack with nothing due (an idle sweep)",
    "UploadEditFunction": "the repository's sample inbox event (an upload it cannot use)",
    "DispatchFunction": "a task just submitted, taken off the dispatch queue: apimart's create "
    "call, task submitted",
    "OpenAiCompatFunction": "images.generate through the function URL, mountsea-compat (sync): "
    "the image in the answer",
    "WebhookDeliveryFunction": "the first attempt of a finished task's webhook, to a local "
    "receiver that verifies it",
    "ConsoleFunction": "GET /console (the page)",
    "BatchFunction": "the chunk of a one-line batch just created, taken off the batch queue: "
    "its task submitted",
    "ThumbnailFunction": "a succeeded task's event, taken off the thumbnail queue: its "
    "output read, the preview stored and named on the task",
}
"""Each function's first event, as the report says it."""
# The inbox function's first event: the repository's sample (an upload it cannot use, so the
# task it creates fails; the cold path is the same).
UPLOAD_EVENT = ROOT / "events" / "upload-edit-sqs.json"


def target(function: str) -> float:
    """The function's cold start target (median ratio to ``import boto3``)."""
    return TARGETS.get(function, DEFAULT_TARGET)


_CHILD = r"""
import json, sys, time
spec_in = json.loads(sys.stdin.read())
started, started_cpu = time.perf_counter(), time.process_time()
if spec_in["path"] is None:
    import boto3
    imported = time.perf_counter()
    served = imported
    outcome = None
    aws_calls = None
else:
    import importlib.util
    spec = importlib.util.spec_from_file_location("cold_handler", spec_in["path"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    imported = time.perf_counter()
    # The first event's AWS calls, each named, with when it started and ended (ms after the
    # import; a list append per call: microseconds against milliseconds per call). None when
    # the handler did not import botocore's client.
    aws_calls = None
    client_module = sys.modules.get("botocore.client")
    if client_module is not None:
        aws_calls = []
        original = client_module.BaseClient._make_api_call

        def counted(self, operation, params, _original=original, _calls=aws_calls):
            at = time.perf_counter()
            try:
                return _original(self, operation, params)
            finally:
                _calls.append([
                    self.meta.service_model.service_name + "." + operation,
                    (at - imported) * 1000,
                    (time.perf_counter() - imported) * 1000,
                ])

        client_module.BaseClient._make_api_call = counted

    class Context:
        function_name = spec_in["name"]
        memory_limit_in_mb = spec_in["memory_mb"]
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + spec_in["name"]
        aws_request_id = "cold-start"
        function_version = "$LATEST"

        def get_remaining_time_in_millis(self):
            return 30000

    result = module.lambda_handler(spec_in["event"], Context())
    served = time.perf_counter()
    outcome = None
    if isinstance(result, dict) and "statusCode" in result:
        outcome = result["statusCode"]
    elif isinstance(result, dict) and "batchItemFailures" in result:  # SQS: records that failed
        outcome = f"{len(result['batchItemFailures'])} of the batch failed"
def peak_rss_mb():
    # VmHWM belongs to this process image; ru_maxrss would include the forking parent's.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None
print(json.dumps({
    "import_ms": (imported - started) * 1000,
    "first_event_ms": (served - imported) * 1000,
    "total_ms": (served - started) * 1000,
    "cpu_ms": (time.process_time() - started_cpu) * 1000,
    "status": outcome,
    "maxrss_mb": peak_rss_mb(),
    "aws_calls": aws_calls,
}))
"""


CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
"""Never copied from this process into a child: a function child gets its role's."""


def _environment(bench: BenchStack, function: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("AWS_", "PATH", "HOME", "LANG", "PYTHON", "VIRTUAL_ENV"))
        and k not in CREDENTIAL_VARIABLES
    }
    if function is not None:
        spec = bench.devstack.runtime.get(function)
        # as the stack runs it, with its role's credentials: never this process's own AWS_*
        # variables, which hold another function's while the stack runs one in this process
        env.update(bench.devstack.runtime.function_environment(spec))
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "POWERTOOLS_LOG_LEVEL": "ERROR",
                "POWERTOOLS_METRICS_DISABLED": "true",
            }
        )
    return env


def _child(bench: BenchStack, function: str | None, event: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"path": None}
    if function is not None:
        fn = bench.devstack.runtime.get(function)
        module_file = fn.handler.split(".", 1)[0]
        spec = {
            "path": str(fn.code_dir / f"{module_file}.py"),
            "name": fn.name,
            "memory_mb": fn.memory_mb,
            "event": event,
        }
    done = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", _CHILD],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=_environment(bench, function),
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold start child for {function} failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _events(bench: BenchStack, rounds: int, receiver: WebhookReceiver) -> dict[str, list[Any]]:
    """One real first event per function and round (each webhook/poll event has its own task);
    the webhook deliveries go to ``receiver``, which must stay up while the children run."""
    callback_tasks, finalize_tasks = (
        [
            bench.submit(
                {
                    "prompt": f"cold {ZERO_LATENCY} [sim:no-callback]",
                    "provider": "apimart",
                    "aspect_ratio": "1:1",
                    "resolution": "1K",
                }
            )["task_id"]
            for _ in range(rounds)
        ]
        for _ in range(2)
    )
    poll_tasks = []
    for _ in range(rounds):
        task_id = bench.submit(
            {
                "prompt": f"cold {ZERO_LATENCY}",
                "provider": "mountsea-async",
                "size": "1024x1024",
                "quality": "low",
            }
        )["task_id"]
        bench.stop_poll_loop(task_id)
        poll_tasks.append(task_id)
    # The simulator renders a task's image at its first query; a provider that says done has
    # it ready. Rendered here, so that the finalize and poll children's first events (which
    # make that first query) measure the gateway, not the simulator's Pillow (~50 ms).
    for task_id in [*finalize_tasks, *poll_tasks]:
        _render_ahead(bench, task_id)
    # The api children's tasks are finished by the simulator's callback to this process, so
    # the sweeper children (run last) find nothing due and measure an idle sweep.
    # The submit comes from a client of its own, as a caller's first request would: by now the
    # bench's client has hundreds of open tasks (some never finished on purpose), and its usage
    # item (the open-task set that client limits keep) is far larger than a client's at its
    # default limit of 100.
    cold_key = DynamoDBApiKeyStore(bench.ddb, bench.info.table_name).create_key("coldstart")
    _, submit_event = bench.http_event(
        "POST",
        "/v1/images",
        {
            "prompt": f"cold {ZERO_LATENCY}",
            "provider": "apimart",
            "aspect_ratio": "1:1",
            "resolution": "1K",
        },
        api_key=cold_key,
    )
    # An openai SDK user's call, to a sync provider: the image is in the answer, no waiting.
    compat_event = bench.function_url_event(
        "OpenAiCompatFunction",
        "POST",
        "/openai/v1/images/generations",
        {
            "model": "gpt-image-2",
            "prompt": f"cold {ZERO_LATENCY}",
            "size": "1024x1024",
            "provider": "mountsea-compat",
        },
        api_key=DynamoDBApiKeyStore(bench.ddb, bench.info.table_name).create_key("coldcompat"),
    )
    return {
        **_queued_events(bench, rounds, receiver),
        "ApiFunction": [submit_event] * rounds,
        "WebhookFunction": [bench.callback_event("apimart", t)[1] for t in callback_tasks],
        "FinalizeFunction": [bench.finalize_event("apimart", t) for t in finalize_tasks],
        "PollFunction": [{"task_id": t, "attempt": 0, "wait_seconds": 1} for t in poll_tasks],
        "SweeperFunction": [{"source": "aws.events", "detail-type": "Scheduled Event"}] * rounds,
        "UploadEditFunction": [json.loads(UPLOAD_EVENT.read_text())] * rounds,
        "OpenAiCompatFunction": [compat_event] * rounds,
        "ConsoleFunction": [bench.http_event("GET", "/console")[1]] * rounds,
    }


def _render_ahead(bench: BenchStack, task_id: str, timeout: float = 10.0) -> None:
    """Have the simulator render the result of the task's provider task before a child asks."""
    simulator = bench.devstack.simulator
    assert simulator is not None
    deadline = time.monotonic() + timeout
    while True:
        provider_task_id = bench.task(task_id).get("provider_task_id")
        if provider_task_id and simulator.render_ahead(provider_task_id):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the simulator has no finished task for {task_id}")
        time.sleep(0.05)


def _queued_events(
    bench: BenchStack, rounds: int, receiver: WebhookReceiver
) -> dict[str, list[Any]]:
    """The first events of the functions behind a queue, taken off it before they see them.

    The dispatch function's: a task just submitted (queued, no provider call yet), to an async
    provider that calls back, the common case. The webhook delivery function's: the first
    attempt of a finished task's webhook to a local receiver that verifies it. The batch
    function's: the chunk message of a one-line batch. The thumbnail function's: the
    succeeded event of a task the stack finished (its preview not yet made).
    """
    dispatch_queue = bench.devstack.runtime.get("ApiFunction").environment["DISPATCH_QUEUE_URL"]
    webhook_queue = bench.devstack.runtime.get("WebhookDeliveryFunction").environment[
        "WEBHOOK_QUEUE_URL"
    ]
    body = {
        "prompt": f"cold {ZERO_LATENCY}",
        "provider": "apimart",
        "aspect_ratio": "1:1",
        "resolution": "1K",
    }
    dispatch = bench.held_messages(
        "DispatchFunction", dispatch_queue, rounds, lambda: bench.submit(body)
    )
    deliveries = bench.held_messages(
        "WebhookDeliveryFunction",
        webhook_queue,
        rounds,
        lambda: bench.submit({**body, "callback_url": receiver.url(DELIVERY_PATH)}),
    )
    batch_queue = bench.devstack.runtime.get("BatchFunction").environment["BATCH_QUEUE_URL"]

    def one_line_batch() -> None:
        line = {"custom_id": "cold", "body": body}
        function, event = bench.http_event("POST", "/v1/batches", {"requests": [line]})
        answer = bench.devstack.runtime.invoke(function, event)
        if answer["statusCode"] != 202:
            raise RuntimeError(f"batch answered {answer['statusCode']}: {answer['body']}")

    batches = bench.held_messages("BatchFunction", batch_queue, rounds, one_line_batch)
    thumbnails = bench.held_messages(
        "ThumbnailFunction",
        bench.devstack.queue_urls["ThumbnailQueue"],
        rounds,
        lambda: bench.submit(body),  # called back at once, finalised: its succeeded event
    )
    return {
        "DispatchFunction": dispatch,
        "WebhookDeliveryFunction": deliveries,
        "BatchFunction": batches,
        "ThumbnailFunction": thumbnails,
    }


def import_breakdown(bench: BenchStack, function: str, top: int = 8) -> list[dict[str, Any]]:
    """The packages that take most of the handler's import time (``python -X importtime``)."""
    fn = bench.devstack.runtime.get(function)
    path = fn.code_dir / f"{fn.handler.split('.', 1)[0]}.py"
    code = (
        f"import importlib.util as u; s = u.spec_from_file_location('h', {str(path)!r}); "
        "m = u.module_from_spec(s); s.loader.exec_module(m)"
    )
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=_environment(bench, function),
        timeout=120,
        check=False,
    )
    return importtime_ranking(done.stderr, top)


def importtime_ranking(stderr: str, top: int = 8) -> list[dict[str, Any]]:
    """``-X importtime`` output as self time summed by top-level package, largest first."""
    # Who really spends it (boto3, pydantic, ...), not the package that imported it.
    totals: dict[str, float] = {}
    line = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)")
    for raw in stderr.splitlines():
        found = line.match(raw)
        if found is None:
            continue
        package = found.group(3).split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(found.group(1)) / 1000
    ranked = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return [{"package": name, "self_ms": ms} for name, ms in ranked]


def run(
    bench: BenchStack,
    rounds: int,
    progress: Any,
    *,
    child: Callable[[BenchStack, str | None, Any], dict[str, Any]] = _child,
    breakdown: Callable[[BenchStack, str], list[dict[str, Any]]] | None = import_breakdown,
    tries: int = 1,
) -> dict[str, Any]:
    """``rounds`` rounds of: boto3 floor, then each function, every one a fresh interpreter.

    ``child`` and ``breakdown`` measure another copy of the handlers (bench/artefact.py: what
    ``sam build`` made, on Python 3.13); by default, the development tree on this interpreter.
    With ``tries`` > 1, each sample of a round (the floor's too) is the fastest of that many
    fresh children (each with its own event): on a machine shared with other work, a child can
    only be slowed down by it, so the fastest is the one least disturbed.
    """
    receiver = WebhookReceiver(bench.info.webhook_secret)
    try:
        return _run(bench, rounds, progress, child, breakdown, tries, receiver)
    finally:
        receiver.close()


DELIVERY_PATH = "/ok/coldstart"
"""Where the webhook delivery children's webhooks go (the receiver verifies and answers 204)."""


def _run(
    bench: BenchStack,
    rounds: int,
    progress: Any,
    child: Callable[[BenchStack, str | None, Any], dict[str, Any]],
    breakdown: Callable[[BenchStack, str], list[dict[str, Any]]] | None,
    tries: int,
    receiver: WebhookReceiver,
) -> dict[str, Any]:
    events = _events(bench, rounds * tries, receiver)
    samples: dict[str, list[dict[str, Any]]] = {"floor": [], **{f: [] for f in FUNCTIONS}}

    def fastest(function: str | None, round_events: list[Any]) -> dict[str, Any]:
        runs, failed = [], []
        for event in round_events:
            bench.quiesce()  # e.g. the api child's task, called back and finalised meanwhile
            try:
                runs.append(child(bench, function, event))
            except RuntimeError as error:  # one try of several: said, and the others count
                if len(round_events) == 1:
                    raise
                failed.append(str(error))
                progress(f"  a {function} child failed (its other tries count): {error!s:.300}")
        if not runs:
            raise RuntimeError(f"every try of {function} failed: {failed}")
        return min(runs, key=lambda sample: float(sample["total_ms"]))

    # The sweeper would finish the other children's tasks (late callbacks get a poll), so it
    # runs after them, paired with the same round's floor.
    in_rounds = [f for f in FUNCTIONS if f != "SweeperFunction"]
    for index in range(rounds):
        mine = slice(index * tries, (index + 1) * tries)
        samples["floor"].append(fastest(None, [None] * tries))
        for function in in_rounds:
            samples[function].append(fastest(function, events[function][mine]))
        progress(
            f"  cold start round {index + 1}/{rounds}: floor "
            f"{samples['floor'][-1]['total_ms']:.0f} ms, "
            + ", ".join(f"{f} {samples[f][-1]['total_ms']:.0f} ms" for f in in_rounds)
        )
    for index in range(rounds):
        mine = slice(index * tries, (index + 1) * tries)
        samples["SweeperFunction"].append(
            fastest("SweeperFunction", events["SweeperFunction"][mine])
        )
    if rounds:
        progress(
            "  cold start, sweeper (idle): "
            + ", ".join(f"{s['total_ms']:.0f} ms" for s in samples["SweeperFunction"])
        )
    # each delivery child's first event is a webhook the receiver verified and took (204),
    # not a failed connection and a retry queued (what a closed receiver would measure)
    taken = [d for d in receiver.received(DELIVERY_PATH) if d.status == 204]
    if len(taken) < len(samples["WebhookDeliveryFunction"]):
        raise RuntimeError(
            f"the webhook delivery children delivered {len(taken)} verified webhooks for "
            f"{len(samples['WebhookDeliveryFunction'])} samples: their first event was not a "
            "delivery"
        )
    floor = [s["total_ms"] for s in samples["floor"]]
    floor_cpu = [s["cpu_ms"] for s in samples["floor"]]
    result: dict[str, Any] = {
        "floor_boto3_import_ms": summary(floor),
        "floor_boto3_import_cpu_ms": summary(floor_cpu),
        "tries_per_sample": tries,
        "functions": {},
    }
    for function in FUNCTIONS:
        totals = [s["total_ms"] for s in samples[function]]
        ratios = [t / f for t, f in zip(totals, floor, strict=True)]
        ratio = summary(ratios)
        result["functions"][function] = {
            "total_ms": summary(totals),
            "import_ms": summary([s["import_ms"] for s in samples[function]]),
            "first_event_ms": summary([s["first_event_ms"] for s in samples[function]]),
            # The child's own CPU time (not the stack's), against the floor's: what other work
            # on a shared machine disturbs least.
            "cpu_ratio": summary(
                [s["cpu_ms"] / f for s, f in zip(samples[function], floor_cpu, strict=True)]
            ),
            "ratio": ratio,
            "first_event": FIRST_EVENTS[function],
            "target_ratio": target(function),
            "met": ratio["median"] <= target(function),
            "statuses": sorted({str(s["status"]) for s in samples[function]}),
            "maxrss_mb": summary([s["maxrss_mb"] for s in samples[function]]),
            "top_imports": breakdown(bench, function) if breakdown else [],
            "aws_calls": first_event_calls(samples[function]),
        }
    return result


def first_event_calls(samples: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The AWS calls the samples' first events made: how many, the milliseconds during which at
    least one was in flight (the sweeper's concurrent queries count once), and the first
    sample's operations by count, most first. None when a sample could not count them
    (botocore not imported at import)."""
    if not samples or any(s.get("aws_calls") is None for s in samples):
        return None
    counted: list[list[tuple[str, float, float]]] = [s["aws_calls"] for s in samples]
    operations = Counter(call[0] for call in counted[0])
    return {
        "calls": summary([len(c) for c in counted]),
        "ms": summary([in_flight_ms([(start, end) for _, start, end in c]) for c in counted]),
        "operations": dict(sorted(operations.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def in_flight_ms(spans: list[tuple[float, float]]) -> float:
    """How long at least one of the (start, end) spans was open: their union's length."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total
