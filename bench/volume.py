"""Figure 7: volume. One client's flood of tasks beside another's 20; the ledger's cost per submit
at 10 and at 1,000 open tasks; the ``imagegw`` client's submit-then-wait job with no retry code.

Fairness and the client job run on a devstack as a deployment runs: every function in worker
processes of its own, concurrently, with the sweeper on schedule, at devstack's default time
scale (:func:`parallel_stack`). The ledger's write units need the call recorder, which only the
inline bench stack has (one invocation at a time in this process).

Fairness: after a warm-up (16 tasks through every function, so no baseline pays a worker's first
import), client B's 20 tasks run alone on the stack first (the baseline), then client A submits
its tasks (8 threads; most of them queue behind A's running limit) and B submits the same 20
just after. B's median time-to-done (``created_at`` to ``finished_at`` of the task view) over
the baseline's is the ratio; every task of A and B must succeed. It runs twice:

- A's running limit sized to what is behind it (:data:`DEVSTACK_RUNNING_LIMIT`), as an operator
  sizes a client's limit to its providers' slots. This is the figure with the 2x target: it
  measures the gateway's scheduling (B's share beside A's running tasks, whatever A's queue).
- A at the stack's default running limit (100), for the record. devstack on 2 cores finishes
  about 2 tasks a second, so A's 100 running tasks keep every function's workers busy and B's
  polls and finalisations wait their turn in the machine's backlog: a saturation Lambda would
  not have (each invocation its own environment), not the gateway's queueing (B's wait before
  its provider is reported beside it).

Ledger write units: a paused client (``max_running_tasks`` 0, so every task stays queued) holds
10 open tasks, then 1,000; at each, submits of one more task are recorded (the call recorder)
and every write of the submit is priced on the item it left in the table (read back outside
the invocation, so not counted): 1 WRU per KB, twice that in a transaction, at least one per
item. A deleted item is priced at the minimum.

Issue 19's checks, on the same stack after the job: 300 submits of one client from 16 threads
at its default limits (every answer 202, every task succeeds: what was 100 x 202 and 200 x 429),
150 photos dropped into the inbox at once under the stack's own rules (every one succeeds: was
100 succeeded and 50 failed ``too_many_open_tasks``); then, on a stack of its own at time scale 1
(no deadline ends a task during the count), 400 of one client's tasks held open at a provider
and every item of the table that is not a task read: the largest must stay under 8 KB (the
ledger's sets of open task ids were about 47 bytes a task).

The clients are made the operator's way: an API key, then an ``update-item`` on the client's
``LIMITS`` item (docs/limits.md). Only the per-minute rate is
lifted for the clients that submit hundreds of tasks in a minute; the running limit stays the
stack's default.
"""

from __future__ import annotations

import io
import json
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore
from image_gateway.adapters.dynamodb_tasks import DynamoDBTaskStore
from imagegw import Gateway
from PIL import Image, ImageDraw

from bench.cost import item_size, write_units
from bench.stack import TERMINAL, BenchStack, stored_task
from bench.stats import summary
from devstack.stack import DevStack, StackConfig, StackInfo

PROVIDER = "mountsea-async"  # async and poll-only: the stack's own polling, no callbacks
THREADS = 8
FAIRNESS_TARGET = 2.0
DEVSTACK_RUNNING_LIMIT = 8
"""Client A's running limit in the sized fairness run: devstack on this 2-core machine finishes
about 2 tasks a second and a task takes 3-5 s there end to end, so about 8 running tasks keep
it busy without a backlog (the same order as one provider's slots on AWS)."""
WRU_TARGET = 1.1
LIFTED_RATE = 1_000_000
LEDGER_SAMPLES = 5


@dataclass
class Stack:
    """What the fairness and client-job figures need of a running stack."""

    info: StackInfo
    ddb: Any

    def task(self, task_id: str) -> dict[str, Any]:
        """The stored task document."""
        return stored_task(self.ddb, self.info.table_name, task_id)


@contextmanager
def parallel_stack(time_scale: float = StackConfig.time_scale) -> Iterator[Stack]:
    """devstack as ``make devstack`` runs it (worker processes, schedules on, time scale 0.02
    unless told), with its state file out of the way of a developer's running devstack."""
    state = Path(tempfile.mkdtemp(prefix="bench-volume-")) / "stack.json"
    config = StackConfig(
        log_level="ERROR", state_file=state, runtime="process", time_scale=time_scale
    )
    with DevStack(config) as devstack:
        assert devstack.info is not None
        yield Stack(devstack.info, boto3.client("dynamodb"))


def _body(prompt: str) -> dict[str, Any]:
    return {"prompt": prompt, "provider": PROVIDER, "size": "1024x1024"}


class _Client:
    """A client of the stack with its own API key and limits, over the local HTTP API."""

    def __init__(self, bench: BenchStack | Stack, name: str, **limits: int) -> None:
        self.bench = bench
        self.id = f"{name}-{uuid.uuid4().hex[:6]}"
        self.key = DynamoDBApiKeyStore(bench.ddb, bench.info.table_name).create_key(self.id)
        if limits:
            names = ", ".join(f"{k} = :{k}" for k in limits)
            bench.ddb.update_item(
                TableName=bench.info.table_name,
                Key={"pk": {"S": f"LIMITS#{self.id}"}, "sk": {"S": "LIMITS"}},
                UpdateExpression=f"SET {names}",
                ExpressionAttributeValues={f":{k}": {"N": str(v)} for k, v in limits.items()},
            )

    def submit_many(self, prompts: list[str]) -> list[str]:
        """Submit every prompt with ``THREADS`` threads; the task ids, in order."""

        def one(prompt: str) -> str:
            with httpx.Client(
                base_url=self.bench.info.api_url,
                headers={"Authorization": f"Bearer {self.key}"},
                timeout=120,
            ) as http:
                answer = http.post("/v1/images", json=_body(prompt))
                if answer.status_code != 202:
                    raise RuntimeError(f"submit answered {answer.status_code}: {answer.text}")
                return str(answer.json()["task_id"])

        with ThreadPoolExecutor(THREADS) as pool:
            return list(pool.map(one, prompts))


def _views(bench: BenchStack | Stack, task_ids: list[str], timeout: float) -> list[dict[str, Any]]:
    """Wait until every task is terminal (bounded); their stored documents."""
    deadline = time.monotonic() + timeout
    pending = list(task_ids)
    while pending:
        pending = [t for t in pending if bench.task(t)["status"] not in TERMINAL]
        if not pending:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} of {len(task_ids)} tasks not done")
        time.sleep(0.5)
    return [bench.task(t) for t in task_ids]


def _seconds_to_done(doc: dict[str, Any]) -> float:
    created = datetime.fromisoformat(doc["created_at"])
    finished = datetime.fromisoformat(doc["finished_at"])
    return (finished - created).total_seconds()


def _seconds_to_provider(doc: dict[str, Any]) -> float | None:
    """created_at to submitted_at: how long the task waited before reaching its provider."""
    if not doc.get("submitted_at"):
        return None
    created = datetime.fromisoformat(doc["created_at"])
    return (datetime.fromisoformat(doc["submitted_at"]) - created).total_seconds()


def _statuses(docs: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for doc in docs:
        out[doc["status"]] = out.get(doc["status"], 0) + 1
    return out


def warm_up(bench: Stack, tasks: int = 2 * THREADS) -> None:
    """A few tasks through every function first: a worker's first invocation imports its
    handler, so a figure's baseline taken on a cold stack would be slower than its load run."""
    client = _Client(bench, "volume-warm")
    _views(bench, client.submit_many([f"warm {i}" for i in range(tasks)]), 300)


def fairness(
    bench: Stack,
    *,
    tasks_a: int,
    tasks_b: int,
    progress: Any,
    a_running_limit: int | None = None,
) -> dict[str, Any]:
    """B's median time-to-done beside A's ``tasks_a`` tasks, over B alone on the same stack;
    A at ``a_running_limit`` running tasks (None: the stack's default)."""
    limits = {} if a_running_limit is None else {"max_running_tasks": a_running_limit}
    client_a = _Client(bench, "volume-a", requests_per_minute=LIFTED_RATE, **limits)
    client_b = _Client(bench, "volume-b")
    timeout = 300 + tasks_a * 1.0
    started = time.monotonic()
    alone = _views(bench, client_b.submit_many([f"alone {i}" for i in range(tasks_b)]), timeout)
    progress(f"  B alone: {tasks_b} tasks in {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    ids_a = client_a.submit_many([f"flood {i}" for i in range(tasks_a)])
    ids_b = client_b.submit_many([f"beside {i}" for i in range(tasks_b)])
    progress(f"  A's {tasks_a} and B's {tasks_b} submitted in {time.monotonic() - started:.1f} s")
    beside = _views(bench, ids_b, timeout)
    progress(f"  B beside A: done after {time.monotonic() - started:.1f} s")
    flood = _views(bench, ids_a, timeout)
    seconds = time.monotonic() - started
    progress(f"  A: {tasks_a} tasks done after {seconds:.1f} s")
    base = summary([_seconds_to_done(d) for d in alone if d.get("finished_at")])
    loaded = summary([_seconds_to_done(d) for d in beside if d.get("finished_at")])
    a_done = [_seconds_to_done(d) for d in flood if d.get("finished_at")]
    ratio = loaded["median"] / base["median"]
    # where B's extra time went: before its provider got the task, or after
    waits = {
        name: [w for d in docs if (w := _seconds_to_provider(d)) is not None]
        for name, docs in (("alone", alone), ("beside", beside))
    }
    everyone = alone + beside + flood
    succeeded = sum(1 for d in everyone if d["status"] == "succeeded")
    return {
        "provider": PROVIDER,
        "tasks_a": tasks_a,
        "tasks_b": tasks_b,
        "a_running_limit": a_running_limit,
        "b_alone_seconds": base,
        "b_beside_a_seconds": loaded,
        "a_seconds": summary(a_done) if a_done else None,
        "a_wall_seconds": seconds,
        "b_to_provider_seconds": {k: summary(v) if v else None for k, v in waits.items()},
        "ratio": ratio,
        "target_ratio": FAIRNESS_TARGET,
        "statuses": _statuses(everyone),
        "expired": sum(1 for d in everyone if d["status"] == "expired"),
        "met": ratio <= FAIRNESS_TARGET and succeeded == len(everyone),
    }


def _priced_submit(bench: BenchStack, key: str, prompt: str) -> tuple[float, int]:
    """One submit through the api function, recorded; its write units and writes."""
    recorder = bench.recorder
    recorder.reset()
    recorder.keep_params = True
    try:
        function, event = bench.http_event("POST", "/v1/images", _body(prompt), api_key=key)
        answer = bench.devstack.runtime.invoke(function, event)
        if answer["statusCode"] != 202:
            raise RuntimeError(f"submit answered {answer['statusCode']}: {answer['body']}")
        calls = [c for c in recorder.aws if c.service == "dynamodb"]
    finally:
        recorder.keep_params = False
    wru = 0.0
    writes = 0
    for call in calls:
        params = call.params or {}
        if call.operation == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                (kind, spec), *_ = entry.items()
                key_ = spec["Item"] if kind == "Put" else spec["Key"]
                wru += 2 * _units_now(bench, spec["TableName"], key_)
                writes += 1
        elif call.operation in ("PutItem", "UpdateItem", "DeleteItem"):
            key_ = params["Item"] if call.operation == "PutItem" else params["Key"]
            wru += _units_now(bench, params["TableName"], key_)
            writes += 1
        elif call.operation == "BatchWriteItem":
            for table, requests in params.get("RequestItems", {}).items():
                for request in requests:
                    (kind, spec), *_ = request.items()
                    key_ = spec["Item"] if kind == "PutRequest" else spec["Key"]
                    wru += _units_now(bench, table, key_)
                    writes += 1
    return wru, writes


def _units_now(bench: BenchStack, table: str, key: dict[str, Any]) -> int:
    """Write units of the item at ``key`` as the write left it (observer read, not counted)."""
    found = bench.ddb.get_item(
        TableName=table,
        Key={"pk": key["pk"], "sk": key["sk"]},
        ConsistentRead=True,
    ).get("Item")
    return write_units(item_size(found) if found else 0)


def ledger(bench: BenchStack, *, small: int, large: int, progress: Any) -> dict[str, Any]:
    """Write units per submit of a paused client at ``small`` and at ``large`` open tasks."""
    paused = _Client(bench, "volume-paused", max_running_tasks=0, requests_per_minute=LIFTED_RATE)
    out: dict[str, Any] = {}
    open_tasks = 0
    for target in (small, large):
        open_tasks += len(
            paused.submit_many([f"held {i} [sim:never]" for i in range(target - open_tasks)])
        )
        samples = [
            _priced_submit(bench, paused.key, f"measured {i} [sim:never]")
            for i in range(LEDGER_SAMPLES)
        ]
        open_tasks += LEDGER_SAMPLES
        wru = [s[0] for s in samples]
        out[str(target)] = {"wru": summary(wru), "writes": samples[0][1]}
        progress(f"  submit at {target} open tasks: {statistics.median(wru):.1f} WRU")
    ratio = out[str(large)]["wru"]["median"] / out[str(small)]["wru"]["median"]
    return {
        "open_small": small,
        "open_large": large,
        "at": out,
        "ratio": ratio,
        "target_ratio": WRU_TARGET,
        "met": ratio <= WRU_TARGET,
    }


def client_job(bench: Stack, *, images: int, progress: Any) -> dict[str, Any]:
    """The ``imagegw`` client submits ``images`` tasks and waits for each: no retry code here."""
    client = _Client(bench, "volume-sdk", requests_per_minute=LIFTED_RATE)
    failures: list[str] = []
    started = time.monotonic()

    def job(i: int) -> bool:
        with Gateway(bench.info.api_url, client.key) as gateway:
            task = gateway.submit(_body(f"job {i}"))
            info = task.wait(timeout=300 + images * 1.0, raise_on_failure=False)
            return info.succeeded

    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(job, i) for i in range(images)]
        succeeded = 0
        for future in futures:
            try:
                succeeded += bool(future.result())
            except Exception as exc:  # counted: what a caller without retry code would see
                failures.append(f"{type(exc).__name__}: {exc}")
    seconds = time.monotonic() - started
    progress(f"  imagegw job: {succeeded}/{images} succeeded in {seconds:.1f} s")
    return {
        "images": images,
        "succeeded": succeeded,
        "failed": images - succeeded,
        "errors": failures[:5],
        "seconds": seconds,
        "threads": THREADS,
        "target_failed": 0,
        "met": succeeded == images,
    }


def _photo(i: int) -> bytes:
    """A real 512x512 PNG photo, each one different."""
    image = Image.new("RGB", (512, 512), (40 + i % 200, 90, 160))
    ImageDraw.Draw(image).rectangle((100 + i % 50, 120, 380, 400), fill=(230, 200, 60))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def inbox_drop(bench: Stack, *, photos: int, progress: Any) -> dict[str, Any]:
    """``photos`` photos dropped into the inbox at once under the stack's own rules (client
    ``inbox``, its default limits): each must become a task that succeeds."""
    s3 = boto3.client("s3")
    bucket = bench.info.outputs["InboxBucketName"]
    folder = f"products/volume-{uuid.uuid4().hex[:8]}/"
    store = DynamoDBTaskStore(bench.ddb, bench.info.table_name)
    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        list(
            pool.map(
                lambda i: s3.put_object(
                    Bucket=bucket,
                    Key=f"{folder}p{i:03d}.png",
                    Body=_photo(i),
                    ContentType="image/png",
                ),
                range(photos),
            )
        )
    progress(f"  {photos} photos uploaded in {time.monotonic() - started:.1f} s")
    deadline = time.monotonic() + 300 + photos * 2.0
    while True:
        found = _inbox_tasks(store, folder)
        done = [t for t in found if t.status.value in TERMINAL]
        if len(done) >= photos or time.monotonic() > deadline:
            break
        time.sleep(2)
    seconds = time.monotonic() - started
    statuses: dict[str, int] = {}
    for task in found:
        statuses[task.status.value] = statuses.get(task.status.value, 0) + 1
    progress(f"  inbox drop: {statuses} after {seconds:.0f} s")
    return {
        "photos": photos,
        "tasks": len(found),
        "statuses": statuses,
        "seconds": seconds,
        "met": statuses.get("succeeded", 0) == photos and len(found) == photos,
    }


def _inbox_tasks(store: DynamoDBTaskStore, folder: str) -> list[Any]:
    """The inbox client's tasks made from objects under ``folder``."""
    found: list[Any] = []
    cursor: str | None = None
    while True:
        page = store.list_for_client("inbox", limit=100, cursor=cursor)
        found += [t for t in page.tasks if t.source is not None and t.source.key.startswith(folder)]
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


OPEN_ITEM_LIMIT_BYTES = 8 * 1024


def open_items(*, open_tasks: int, progress: Any) -> dict[str, Any]:
    """One client's ``open_tasks`` tasks held open at a provider (a simulated task that never
    finishes, on a stack at time scale 1 so no deadline ends them during the count, with the
    provider's concurrency and the client's running limit raised to hold them all), then every
    item of the table that is not a task: the largest must stay under 8 KB."""
    with parallel_stack(time_scale=1.0) as bench:
        ssm = boto3.client("ssm")
        name = bench.info.outputs["ProvidersParameterName"]
        document = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
        document["concurrency"] = {**document.get("concurrency", {}), PROVIDER: open_tasks + 100}
        ssm.put_parameter(Name=name, Value=json.dumps(document), Type="String", Overwrite=True)
        client = _Client(
            bench, "volume-open", max_running_tasks=open_tasks, requests_per_minute=LIFTED_RATE
        )
        started = time.monotonic()
        ids = client.submit_many([f"held open {i} [sim:never]" for i in range(open_tasks)])
        deadline = time.monotonic() + 300 + open_tasks
        while True:
            at_provider = sum(1 for t in ids if bench.task(t).get("submitted_at"))
            if at_provider == len(ids) or time.monotonic() > deadline:
                break
            time.sleep(2)
        progress(
            f"  {at_provider} of {open_tasks} tasks open at {PROVIDER} after "
            f"{time.monotonic() - started:.0f} s"
        )
        largest: dict[str, tuple[int, str]] = {}
        for page in bench.ddb.get_paginator("scan").paginate(TableName=bench.info.table_name):
            for item in page["Items"]:
                pk = item["pk"]["S"]
                kind = pk.split("#", 1)[0] + "#"
                size = item_size(item)
                if size > largest.get(kind, (-1, ""))[0]:
                    largest[kind] = (size, f"{pk} / {item['sk']['S']}")
    others = {k: v for k, v in largest.items() if k != "TASK#"}
    worst_size, worst_key = max(others.values())
    progress(f"  largest item that is not a task: {worst_key}, {worst_size} bytes")
    return {
        "open_tasks": open_tasks,
        "at_provider": at_provider,
        "largest_by_kind": {k: {"bytes": v[0], "key": v[1]} for k, v in sorted(largest.items())},
        "largest_other_bytes": worst_size,
        "largest_other_key": worst_key,
        "limit_bytes": OPEN_ITEM_LIMIT_BYTES,
        "met": at_provider == open_tasks and worst_size <= OPEN_ITEM_LIMIT_BYTES,
    }


BURST_THREADS = 16


def burst(bench: Stack, *, submits: int, progress: Any) -> dict[str, Any]:
    """One client's ``submits`` submits from ``BURST_THREADS`` threads at its default limits
    (its per-minute rate lifted only): every answer must be 202 and every task succeed."""
    client = _Client(bench, "volume-burst", requests_per_minute=LIFTED_RATE)
    answers: dict[str, int] = {}
    ids: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        with httpx.Client(
            base_url=bench.info.api_url,
            headers={"Authorization": f"Bearer {client.key}"},
            timeout=120,
        ) as http:
            answer = http.post("/v1/images", json=_body(f"burst {i}"))
        with lock:
            code = str(answer.status_code)
            answers[code] = answers.get(code, 0) + 1
            if answer.status_code == 202:
                ids.append(str(answer.json()["task_id"]))

    started = time.monotonic()
    with ThreadPoolExecutor(BURST_THREADS) as pool:
        list(pool.map(one, range(submits)))
    docs = _views(bench, ids, 300 + submits * 1.0)
    seconds = time.monotonic() - started
    statuses = _statuses(docs)
    progress(f"  burst: answers {answers}, tasks {statuses} after {seconds:.0f} s")
    return {
        "submits": submits,
        "threads": BURST_THREADS,
        "answers": answers,
        "statuses": statuses,
        "seconds": seconds,
        "met": answers == {"202": submits} and statuses.get("succeeded", 0) == submits,
    }
