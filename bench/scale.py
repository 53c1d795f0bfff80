"""Figure 9: capacity at volume. 2,000 tasks across 4 clients on devstack as ``make devstack``
runs it: every function in worker processes of its own, schedules on, IAM enforced, the
default time scale (0.02) and the default provider order (the providers' documented latencies,
scaled).

- **Sustained rate**: tasks done per second from the first submit to the last task done. Each
  client submits its share with the ``imagegw`` client (4 threads each) and waits with
  ``wait_all`` (``GET /v1/tasks?ids=``, 100 tasks a call). Every task must succeed.
- **The limiting hop**: each task's time is split from its stored document into *before its
  provider* (``created_at`` -> ``submitted_at``: the client's queue, the dispatch queue and
  function, provider slots) and *after* (``submitted_at`` -> ``finished_at``: the provider, the
  callback or poll loop, the finaliser), each against the same split of 20 tasks on the idle
  stack first. Every second the bench also samples each SQS queue's waiting messages and the
  machine's CPU use: the queue with the largest mean backlog is where work waited for a
  consumer; a CPU near 100 % says the machine (devstack's 2 cores), not a hop of the design,
  set the pace.
- **Pauses**: a separate process asks moto (``GET /``: S3's ``ListBuckets``, marked so the
  request count leaves it out) and the provider simulator (``GET /_sim/profile``) for an answer
  every 100 ms throughout; devstack's main process (moto, the simulator and the router share
  its interpreter) paused when an answer took over 1 s. Target: none.
- **Memory**: the main process's resident set before the clients submit and after every task
  is done, per task. Target: under 0.5 MB a task.
- **Requests per task at volume**: every request moto answered during the run, by
  ``service:Operation`` and by the access key that signed it (each function signs with its own
  role's: ``devstack.local_aws.RequestCounter``), per task, against the same for the 20
  idle-stack tasks: what the provider slots, the client ledger and the breaker add when many
  tasks run at once. The sweeper runs on its schedule whatever the tasks do, and less often on
  a busy machine, so its requests are counted apart: per second on the idle stack (no task, its
  background) and per task at volume (its background plus the tasks it recovered). Priced at
  the smallest billing unit of each request (a DynamoDB write 1 WRU, 2 in a transaction; a read
  1 RRU; bench/prices.py) as a lower bound of the extra cost per task, beside the cost figure's
  per-task total.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore
from imagegw import Gateway

from bench.prices import PRICES
from bench.stack import stored_task
from bench.stats import summary
from devstack.stack import DevStack, StackConfig

TASKS = 2000
CLIENTS = 4
THREADS_PER_CLIENT = 4
IDLE_TASKS = 20
PAUSE_SECONDS = 1.0
MEMORY_TARGET_MB_PER_TASK = 0.5
SAMPLE_SECONDS = 1.0
PROGRESS_SECONDS = 60.0  # a progress line of the 2,000-task run (about 25 min) this often
QUIET_SECONDS = 20.0
"""The sweeper's requests with no task are counted this long first (its background rate)."""
SWEEPER = "SweeperFunction"
LIFTED_RATE = 1_000_000
BODY: dict[str, Any] = {"size": "1024x1024"}  # the default order: apimart first (callbacks)

PROBE = r"""
import os, sys, time, httpx
out, urls = sys.argv[1], sys.argv[2:]
parent = os.getppid()
with open(out, "w", buffering=1) as f, httpx.Client(timeout=60) as http:
    while os.getppid() == parent:  # a bench killed outright leaves no probe behind
        for url in urls:
            t0 = time.monotonic()
            try:
                http.get(url, headers={"X-Bench-Probe": "1"})
            except httpx.HTTPError:
                pass
            f.write(f"{time.time():.3f} {time.monotonic() - t0:.4f} {url}\n")
        time.sleep(0.1)
"""
"""The pause probe: its own process, so a stalled devstack cannot stall the measuring too."""

NOT_PRICED = frozenset({"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:DeleteMessageBatch"})
"""devstack's own event-source polling: on AWS, Lambda's SQS pollers make these at their own
rate (billed, but not per task in a way devstack reproduces)."""
MEASURING = frozenset({"bench:probe", "sqs:GetQueueAttributes"})
"""The bench's own requests (the pause probe, the backlog sampler): not the stack's work."""

_DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
_DYNAMODB_READS = {"GetItem", "Query", "Scan"}


@dataclass
class _Sampler:
    """Every ``SAMPLE_SECONDS``: each queue's waiting messages and the machine's CPU use."""

    sqs: Any
    queues: dict[str, str]
    backlog: dict[str, list[int]] = field(default_factory=dict)
    cpu: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scale-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def latest(self) -> str:
        """The last sample, for a progress line: CPU and the queues with messages waiting."""
        waiting = {n: v[-1] for n, v in self.backlog.items() if v and v[-1]}
        cpu = f"CPU {self.cpu[-1]:.0%}" if self.cpu else "CPU -"
        queues = ", ".join(f"{n} {c}" for n, c in sorted(waiting.items())) or "no queue backlog"
        return f"{cpu}; waiting: {queues}"

    def _run(self) -> None:
        busy, total = _cpu_times()
        while not self._stop.wait(SAMPLE_SECONDS):
            for name, url in self.queues.items():
                attrs = self.sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]
                self.backlog.setdefault(name, []).append(int(attrs["ApproximateNumberOfMessages"]))
            busy2, total2 = _cpu_times()
            if total2 > total:
                self.cpu.append((busy2 - busy) / (total2 - total))
            busy, total = busy2, total2


@dataclass
class _GcWatch:
    """Every garbage collection of this process (devstack's main one) while installed: its
    generation and how long it held the interpreter (a full collection of moto's heap stops
    every thread of it, the probe's answers included)."""

    seconds: dict[int, list[float]] = field(default_factory=dict)
    _t0: float = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            took = time.perf_counter() - self._t0
            self.seconds.setdefault(info["generation"], []).append(took)

    @contextmanager
    def installed(self) -> Iterator[_GcWatch]:
        gc.callbacks.append(self)
        try:
            yield self
        finally:
            gc.callbacks.remove(self)

    def report(self) -> dict[str, Any]:
        """Per generation: collections, total and slowest seconds, those over the pause limit."""
        return {
            f"gen{gen}": {
                "collections": len(s),
                "total_seconds": sum(s),
                "max_seconds": max(s),
                "over_limit": sum(1 for x in s if x > PAUSE_SECONDS),
            }
            for gen, s in sorted(self.seconds.items())
        }


def _cpu_times() -> tuple[float, float]:
    """Busy and total jiffies of every CPU (``/proc/stat``)."""
    fields_ = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields_[3] + fields_[4]  # idle + iowait
    return sum(fields_) - idle, sum(fields_)


def _rss_mb() -> float:
    """This process's resident set (``VmRSS``), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


@contextmanager
def _probe(urls: list[str]) -> Iterator[Path]:
    """Run the pause probe against ``urls`` for the span of the block; its record file."""
    out = Path(tempfile.mkdtemp(prefix="bench-scale-")) / "probe.txt"
    child = subprocess.Popen([sys.executable, "-c", PROBE, str(out), *urls])  # noqa: S603 (ours)
    try:
        yield out
    finally:
        child.terminate()
        child.wait(timeout=10)


def _pauses(record: Path) -> dict[str, Any]:
    """The probe's answers: count, slowest, p99, and those over ``PAUSE_SECONDS``, per target."""
    by_target: dict[str, list[float]] = {}
    for line in record.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            by_target.setdefault(parts[2], []).append(float(parts[1]))
    out: dict[str, Any] = {}
    for url, seconds in by_target.items():
        ordered = sorted(seconds)
        out[url] = {
            "answers": len(ordered),
            "max_seconds": ordered[-1],
            "p99_seconds": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "over_limit": sum(1 for s in ordered if s > PAUSE_SECONDS),
        }
    return out


def _split(doc: dict[str, Any]) -> tuple[float, float] | None:
    """Seconds before the provider got the task, and after (to done)."""
    if not (doc.get("submitted_at") and doc.get("finished_at")):
        return None
    created = datetime.fromisoformat(doc["created_at"])
    submitted = datetime.fromisoformat(doc["submitted_at"])
    finished = datetime.fromisoformat(doc["finished_at"])
    return (submitted - created).total_seconds(), (finished - submitted).total_seconds()


def _stages(docs: list[dict[str, Any]]) -> dict[str, Any]:
    splits = [s for d in docs if (s := _split(d)) is not None]
    if not splits:
        return {"before_provider": None, "after_provider": None}
    return {
        "before_provider": summary([s[0] for s in splits]),
        "after_provider": summary([s[1] for s in splits]),
    }


def _min_units(name: str, count: float) -> dict[str, float]:
    """The smallest billing units ``count`` requests named ``name`` can cost."""
    service, _, operation = name.partition(":")
    if service == "dynamodb":
        if operation in _DYNAMODB_WRITES:
            return {"dynamodb_wru": count}
        if operation == "TransactWriteItems":
            return {"dynamodb_wru": 2 * count}
        if operation in _DYNAMODB_READS or operation == "BatchGetItem":
            return {"dynamodb_rru": count}
    if service == "sqs" and operation in {"SendMessage", "ReceiveMessage", "DeleteMessage"}:
        return {"sqs_requests": count}
    if service == "events" and operation == "PutEvents":
        return {"eventbridge_events": count}
    if service == "s3":
        return {"s3_put_class": count} if operation in {"PUT", "POST"} else {"s3_get_class": count}
    if service == "secretsmanager":
        return {"secrets_calls": count}
    if service == "kms":
        return {"kms_requests": count}
    return {}


def _price_min(calls: dict[str, float]) -> float:
    """A lower bound of what ``calls`` cost (:func:`_min_units` at bench/prices.py's prices)."""
    total = 0.0
    for name, count in calls.items():
        if name in NOT_PRICED:
            continue
        for unit, n in _min_units(name, count).items():
            total += n * PRICES[unit].usd_per_unit
    return total


class _Client:
    """A client with its own API key (per-minute rate lifted; running limit the default)."""

    def __init__(self, devstack: DevStack, ddb: Any, name: str) -> None:
        assert devstack.info is not None
        self.info = devstack.info
        self.id = f"{name}-{uuid.uuid4().hex[:6]}"
        self.key = DynamoDBApiKeyStore(ddb, self.info.table_name).create_key(self.id)
        ddb.update_item(
            TableName=self.info.table_name,
            Key={"pk": {"S": f"LIMITS#{self.id}"}, "sk": {"S": "LIMITS"}},
            UpdateExpression="SET requests_per_minute = :r",
            ExpressionAttributeValues={":r": {"N": str(LIFTED_RATE)}},
        )

    def run(self, prompts: list[str], timeout: float) -> list[str]:
        """Submit every prompt (``THREADS_PER_CLIENT`` threads), then wait for all; the ids."""
        with Gateway(self.info.api_url, self.key) as gateway:

            def one(prompt: str) -> str:
                return gateway.submit({**BODY, "prompt": prompt}).id

            with ThreadPoolExecutor(THREADS_PER_CLIENT) as pool:
                ids = list(pool.map(one, prompts))
            gateway.wait_all(ids, timeout=timeout)
        return ids


Counts = Counter[tuple[str, str]]
"""Requests by (access key id, ``service:Operation``): ``RequestCounter.snapshot_by_key``."""


def _callers(devstack: DevStack) -> dict[str, str]:
    """Each function's access key id -> its logical id (its role's key, with IAM on)."""
    out: dict[str, str] = {}
    for resource, spec in devstack.template["Resources"].items():
        if spec["Type"] == "AWS::Serverless::Function":
            key = devstack.runtime.get(resource).credentials.get("AWS_ACCESS_KEY_ID")
            if key:
                out[key] = resource
    return out


def _split_calls(
    span: Counts, callers: dict[str, str], apart: str = SWEEPER
) -> tuple[Counter[str], Counter[str]]:
    """A span's requests by ``service:Operation``: those of every caller but ``apart``, and
    ``apart``'s own (the bench's measuring requests left out of both)."""
    rest: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for (key, name), n in span.items():
        if name in MEASURING:
            continue
        (own if callers.get(key) == apart else rest)[name] += n
    return rest, own


def _per_task(before: Counts, after: Counts, tasks: int, callers: dict[str, str]) -> dict[str, Any]:
    """Requests per task between two snapshots: the stack's but the sweeper's (``tasks``), and
    the sweeper's apart (``sweeper``)."""
    rest, sweeper = _split_calls(after - before, callers)
    return {"tasks": _per(rest, tasks), "sweeper": _per(sweeper, tasks)}


def _per(calls: Counter[str], divisor: float) -> dict[str, float]:
    """``calls`` divided by ``divisor``, those under 0.005 left out."""
    return {name: n / divisor for name, n in sorted(calls.items()) if n / divisor >= 0.005}


def run(*, tasks: int = TASKS, clients: int = CLIENTS, progress: Any) -> dict[str, Any]:
    """The figure: ``tasks`` tasks across ``clients`` clients on a devstack of its own."""
    state = Path(tempfile.mkdtemp(prefix="bench-scale-")) / "stack.json"
    config = StackConfig(log_level="ERROR", state_file=state, runtime="process")
    with DevStack(config) as devstack:
        info = devstack.info
        counter = devstack.aws.requests
        assert info is not None and counter is not None
        ddb = boto3.client("dynamodb")
        sqs = boto3.client("sqs")
        queues = {
            url.rsplit("/", 1)[-1]: url
            for url in sqs.list_queues().get("QueueUrls", [])
            if "DeadLetter" not in url
        }
        timeout = 600 + tasks * 2.0

        callers = _callers(devstack)
        quiet = counter.snapshot_by_key()
        time.sleep(QUIET_SECONDS)
        _, sweeping = _split_calls(counter.snapshot_by_key() - quiet, callers)
        idle = _Client(devstack, ddb, "scale-idle")
        counts0 = counter.snapshot_by_key()
        idle_ids = idle.run([f"idle {i}" for i in range(IDLE_TASKS)], timeout)
        counts1 = counter.snapshot_by_key()
        idle_docs = [stored_task(ddb, info.table_name, t) for t in idle_ids]
        progress(f"  {IDLE_TASKS} tasks on the idle stack: done")

        members = [_Client(devstack, ddb, f"scale-{n}") for n in range(clients)]
        share = tasks // clients
        rss_before = _rss_mb()
        sampler = _Sampler(sqs, queues)
        urls = [f"{info.moto_url}/", f"{info.simulator_url}/_sim/profile"]
        with _probe(urls) as record, _GcWatch().installed() as collections:
            sampler.start()
            started = time.monotonic()
            counts2 = counter.snapshot_by_key()
            with ThreadPoolExecutor(clients) as pool:
                futures = [
                    pool.submit(c.run, [f"scale {n}.{i}" for i in range(share)], timeout)
                    for n, c in enumerate(members)
                ]
                while wait(futures, timeout=PROGRESS_SECONDS).not_done:  # a line a minute
                    progress(f"  {time.monotonic() - started:.0f} s: {sampler.latest()}")
                ids = [t for f in futures for t in f.result()]
            seconds = time.monotonic() - started
            counts3 = counter.snapshot_by_key()
            sampler.stop()
            heap = len(gc.get_objects())  # objects the collector walks, at the run's end
            frozen = gc.get_freeze_count()  # and those devstack.heap froze out of its reach
        rss_after = _rss_mb()
        progress(f"  {len(ids)} tasks of {clients} clients done in {seconds:.0f} s")
        docs = [stored_task(ddb, info.table_name, t) for t in ids]

    statuses = Counter(d["status"] for d in docs)
    idle_split = _per_task(counts0, counts1, IDLE_TASKS, callers)
    volume_split = _per_task(counts2, counts3, len(ids), callers)
    idle_calls, volume_calls = idle_split["tasks"], volume_split["tasks"]
    extra = {
        name: volume_calls.get(name, 0.0) - idle_calls.get(name, 0.0)
        for name in sorted(set(idle_calls) | set(volume_calls))
    }
    backlog = {
        name: {"mean": statistics.fmean(v), "max": max(v)}
        for name, v in sampler.backlog.items()
        if v
    }
    busiest = max(backlog.items(), key=lambda kv: kv[1]["mean"], default=(None, None))
    pauses = _pauses(record)
    worst = max((p["max_seconds"] for p in pauses.values()), default=0.0)
    over = sum(p["over_limit"] for p in pauses.values())
    growth = (rss_after - rss_before) / max(len(ids), 1)
    idle_stages = _stages(idle_docs)
    volume_stages = _stages(docs)
    return {
        "tasks": len(ids),
        "clients": clients,
        "seconds": seconds,
        "tasks_per_second": len(ids) / seconds,
        "statuses": dict(statuses),
        "all_succeeded": statuses.get("succeeded", 0) == len(ids),
        "stages": {"idle": idle_stages, "volume": volume_stages},
        "queue_backlog": backlog,
        "busiest_queue": busiest[0],
        "cpu_busy": summary(sampler.cpu) if sampler.cpu else None,
        "cpus": os.cpu_count(),
        "pauses": pauses,
        "garbage_collections": collections.report(),
        "heap_objects_tracked": heap,
        "heap_objects_frozen": frozen,
        "worst_pause_seconds": worst,
        "answers_over_limit": over,
        "pause_limit_seconds": PAUSE_SECONDS,
        "pause_met": over == 0,
        "rss_mb": {"before": rss_before, "after": rss_after},
        "memory_mb_per_task": growth,
        "memory_target_mb_per_task": MEMORY_TARGET_MB_PER_TASK,
        "memory_met": growth < MEMORY_TARGET_MB_PER_TASK,
        "calls_per_task": {"idle": idle_calls, "volume": volume_calls},
        "sweeper_calls_per_second_idle": _per(sweeping, QUIET_SECONDS),
        "sweeper_calls_per_task": {
            "idle": idle_split["sweeper"],
            "volume": volume_split["sweeper"],
        },
        "sweeper_usd_per_task_min": {
            "idle": _price_min(idle_split["sweeper"]),
            "volume": _price_min(volume_split["sweeper"]),
        },
        "extra_calls_per_task": {k: v for k, v in extra.items() if abs(v) >= 0.005},
        "extra_usd_per_task_min": _price_min({k: v for k, v in extra.items() if v > 0}),
        "calls_usd_per_task_min": {
            "idle": _price_min(idle_calls),
            "volume": _price_min(volume_calls),
        },
    }
