"""``python -m devstack.iam_mutations``: every permission a function holds is needed by a flow.

The least-privilege check of issue 22 ("nothing extra"). One IAM-enforced devstack runs (its own,
in this process; no state file). For each ``Action`` of each function's policy, on the
resources of its statement, the check:

1. takes that permission out of the function's role (:meth:`DevStack.set_policies`),
2. runs the scenario :data:`SCENARIOS` maps it to (a client driving the stack over HTTP and
   boto3, as a test does: submit a task, upload to the inbox, call the OpenAI API...),
3. asserts the scenario failed, that moto refused exactly that action to that function's role,
   and that the function logged the refusal (``"AWS access denied"``),
4. puts the role's policies back.

A permission whose scenario still passes without it is *unused*: the check fails and lists it.
A permission moto cannot show (conditions, resource policies, a call only AWS makes) is in
:data:`AWS_ONLY` with the reason; one needed only on a path no scenario can take on demand (an
S3 failure mid-upload, a lost race) is in :data:`NOT_ON_DEMAND`, naming the code and its test;
docs/development.md (IAM) lists both. A permission in no table fails the check at once: each
new permission gets a scenario that needs it (``--try`` finds one among candidates).

Every scenario first runs on the template as shipped (the control): one that fails there
proves nothing, and fails the check.

Writes ``docs/iam-mutations.md`` (function, action, resource, scenario, outcome, seconds).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import io
import json
import re
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import boto3
import httpx

from devstack.iam import Permission, permissions, policy_documents, role_name, without
from devstack.template import ROOT

REPORT_PATH: Final = ROOT / "docs" / "iam-mutations.md"

GRACE_S: Final = 4.0
"""How long a scenario still waits once the mutated function has been refused. A refused
invocation is retried only after its queue's visibility timeout (36 s for the dispatch queue
at the default time scale) or ends the flow; a scenario that has not succeeded this long after
the refusal counts as failed, rather than waiting its whole deadline."""

SCENARIO_TIMEOUT_S: Final = 30.0
"""The longest a scenario waits for its flow (the control runs take 1-5 s)."""

CACHED_SERVICES: Final = frozenset({"ssm", "secretsmanager", "kms"})
"""Services whose answers a function keeps in its workers (settings, secrets, data keys): a
mutation of theirs starts the function's workers afresh, as a deploy would, or the cached
answer would hide it."""

Key = tuple[str, str, str]
"""(function logical id, action, resources as their logical ids), e.g.
``("ApiFunction", "sqs:SendMessage", "DispatchQueue")``."""


# -- what is checked --------------------------------------------------------------------------
def _label(value: Any) -> str:
    """A statement's ``Resource`` as the template's logical ids (``ImagesBucket/inputs/*``)."""
    if isinstance(value, list):
        return ",".join(_label(item) for item in value)
    if isinstance(value, dict):
        ((kind, item),) = value.items()
        if kind == "Ref":
            return str(item)
        if kind == "Fn::GetAtt":
            return str(item[0] if isinstance(item, list) else str(item).split(".")[0])
        if kind == "Fn::Sub":
            text, names = (item[0], item[1]) if isinstance(item, list) else (item, {})
            text = re.sub(r"\$\{AWS::[A-Za-z]+\}", "", str(text))
            text = re.sub(
                r"\$\{([A-Za-z0-9]+)(\.Arn)?\}",
                lambda m: _label(names[m.group(1)]) if m.group(1) in names else m.group(1),
                text,
            )
            return re.sub(r"^arn:[^:]*:[a-z0-9-]+:[^:]*:[^:]*:(parameter|event-bus/)?", "", text)
    return str(value)


def _written(documents: list[dict[str, Any]]) -> list[list[Any]]:
    """The unresolved resources of each permission :func:`permissions` finds, in its order."""
    found = []
    for document in documents:
        statements = document["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            if statement.get("Effect") != "Allow":
                continue
            resources = statement.get("Resource", "*")
            actions = statement.get("Action", [])
            for _ in actions if isinstance(actions, list) else [actions]:
                found.append(resources if isinstance(resources, list) else [resources])
    return found


@dataclass(frozen=True)
class Mutation:
    """One permission taken out of one function's role."""

    key: Key
    permission: Permission
    """The same permission resolved (the ARNs :func:`devstack.iam.without` removes)."""

    @property
    def function(self) -> str:
        return self.key[0]

    @property
    def action(self) -> str:
        return self.key[1]

    @property
    def resource(self) -> str:
        return self.key[2]


def mutations(template: dict[str, Any], resolved: dict[str, list[Any]]) -> list[Mutation]:
    """Each (function, action, resources) of the template's policies, once, in template order.

    ``resolved``: each function's resolved documents (``DevStack.policies``); the same
    statements as the template's, so the n-th permission of both is the same one.
    """
    found: dict[Key, Mutation] = {}
    for function, spec in template["Resources"].items():
        if spec["Type"] != "AWS::Serverless::Function" or function not in resolved:
            continue
        written = _written(policy_documents(spec["Properties"].get("Policies", [])))
        actual = permissions(function, resolved[function])
        assert len(written) == len(actual), function
        for resources, permission in zip(written, actual, strict=True):
            key = (function, permission.action, _label(resources))
            found.setdefault(key, Mutation(key, permission))
    return list(found.values())


# -- the stack as a client sees it --------------------------------------------------------------
@dataclass
class Denial:
    """One refusal, seen by moto (``iam``) or logged by the function (``log``)."""

    function: str
    action: str
    resource: str
    at: float


class Observer:
    """Every refusal of the run: moto's (the IAM action, exactly) and the functions' log lines."""

    def __init__(self, log: io.TextIOBase | None = None) -> None:
        self.iam: list[Denial] = []
        self.log: list[Denial] = []
        self.handed_off: list[float] = []
        """When the OpenAI-compatible function gave its own first attempt to the dispatch
        function (it logs ``compat attempt failed``: a failure of its own side)."""
        self._lock = threading.Lock()
        self._out = log
        self._functions: dict[str, str] = {}
        """role name -> function logical id"""

    def know(self, role: str, logical_id: str) -> None:
        self._functions[role] = logical_id

    def line(self, function: str, stream: str, text: str) -> None:
        """A worker's output line (a ``LogSink``): refusals are kept, everything is written."""
        if self._out is not None:
            with self._lock:
                self._out.write(f"{function} {stream}: {text}")
        if "compat attempt failed" in text:
            with self._lock:
                self.handed_off.append(_now())
        if '"AWS access denied"' not in text:
            return
        with contextlib.suppress(ValueError):
            record = json.loads(text[text.index("{") :])
            with self._lock:
                self.log.append(
                    Denial(function, str(record.get("action")), str(record.get("resource")), _now())
                )

    def refused(self, principal: str, action: str, resource: str) -> None:
        """moto refused ``action`` on ``resource`` to ``principal`` (an assumed role's ARN)."""
        match = re.search(r":assumed-role/([^/]+)/", principal)
        function = self._functions.get(match.group(1), principal) if match else principal
        with self._lock:
            self.iam.append(Denial(function, action, resource, _now()))

    def handed_off_since(self, start: float) -> bool:
        with self._lock:
            return any(at >= start for at in self.handed_off)

    def since(self, start: float) -> tuple[list[Denial], list[Denial]]:
        with self._lock:
            return [d for d in self.iam if d.at >= start], [d for d in self.log if d.at >= start]


def _now() -> float:
    return time.monotonic()


_OBSERVER: list[Observer] = []


def watch_moto_refusals(observer: Observer) -> None:
    """Tell ``observer`` of every request moto refuses (moto runs in this process)."""
    from moto.iam.access_control import IAMRequestBase

    _OBSERVER[:] = [observer]
    if getattr(IAMRequestBase.check_action_permitted, "_observed", False):
        return
    original = IAMRequestBase.check_action_permitted

    def check(self: Any, resource: str) -> None:
        try:
            original(self, resource)
        except Exception:
            for each in _OBSERVER:
                each.refused(str(self._access_key.arn), str(self._action), resource)
            raise

    check._observed = True  # type: ignore[attr-defined]
    IAMRequestBase.check_action_permitted = check  # type: ignore[method-assign]


class ScenarioFailed(Exception):
    """The scenario's flow did not do what it does on the shipped template."""


@dataclass
class Context:
    """What a scenario drives: the stack, a fresh client of its own, the events received."""

    info: Any
    stack: Any
    api: httpx.Client
    client_id: str
    api_key: str
    events: EventLog
    observer: Observer
    mutation: Mutation | None = None
    started: float = field(default_factory=_now)

    def refused_at(self) -> float | None:
        """When the mutated function was first refused in this run (None: not yet)."""
        if self.mutation is None:
            return None
        iam, _ = self.observer.since(self.started)
        times = [d.at for d in iam if d.function == self.mutation.function]
        return min(times) if times else None

    def wait(self, check: Callable[[], Any], what: str, timeout: float = SCENARIO_TIMEOUT_S) -> Any:
        """``check()``'s first truthy answer; :class:`ScenarioFailed` at the deadline, or
        :data:`GRACE_S` after the mutated function was refused."""
        deadline = _now() + timeout
        while True:
            value = check()
            if value:
                return value
            refused = self.refused_at()
            if refused is not None and _now() > refused + GRACE_S:
                raise ScenarioFailed(f"{what}: not {GRACE_S:.0f} s after the refusal")
            if _now() > deadline:
                raise ScenarioFailed(f"{what}: not within {timeout:.0f} s")
            time.sleep(0.1)

    def submit(self, body: dict[str, Any]) -> str:
        answer = self.api.post("/v1/images", json=body)
        if answer.status_code != 202:
            raise ScenarioFailed(f"POST /v1/images answered {answer.status_code}: {answer.text}")
        return str(answer.json()["task_id"])

    def task(self, task_id: str) -> dict[str, Any]:
        answer = self.api.get(f"/v1/tasks/{task_id}")
        if answer.status_code != 200:
            raise ScenarioFailed(f"GET /v1/tasks/{task_id} answered {answer.status_code}")
        return dict(answer.json())

    def succeeded(self, task_id: str, *, by: str | None = None) -> dict[str, Any]:
        """Wait for the task to succeed (``by`` that finisher) and its Succeeded event."""

        def terminal() -> dict[str, Any] | None:
            task = self.task(task_id)
            return (
                task if task["status"] in ("succeeded", "failed", "cancelled", "expired") else None
            )

        task: dict[str, Any] = self.wait(terminal, f"task {task_id} terminal")
        if task["status"] != "succeeded":
            raise ScenarioFailed(f"task {task_id} {task['status']}: {task.get('error')}")
        if by is not None and task["history"][-1]["by"] != by:
            raise ScenarioFailed(f"task {task_id} finished by {task['history'][-1]['by']}")
        self.event(task_id, "Image Task Succeeded")
        return task

    def thumbnail(self, task_id: str) -> None:
        """Wait for the task's thumbnail (made by the thumbnail function from its event)."""

        def listed() -> bool:
            answer = self.api.get("/v1/tasks")
            if answer.status_code != 200:
                raise ScenarioFailed(f"GET /v1/tasks answered {answer.status_code}")
            return any(
                t["task_id"] == task_id and t.get("thumbnail_url") for t in answer.json()["tasks"]
            )

        self.wait(listed, f"thumbnail of {task_id}")

    def limited(self, **limits: float) -> httpx.Client:
        """A new client of its own with these limits (its LIMITS item, as the operator sets)."""
        from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore

        dynamodb = boto3.client("dynamodb")
        client_id = f"iam-limited-{uuid.uuid4().hex[:8]}"
        key = DynamoDBApiKeyStore(dynamodb, self.info.table_name).create_key(client_id)
        dynamodb.update_item(
            TableName=self.info.table_name,
            Key={"pk": {"S": f"LIMITS#{client_id}"}, "sk": {"S": "LIMITS"}},
            UpdateExpression="SET " + ", ".join(f"{name} = :{name}" for name in limits),
            ExpressionAttributeValues={f":{k}": {"N": str(v)} for k, v in limits.items()},
        )
        return httpx.Client(
            base_url=self.info.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )

    def event(self, task_id: str, detail_type: str) -> None:
        self.wait(
            lambda: detail_type in self.events.types(task_id),
            f"{detail_type!r} event of {task_id}",
        )


class EventLog:
    """The subscriber queue's task events, drained in the background: detail types by task."""

    def __init__(self, queue_url: str) -> None:
        self._sqs = boto3.client("sqs")
        self._url = queue_url
        self._types: dict[str, set[str]] = defaultdict(set)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # the stack stopping under a long poll
                batch = self._sqs.receive_message(
                    QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                )
                for message in batch.get("Messages", []):
                    event = json.loads(message["Body"])
                    detail = event.get("detail", {})
                    source = (detail.get("source") or {}).get("key")
                    owner = detail.get("task_id") or detail.get("batch_id") or ""
                    with self._lock:
                        self._types[str(owner)].add(str(event["detail-type"]))
                        if source:
                            self._types[f"source:{source}"].add(str(event["detail-type"]))
                    self._sqs.delete_message(
                        QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"]
                    )

    def types(self, task_id: str) -> set[str]:
        with self._lock:
            return set(self._types[task_id])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# -- scenarios --------------------------------------------------------------------------------
Scenario = Callable[[Context], None]


def _png(width: int = 1024, height: int = 1024, *, hole: bool = False) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (width, height), (30, 110, 190, 255))
    if hole:  # a mask: a transparent disc to repaint
        ImageDraw.Draw(image).ellipse((362, 362, 662, 662), fill=(0, 0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def callback_task(ctx: Context) -> None:
    """apimart text-to-image: api submits, dispatch creates, the callback finalises."""
    ctx.succeeded(ctx.submit({"prompt": "a lighthouse", "provider": "apimart"}), by="callback")


def poll_task(ctx: Context) -> None:
    """mountsea-async: dispatch creates and starts the poll loop, which finishes the task."""
    ctx.succeeded(ctx.submit({"prompt": "a harbour", "provider": "mountsea-async"}), by="poll")


def sync_task(ctx: Context) -> None:
    """mountsea-compat: the dispatch function's provider call answers the image."""
    ctx.succeeded(ctx.submit({"prompt": "a field", "provider": "mountsea-compat"}), by="dispatch")


def edit_task(ctx: Context) -> None:
    """A masked edit (inputs staged in S3 by the API, read by dispatch), on the poll path."""
    body = {
        "prompt": "a moon",
        "provider": "mountsea-async",
        "size": "1024x1024",
        "images": [_data_url(_png())],
        "mask": _data_url(_png(hole=True)),
    }
    ctx.succeeded(ctx.submit(body), by="poll")


def sweeper_task(ctx: Context) -> None:
    """apimart whose callback never comes: the sweeper finds the task done and finishes it."""
    task_id = ctx.submit({"prompt": "quiet [sim:no-callback]", "provider": "apimart"})
    ctx.succeeded(task_id, by="sweeper")


def get_and_list(ctx: Context) -> None:
    """A task submitted (sync provider) succeeds, is read back and listed."""
    task_id = ctx.submit({"prompt": "a list", "provider": "mountsea-compat"})
    ctx.succeeded(task_id, by="dispatch")
    listed = ctx.api.get("/v1/tasks")
    if listed.status_code != 200 or task_id not in listed.text:
        raise ScenarioFailed(f"GET /v1/tasks answered {listed.status_code}: {listed.text[:200]}")


def usage(ctx: Context) -> None:
    """GET /v1/usage: the client's day."""
    answer = ctx.api.get("/v1/usage")
    if answer.status_code != 200:
        raise ScenarioFailed(f"GET /v1/usage answered {answer.status_code}: {answer.text[:200]}")


def providers(ctx: Context) -> None:
    """GET /v1/providers: the providers' settings (the SSM parameters)."""
    answer = ctx.api.get("/v1/providers")
    if answer.status_code != 200:
        raise ScenarioFailed(f"GET /v1/providers answered {answer.status_code}")


def cancel(ctx: Context) -> None:
    """A running task cancelled: the API changes it and says so on the bus."""
    task_id = ctx.submit({"prompt": "slow [sim:no-callback]", "provider": "apimart"})
    answer = ctx.api.post(f"/v1/tasks/{task_id}/cancel")
    if answer.status_code != 200:
        raise ScenarioFailed(f"cancel answered {answer.status_code}: {answer.text[:200]}")
    ctx.event(task_id, "Image Task Cancelled")


def webhook_secret(ctx: Context) -> None:
    """GET /v1/webhook-secret creates the client's secret; rotate re-encrypts it."""
    for method, path in (("GET", "/v1/webhook-secret"), ("POST", "/v1/webhook-secret/rotate")):
        answer = ctx.api.request(method, path)
        if answer.status_code != 200:
            raise ScenarioFailed(
                f"{method} {path} answered {answer.status_code}: {answer.text[:200]}"
            )


def uploads(ctx: Context) -> None:
    """POST /v1/uploads: presigned posts to stage an input image."""
    answer = ctx.api.post(
        "/v1/uploads", json={"files": [{"content_type": "image/png", "bytes": 1000}]}
    )
    if answer.status_code not in (200, 201):
        raise ScenarioFailed(f"POST /v1/uploads answered {answer.status_code}: {answer.text[:200]}")


def _receiver(ctx: Context) -> Any:
    from devstack.webhook_receiver import WebhookReceiver

    secret = ctx.api.get("/v1/webhook-secret").raise_for_status().json()
    return WebhookReceiver(str(secret["secret"]))


def webhook_delivery(ctx: Context) -> None:
    """A task with a callback_url: its signed webhook is delivered and verifies."""
    receiver = _receiver(ctx)
    try:
        path = f"/{uuid.uuid4().hex}"
        task_id = ctx.submit(
            {"prompt": "a bell", "provider": "mountsea-compat", "callback_url": receiver.url(path)}
        )
        ctx.wait(lambda: [d for d in receiver.received(path) if d.status == 204], "delivery")
        # the receiver has it a moment before the gateway has recorded it on the task (its
        # write may also meet the thumbnail's): a caller redelivers what GET /v1/tasks/{id} lists
        ctx.wait(lambda: _deliveries_listed(ctx, task_id), "delivery recorded")
        answer = ctx.api.post(f"/v1/tasks/{task_id}/webhooks/redeliver")
        if answer.status_code != 202:
            raise ScenarioFailed(f"redeliver answered {answer.status_code}: {answer.text[:200]}")
        ctx.wait(
            lambda: len([d for d in receiver.received(path) if d.status == 204]) >= 2, "redelivery"
        )
    finally:
        receiver.close()


def _deliveries_listed(ctx: Context, task_id: str) -> bool:
    answer = ctx.api.get(f"/v1/tasks/{task_id}")
    if answer.status_code != 200:
        raise ScenarioFailed(f"GET /v1/tasks/{task_id} answered {answer.status_code}")
    return bool(answer.json().get("deliveries"))


def openai_generate(ctx: Context) -> None:
    """POST /v1/images/generations on the OpenAI-compatible function URL (a b64 PNG back)."""
    answer = httpx.post(
        f"{ctx.info.openai_base_url.rstrip('/')}/images/generations",
        json={"model": "gpt-image-2", "prompt": "a kite", "size": "1024x1024"},
        headers={"Authorization": f"Bearer {ctx.api_key}"},
        timeout=SCENARIO_TIMEOUT_S,
    )
    if answer.status_code != 200 or not answer.json()["data"][0].get("b64_json"):
        raise ScenarioFailed(f"generations answered {answer.status_code}: {answer.text[:200]}")
    # without s3:PutObject the function's own attempt fails after the provider's answer and the
    # dispatch function makes the attempt again, often inside the caller's wait (CI: "unused")
    _made_here(ctx)


def inbox_upload(ctx: Context) -> None:
    """A photo put in the S3 inbox becomes an edit task that succeeds."""
    outputs = ctx.info.outputs
    key = f"products/{uuid.uuid4().hex}.png"
    boto3.client("s3").put_object(
        Bucket=outputs["InboxBucketName"], Key=key, Body=_png(), ContentType="image/png"
    )
    ctx.wait(
        lambda: "Image Task Succeeded" in ctx.events.types(f"source:{key}"), f"inbox edit of {key}"
    )


def _delivered(ctx: Context, body: dict[str, Any], *, finisher: str) -> None:
    """Submit ``body`` with a callback_url: it succeeds (by ``finisher``), its webhook arrives."""
    receiver = _receiver(ctx)
    try:
        path = f"/{uuid.uuid4().hex}"
        task_id = ctx.submit({**body, "callback_url": receiver.url(path)})
        ctx.succeeded(task_id, by=finisher)
        ctx.wait(lambda: [d for d in receiver.received(path) if d.status == 204], "delivery")
    finally:
        receiver.close()


def callback_webhook(ctx: Context) -> None:
    """The callback path's finaliser queues the task's webhook."""
    _delivered(ctx, {"prompt": "a buoy", "provider": "apimart"}, finisher="callback")


def poll_webhook(ctx: Context) -> None:
    """The poll loop, finishing a task, queues its webhook."""
    _delivered(ctx, {"prompt": "a pier", "provider": "mountsea-async"}, finisher="poll")


def sweeper_webhook(ctx: Context) -> None:
    """The sweeper, finishing a task whose callback never came, queues its webhook."""
    _delivered(ctx, {"prompt": "calm [sim:no-callback]", "provider": "apimart"}, finisher="sweeper")


def thumbnail_made(ctx: Context) -> None:
    """A succeeded task's event reaches the thumbnail function, which reads the task and its
    stored output, stores the preview next to it and names it on the task."""
    task_id = ctx.submit({"prompt": "a gull", "provider": "apimart"})
    ctx.succeeded(task_id, by="callback")
    ctx.thumbnail(task_id)


def _queued_second(ctx: Context, body: dict[str, Any], *, finisher: str) -> None:
    """A client with one running place submits two tasks: the second waits in its queue and
    is started by whoever ends the first (``finisher``), which queues its first attempt."""
    with ctx.limited(max_running_tasks=1) as api:
        ids = []
        for _ in range(2):
            answer = api.post("/v1/images", json=body)
            if answer.status_code != 202:
                raise ScenarioFailed(f"POST /v1/images answered {answer.status_code}")
            ids.append(str(answer.json()["task_id"]))

        def ended(task_id: str) -> dict[str, Any] | None:
            task = dict(api.get(f"/v1/tasks/{task_id}").json())
            return task if task["status"] in ("succeeded", "failed", "cancelled") else None

        for task_id in ids:
            task = ctx.wait(functools.partial(ended, task_id), f"task {task_id} ended")
            if task["status"] != "succeeded":
                raise ScenarioFailed(f"task {task_id} {task['status']}: {task.get('error')}")
        first = ctx.wait(lambda: ended(ids[0]), "first")
        if first["history"][-1]["by"] != finisher:
            raise ScenarioFailed(f"first task finished by {first['history'][-1]['by']}")


def callback_admits_queued(ctx: Context) -> None:
    """The callback path's finaliser ends a running task and starts the client's queued one."""
    _queued_second(ctx, {"prompt": "one at a time", "provider": "apimart"}, finisher="callback")


def poll_admits_queued(ctx: Context) -> None:
    """The poll loop ends a running task and starts the client's queued one."""
    _queued_second(ctx, {"prompt": "one at a time", "provider": "mountsea-async"}, finisher="poll")


def sweeper_admits_queued(ctx: Context) -> None:
    """The sweeper ends a running task and starts the client's queued one."""
    _queued_second(
        ctx,
        {"prompt": "one at a time [sim:no-callback]", "provider": "apimart"},
        finisher="sweeper",
    )


def sync_admits_queued(ctx: Context) -> None:
    """The dispatch function ends a running (sync) task and starts the client's queued one."""
    _queued_second(
        ctx, {"prompt": "one at a time", "provider": "mountsea-compat"}, finisher="dispatch"
    )


def fallback_task(ctx: Context) -> None:
    """apimart refuses the create (503): dispatch queues the next attempt, on mountsea-compat."""
    body = {
        "prompt": "a reef [sim:create-503=apimart]",
        "providers": ["apimart", "mountsea-compat"],
    }
    task = ctx.succeeded(ctx.submit(body), by="dispatch")
    if task["provider"] != "mountsea-compat":
        raise ScenarioFailed(f"succeeded on {task['provider']}, not after a fallback")


def _openai(ctx: Context, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(
        f"{ctx.info.openai_base_url.rstrip('/')}/{path}",
        headers={"Authorization": f"Bearer {ctx.api_key}"},
        timeout=SCENARIO_TIMEOUT_S,
        **kwargs,
    )


def _openai_image(answer: httpx.Response, what: str) -> None:
    if answer.status_code != 200 or not answer.json().get("data", [{}])[0].get("b64_json"):
        raise ScenarioFailed(f"{what} answered {answer.status_code}: {answer.text[:200]}")


def _made_here(ctx: Context) -> None:
    """The OpenAI-compatible function made the task's first attempt itself (it hands the
    attempt to the dispatch function only when its own side fails)."""
    if ctx.observer.handed_off_since(ctx.started):
        raise ScenarioFailed("the OpenAI function's own attempt failed: dispatch made it")


def openai_callback(ctx: Context) -> None:
    """OpenAI call on apimart (no callback comes): the function creates the task (a signed
    callback URL), finds it done at its look, finalises it and queues its webhook."""
    receiver = _receiver(ctx)
    try:
        path = f"/{uuid.uuid4().hex}"
        body = {
            "model": "gpt-image-2",
            "prompt": "a flag [sim:no-callback]",
            "size": "1024x1024",
            "provider": "apimart",
            "callback_url": receiver.url(path),
        }
        _openai_image(_openai(ctx, "images/generations", json=body), "generations (apimart)")
        _made_here(ctx)
        ctx.wait(lambda: [d for d in receiver.received(path) if d.status == 204], "delivery")
    finally:
        receiver.close()


def openai_poll(ctx: Context) -> None:
    """OpenAI call on mountsea-async: the function's own attempt starts the poll loop."""
    body = {"model": "gpt-image-2", "prompt": "a rope", "provider": "mountsea-async"}
    _openai_image(_openai(ctx, "images/generations", json=body), "generations (poll)")
    _made_here(ctx)


def openai_edit(ctx: Context) -> None:
    """POST /v1/images/edits (multipart image + mask) on a sync provider: inputs staged in S3."""
    files = [
        ("image", ("in.png", _png(), "image/png")),
        ("mask", ("m.png", _png(hole=True), "image/png")),
    ]
    data = {"model": "gpt-image-2", "prompt": "a sail", "provider": "mountsea-compat"}
    _openai_image(_openai(ctx, "images/edits", data=data, files=files), "edits")
    _made_here(ctx)


def openai_edit_poll(ctx: Context) -> None:
    """POST /v1/images/edits on mountsea-async: staged inputs, then the poll loop."""
    files = [("image", ("in.png", _png(), "image/png"))]
    data = {"model": "gpt-image-2", "prompt": "a keel", "provider": "mountsea-async"}
    _openai_image(_openai(ctx, "images/edits", data=data, files=files), "edits (poll)")
    _made_here(ctx)


def uploaded_input(ctx: Context) -> None:
    """An input PUT through a presigned upload slot, then named by its s3:// ref in a submit:
    the API reads it whole (it checks the image) before the task is made."""
    png = _png()
    slots = ctx.api.post(
        "/v1/uploads", json={"files": [{"content_type": "image/png", "bytes": len(png)}]}
    )
    if slots.status_code not in (200, 201):
        raise ScenarioFailed(f"POST /v1/uploads answered {slots.status_code}: {slots.text[:200]}")
    slot = slots.json()["uploads"][0]
    httpx.put(slot["url"], content=png, headers=slot["headers"], timeout=30).raise_for_status()
    body = {"prompt": "a lamp", "provider": "mountsea-compat", "images": [slot["ref"]]}
    ctx.succeeded(ctx.submit(body), by="dispatch")


def _staged_inputs(ctx: Context) -> list[str]:
    """The keys under the scenario client's ``inputs/`` prefix (read as the account's admin)."""
    bucket = ctx.info.outputs["ImagesBucketName"]
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"inputs/{ctx.client_id}/")
    return [str(o["Key"]) for o in listed.get("Contents", [])]


def _refused_and_cleaned(ctx: Context, send: Callable[[bytes, bytes], httpx.Response]) -> None:
    """``send`` an image and a mask of another size: the mask is refused (a 4xx) once the
    image is staged, and the staged image is deleted again."""
    before = set(_staged_inputs(ctx))
    answer = send(_png(), _png(512, 512, hole=True))
    if not 400 <= answer.status_code < 500:
        raise ScenarioFailed(f"a mask of another size answered {answer.status_code}, not a 4xx")
    left = set(_staged_inputs(ctx)) - before
    if left:
        raise ScenarioFailed(f"the image stayed staged after the refusal: {sorted(left)}")


def refused_input_deleted(ctx: Context) -> None:
    """A submit whose mask is not the image's size is refused, and the API deletes the image
    it had already staged."""
    _refused_and_cleaned(
        ctx,
        lambda image, mask: ctx.api.post(
            "/v1/images",
            json={
                "prompt": "a cup",
                "provider": "mountsea-compat",
                "images": [_data_url(image)],
                "mask": _data_url(mask),
            },
        ),
    )


def openai_refused_input_deleted(ctx: Context) -> None:
    """The same refusal on POST /v1/images/edits: the image staged is deleted again."""

    def send(image: bytes, mask: bytes) -> httpx.Response:
        files = [("image", ("in.png", image, "image/png")), ("mask", ("m.png", mask, "image/png"))]
        data = {"model": "gpt-image-2", "prompt": "a cup", "provider": "mountsea-compat"}
        return _openai(ctx, "images/edits", data=data, files=files)

    _refused_and_cleaned(ctx, send)


def sync_edit_task(ctx: Context) -> None:
    """A masked edit on mountsea-compat (multipart): dispatch streams the staged inputs."""
    body = {
        "prompt": "a star",
        "provider": "mountsea-compat",
        "size": "1024x1024",
        "images": [_data_url(_png())],
        "mask": _data_url(_png(hole=True)),
    }
    ctx.succeeded(ctx.submit(body), by="dispatch")


def webhook_first_secret(ctx: Context) -> None:
    """A client that never asked for its webhook secret gets a webhook: the delivery function
    creates the secret (encrypted, stored) on first use and signs with it."""
    from devstack.webhook_receiver import WebhookReceiver

    receiver = WebhookReceiver(uuid.uuid4().hex)  # the secret is made later: any arrival counts
    try:
        path = f"/{uuid.uuid4().hex}"
        with ctx.limited(max_running_tasks=10) as api:
            body = {"prompt": "a kite", "provider": "mountsea-compat"}
            answer = api.post("/v1/images", json={**body, "callback_url": receiver.url(path)})
            if answer.status_code != 202:
                raise ScenarioFailed(f"POST /v1/images answered {answer.status_code}")
            ctx.wait(lambda: receiver.received(path), "a first delivery")
    finally:
        receiver.close()


def webhook_retried(ctx: Context) -> None:
    """A receiver down for three tries (503): the delivery function queues each retry again
    (delayed) on its queue, and the fourth try is delivered."""
    receiver = _receiver(ctx)
    try:
        path = f"/down3/{uuid.uuid4().hex}"
        body = {
            "prompt": "a drum",
            "provider": "mountsea-compat",
            "callback_url": receiver.url(path),
        }
        ctx.submit(body)
        ctx.wait(lambda: [d for d in receiver.received(path) if d.status == 204], "4th delivery")
    finally:
        receiver.close()


def inbox_mask_refused(ctx: Context) -> None:
    """An inbox photo whose mask is not its size: the upload's task fails, and the function
    deletes the photo it had already staged in the images bucket."""
    outputs = ctx.info.outputs
    s3 = boto3.client("s3")

    def staged() -> set[str]:
        listed = s3.list_objects_v2(Bucket=outputs["ImagesBucketName"], Prefix="inputs/")
        return {str(o["Key"]) for o in listed.get("Contents", [])}

    before = staged()
    stem = f"products/{uuid.uuid4().hex}"
    inbox = outputs["InboxBucketName"]
    s3.put_object(Bucket=inbox, Key=f"{stem}.mask.png", Body=_png(512, 512, hole=True))
    s3.put_object(Bucket=inbox, Key=f"{stem}.png", Body=_png(), ContentType="image/png")
    ctx.wait(
        lambda: "Image Task Failed" in ctx.events.types(f"source:{stem}.png"),
        f"the refused upload {stem}.png",
    )
    left = staged() - before
    if left:
        raise ScenarioFailed(f"the photo stayed staged after the refusal: {sorted(left)}")


def inbox_reupload(ctx: Context) -> None:
    """The same photo uploaded again after its task failed: the function releases the first
    upload's claim and makes a new task (a re-upload is how a user tries again)."""
    outputs = ctx.info.outputs
    key = f"products/{uuid.uuid4().hex}.png"
    s3 = boto3.client("s3")
    photo = _png()
    for prompt, outcome in (("a vase [sim:fail]", "Failed"), ("a vase", "Succeeded")):
        s3.put_object(
            Bucket=outputs["InboxBucketName"],
            Key=key,
            Body=photo,
            ContentType="image/png",
            Metadata={"prompt": prompt},
        )
        detail_type = f"Image Task {outcome}"
        ctx.wait(
            functools.partial(lambda t: t in ctx.events.types(f"source:{key}"), detail_type),
            f"{outcome.lower()} task of {key}",
        )


def openai_two_images(ctx: Context) -> None:
    """OpenAI call for n=2: the client's counters are read in one BatchGetItem before the
    parent task and its two parts are made; two images come back."""
    body = {"model": "gpt-image-2", "prompt": "two oars", "n": 2, "provider": "mountsea-compat"}
    answer = _openai(ctx, "images/generations", json=body)
    if answer.status_code != 200 or len(answer.json().get("data", [])) != 2:
        raise ScenarioFailed(
            f"generations (n=2) answered {answer.status_code}: {answer.text[:200]}"
        )


def _batch(ctx: Context, lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """POST /v1/batches; the batch once final, which must be completed with every line made."""
    answer = ctx.api.post("/v1/batches", json={"requests": lines, **extra})
    if answer.status_code != 202:
        raise ScenarioFailed(f"POST /v1/batches answered {answer.status_code}: {answer.text[:200]}")
    batch_id = str(answer.json()["batch_id"])

    def final() -> dict[str, Any] | None:
        got = ctx.api.get(f"/v1/batches/{batch_id}")
        if got.status_code != 200:
            raise ScenarioFailed(f"GET /v1/batches/{batch_id} answered {got.status_code}")
        doc: dict[str, Any] = got.json()
        return doc if doc["status"] in ("completed", "cancelled", "expired") else None

    doc: dict[str, Any] = ctx.wait(final, f"batch {batch_id} final")
    if doc["status"] != "completed" or doc["counts"]["succeeded"] != len(lines):
        raise ScenarioFailed(f"batch {batch_id} {doc['status']}: {doc['counts']}")
    return doc


def _downloads(url: str, what: str) -> bytes:
    got = httpx.get(url, timeout=30)
    if got.status_code != 200:
        raise ScenarioFailed(f"{what} answered {got.status_code}")
    return got.content


def _results(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The batch's results file, and every image it names, downloaded by their URLs."""
    text = _downloads(str(doc["results_url"]), "the results URL").decode()
    rows = [json.loads(line) for line in text.splitlines() if line]
    for row in rows:
        for output in row["outputs"]:
            _downloads(output["url"], f"image of {row['custom_id']}")
    return rows


def batch_task(ctx: Context) -> None:
    """A batch of two lines, one of two images: the API stores it and queues its chunk, the
    batch function makes the tasks (the line of two: a parent and its parts), the last task to
    end queues the finish, which writes results.jsonl and announces the batch; the results URL
    and every image's URL in it download."""
    lines = [
        {"custom_id": "one", "body": {"prompt": "a mug", "provider": "mountsea-compat"}},
        {"custom_id": "two", "body": {"prompt": "a cup", "provider": "mountsea-compat", "n": 2}},
    ]
    doc = _batch(ctx, lines)
    rows = _results(doc)
    if sorted(len(r["outputs"]) for r in rows) != [1, 2]:
        raise ScenarioFailed(f"results: {[(r['custom_id'], len(r['outputs'])) for r in rows]}")
    ctx.wait(
        lambda: "Image Batch Completed" in ctx.events.types(str(doc["batch_id"])),
        "the batch's Completed event",
    )


def _batch_finished_by(ctx: Context, body: dict[str, Any]) -> None:
    """A batch of one line: the task's finisher (its path) queues the batch's finish."""
    _results(_batch(ctx, [{"custom_id": "only", "body": body}]))


def callback_finishes_batch(ctx: Context) -> None:
    """The callback path ends a batch's only task: the finalize function queues the finish."""
    _batch_finished_by(ctx, {"prompt": "a jug", "provider": "apimart"})


def poll_finishes_batch(ctx: Context) -> None:
    """The poll loop ends a batch's only task: the poll function queues the finish."""
    _batch_finished_by(ctx, {"prompt": "a jar", "provider": "mountsea-async"})


def sweeper_finishes_batch(ctx: Context) -> None:
    """The sweeper ends a batch's only task (no callback came): it queues the finish."""
    _batch_finished_by(ctx, {"prompt": "a vase [sim:no-callback]", "provider": "apimart"})


def batch_edit(ctx: Context) -> None:
    """A batch line that edits an image given inline: the batch function stages it in S3."""
    body = {
        "prompt": "a moon",
        "provider": "mountsea-compat",
        "size": "1024x1024",
        "images": [_data_url(_png(256, 256))],
    }
    _results(_batch(ctx, [{"custom_id": "edit", "body": body}]))


def batch_input_file(ctx: Context) -> None:
    """A batch whose lines are an uploaded JSONL file: the batch function reads it and stores
    its lines (BatchWriteItem), then makes the tasks; the batch completes."""
    data = "".join(
        json.dumps(
            {"custom_id": f"f{n}", "body": {"prompt": "a tray", "provider": "mountsea-compat"}}
        )
        + "\n"
        for n in range(2)
    ).encode()
    slots = ctx.api.post(
        "/v1/uploads",
        json={"files": [{"content_type": "application/x-ndjson", "bytes": len(data)}]},
    )
    if slots.status_code != 201:
        raise ScenarioFailed(f"POST /v1/uploads answered {slots.status_code}")
    (slot,) = slots.json()["uploads"]
    httpx.put(slot["url"], content=data, headers=slot["headers"], timeout=30).raise_for_status()
    answer = ctx.api.post("/v1/batches", json={"input_file": slot["ref"]})
    if answer.status_code != 202:
        raise ScenarioFailed(f"POST /v1/batches answered {answer.status_code}: {answer.text[:200]}")
    batch_id = str(answer.json()["batch_id"])

    def final() -> dict[str, Any] | None:
        doc: dict[str, Any] = ctx.api.get(f"/v1/batches/{batch_id}").json()
        return doc if doc["status"] in ("completed", "cancelled", "expired", "failed") else None

    doc = ctx.wait(final, f"file batch {batch_id} final")
    if doc["status"] != "completed" or doc["counts"]["succeeded"] != 2:
        raise ScenarioFailed(f"file batch {batch_id} {doc['status']}: {doc['counts']}")


def inbox_manifest(ctx: Context) -> None:
    """A JSONL manifest dropped into the inbox under batches/: the upload-edit function
    queues its batch's reading; the batch completes and writes its results file in the images
    bucket, and its results and errors files next to the manifest in the inbox."""
    stem = f"batches/{uuid.uuid4().hex}"
    line = {"custom_id": "m0", "body": {"prompt": "a bowl", "provider": "mountsea-compat"}}
    s3 = boto3.client("s3")
    inbox = ctx.info.outputs["InboxBucketName"]
    s3.put_object(Bucket=inbox, Key=f"{stem}.jsonl", Body=json.dumps(line).encode())
    bucket = ctx.info.outputs["ImagesBucketName"]

    def results() -> bool:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="batches/")
        name = stem.removeprefix("batches/")
        return any(name in str(o["Key"]) for o in listed.get("Contents", []))

    def beside() -> bool:
        listed = s3.list_objects_v2(Bucket=inbox, Prefix=stem)
        keys = {str(o["Key"]) for o in listed.get("Contents", [])}
        return {f"{stem}.results.jsonl", f"{stem}.errors.jsonl"} <= keys

    ctx.wait(results, f"the results file of the manifest {stem}.jsonl")
    ctx.wait(beside, f"the results and errors files next to the manifest {stem}.jsonl")


def batch_uploaded_input(ctx: Context) -> None:
    """A batch line naming an uploaded input (s3:// ref): the batch function reads it whole
    (it checks the image) before the task is made."""
    png = _png(256, 256)
    slots = ctx.api.post(
        "/v1/uploads", json={"files": [{"content_type": "image/png", "bytes": len(png)}]}
    )
    if slots.status_code not in (200, 201):
        raise ScenarioFailed(f"POST /v1/uploads answered {slots.status_code}: {slots.text[:200]}")
    slot = slots.json()["uploads"][0]
    httpx.put(slot["url"], content=png, headers=slot["headers"], timeout=30).raise_for_status()
    body = {"prompt": "a lamp", "provider": "mountsea-compat", "images": [slot["ref"]]}
    _results(_batch(ctx, [{"custom_id": "upload", "body": body}]))


def batch_cancel(ctx: Context) -> None:
    """A batch whose lines all wait (a paused client) is cancelled: the batch function cancels
    each queued task, which frees its place in the client's queue (a delete in the ledger)."""
    with ctx.limited(max_running_tasks=0) as paused:
        lines = [
            {"custom_id": f"q{n}", "body": {"prompt": f"a pot {n}", "provider": "mountsea-compat"}}
            for n in range(2)
        ]
        answer = paused.post("/v1/batches", json={"requests": lines})
        if answer.status_code != 202:
            raise ScenarioFailed(f"POST /v1/batches answered {answer.status_code}")
        batch_id = str(answer.json()["batch_id"])

        def counts() -> dict[str, Any]:
            got = paused.get(f"/v1/batches/{batch_id}")
            if got.status_code != 200:
                raise ScenarioFailed(f"GET /v1/batches/{batch_id} answered {got.status_code}")
            return dict(got.json())

        ctx.wait(lambda: counts()["counts"]["queued"] == 2 and counts()["status"] == "in_progress",
                 "both lines made and queued")  # fmt: skip
        cancelled = paused.post(f"/v1/batches/{batch_id}/cancel")
        if cancelled.status_code not in (200, 202):
            raise ScenarioFailed(f"cancel answered {cancelled.status_code}: {cancelled.text[:200]}")
        ctx.wait(
            lambda: counts()["status"] == "cancelled" and counts()["counts"]["cancelled"] == 2,
            "the batch cancelled with its two lines",
        )
        usage = paused.get("/v1/usage").json()
        if usage.get("queued_tasks"):
            raise ScenarioFailed(f"the client still holds queued places: {usage}")


def batch_refused_input_deleted(ctx: Context) -> None:
    """A batch line whose mask is not its image's size: the batch function stages the image,
    the mask is refused (an error row), and the staged image is deleted again."""
    before = set(_staged_inputs(ctx))
    body = {
        "prompt": "a cup",
        "provider": "mountsea-compat",
        "images": [_data_url(_png(256, 256))],
        "mask": _data_url(_png(128, 128, hole=True)),
    }
    answer = ctx.api.post("/v1/batches", json={"requests": [{"custom_id": "m", "body": body}]})
    if answer.status_code != 202:
        raise ScenarioFailed(f"POST /v1/batches answered {answer.status_code}: {answer.text[:200]}")
    batch_id = str(answer.json()["batch_id"])

    def final() -> dict[str, Any] | None:
        doc: dict[str, Any] = ctx.api.get(f"/v1/batches/{batch_id}").json()
        return doc if doc["status"] in ("completed", "cancelled", "expired") else None

    doc = ctx.wait(final, f"batch {batch_id} final")
    if doc["counts"]["succeeded"]:
        raise ScenarioFailed(f"a mask of another size was not refused: {doc['counts']}")
    left = set(_staged_inputs(ctx)) - before
    if left:
        raise ScenarioFailed(f"the image stayed staged after the refusal: {sorted(left)}")


SCENARIOS: Final[dict[Key, Scenario]] = {
    # ApiFunction
    ("ApiFunction", "kms:Encrypt", "WebhookKey"): webhook_secret,
    ("ApiFunction", "kms:Decrypt", "WebhookKey"): webhook_secret,
    ("ApiFunction", "sqs:SendMessage", "WebhookQueue"): webhook_delivery,
    (
        "ApiFunction",
        "ssm:GetParameters",
        "ProvidersParameter,ProvidersParameter/operator",
    ): get_and_list,
    ("ApiFunction", "dynamodb:GetItem", "TasksTable,TasksTable/index/ByClientKeys"): get_and_list,
    ("ApiFunction", "dynamodb:PutItem", "TasksTable,TasksTable/index/ByClientKeys"): get_and_list,
    ("ApiFunction", "dynamodb:Query", "TasksTable,TasksTable/index/ByClientKeys"): get_and_list,
    (
        "ApiFunction",
        "dynamodb:UpdateItem",
        "TasksTable,TasksTable/index/ByClientKeys",
    ): get_and_list,
    ("ApiFunction", "dynamodb:DeleteItem", "TasksTable,TasksTable/index/ByClientKeys"): cancel,
    ("ApiFunction", "dynamodb:BatchGetItem", "TasksTable,TasksTable/index/ByClientKeys"): usage,
    ("ApiFunction", "s3:PutObject", "ImagesBucket/inputs/*"): edit_task,
    ("ApiFunction", "s3:DeleteObject", "ImagesBucket/inputs/*"): refused_input_deleted,
    ("ApiFunction", "s3:GetObject", "ImagesBucket/inputs/*,ImagesBucket/outputs/*"): uploaded_input,
    ("ApiFunction", "sqs:SendMessage", "DispatchQueue"): get_and_list,
    ("ApiFunction", "events:PutEvents", "EventBus"): cancel,
    # OpenAiCompatFunction
    (
        "OpenAiCompatFunction",
        "ssm:GetParameters",
        "ProvidersParameter,ProvidersParameter/operator",
    ): openai_generate,
    ("OpenAiCompatFunction", "dynamodb:GetItem", "TasksTable"): openai_generate,
    ("OpenAiCompatFunction", "dynamodb:PutItem", "TasksTable"): openai_generate,
    ("OpenAiCompatFunction", "dynamodb:DeleteItem", "TasksTable"): openai_callback,
    ("OpenAiCompatFunction", "dynamodb:BatchGetItem", "TasksTable"): openai_two_images,
    ("OpenAiCompatFunction", "dynamodb:UpdateItem", "TasksTable"): openai_generate,
    ("OpenAiCompatFunction", "dynamodb:Query", "TasksTable"): openai_generate,
    ("OpenAiCompatFunction", "s3:PutObject", "ImagesBucket/inputs/*"): openai_edit,
    (
        "OpenAiCompatFunction",
        "s3:DeleteObject",
        "ImagesBucket/inputs/*",
    ): openai_refused_input_deleted,
    ("OpenAiCompatFunction", "s3:GetObject", "ImagesBucket/inputs/*"): openai_edit,
    # an answer with images stored by another function (n=2: the parts go through the dispatch
    # queue); a b64_json answer of one image hands back the one it just stored, from memory
    ("OpenAiCompatFunction", "s3:GetObject", "ImagesBucket/outputs/*"): openai_two_images,
    ("OpenAiCompatFunction", "sqs:SendMessage", "DispatchQueue"): openai_generate,
    ("OpenAiCompatFunction", "states:StartExecution", "PollStateMachine"): openai_poll,
    ("OpenAiCompatFunction", "sqs:SendMessage", "WebhookQueue"): openai_callback,
    ("OpenAiCompatFunction", "events:PutEvents", "EventBus"): openai_callback,
    (
        "OpenAiCompatFunction",
        "secretsmanager:GetSecretValue",
        "ProviderKeysSecret",
    ): openai_generate,
    ("OpenAiCompatFunction", "secretsmanager:GetSecretValue", "WebhookSecret"): openai_callback,
    # WebhookFunction
    ("WebhookFunction", "sqs:SendMessage", "FinalizeQueue"): callback_task,
    ("WebhookFunction", "secretsmanager:GetSecretValue", "WebhookSecret"): callback_task,
    # FinalizeFunction
    ("FinalizeFunction", "sqs:SendMessage", "DispatchQueue"): callback_admits_queued,
    (
        "FinalizeFunction",
        "ssm:GetParameters",
        "ProvidersParameter,ProvidersParameter/operator",
    ): callback_task,
    ("FinalizeFunction", "dynamodb:GetItem", "TasksTable"): callback_task,
    ("FinalizeFunction", "dynamodb:PutItem", "TasksTable"): callback_task,
    ("FinalizeFunction", "dynamodb:UpdateItem", "TasksTable"): callback_task,
    ("FinalizeFunction", "dynamodb:DeleteItem", "TasksTable"): callback_task,
    ("FinalizeFunction", "dynamodb:Query", "TasksTable"): callback_admits_queued,
    ("FinalizeFunction", "s3:PutObject", "ImagesBucket/outputs/*"): callback_task,
    ("FinalizeFunction", "sqs:SendMessage", "WebhookQueue"): callback_webhook,
    ("FinalizeFunction", "events:PutEvents", "EventBus"): callback_task,
    ("FinalizeFunction", "secretsmanager:GetSecretValue", "ProviderKeysSecret"): callback_task,
    # PollFunction
    ("PollFunction", "sqs:SendMessage", "DispatchQueue"): poll_admits_queued,
    ("PollFunction", "sqs:SendMessage", "WebhookQueue"): poll_webhook,
    (
        "PollFunction",
        "ssm:GetParameters",
        "ProvidersParameter,ProvidersParameter/operator",
    ): poll_task,
    ("PollFunction", "dynamodb:GetItem", "TasksTable"): poll_task,
    ("PollFunction", "dynamodb:PutItem", "TasksTable"): poll_task,
    ("PollFunction", "dynamodb:UpdateItem", "TasksTable"): poll_task,
    ("PollFunction", "dynamodb:DeleteItem", "TasksTable"): poll_task,
    ("PollFunction", "dynamodb:Query", "TasksTable"): poll_admits_queued,
    ("PollFunction", "s3:PutObject", "ImagesBucket/outputs/*"): poll_task,
    ("PollFunction", "events:PutEvents", "EventBus"): poll_task,
    ("PollFunction", "secretsmanager:GetSecretValue", "ProviderKeysSecret"): poll_task,
    # SweeperFunction
    ("SweeperFunction", "sqs:SendMessage", "DispatchQueue"): sweeper_admits_queued,
    ("SweeperFunction", "sqs:SendMessage", "WebhookQueue"): sweeper_webhook,
    (
        "SweeperFunction",
        "ssm:GetParameters",
        "ProvidersParameter,ProvidersParameter/operator",
    ): sweeper_task,
    ("SweeperFunction", "dynamodb:GetItem", "TasksTable"): sweeper_task,
    ("SweeperFunction", "dynamodb:PutItem", "TasksTable"): sweeper_task,
    ("SweeperFunction", "dynamodb:UpdateItem", "TasksTable"): sweeper_task,
    ("SweeperFunction", "dynamodb:DeleteItem", "TasksTable"): sweeper_task,
    ("SweeperFunction", "dynamodb:Query", "TasksTable"): sweeper_admits_queued,
    ("SweeperFunction", "dynamodb:Query", "TasksTable/index/OpenByCheckTime"): sweeper_task,
    ("SweeperFunction", "s3:PutObject", "ImagesBucket/outputs/*"): sweeper_task,
    ("SweeperFunction", "events:PutEvents", "EventBus"): sweeper_task,
    ("SweeperFunction", "secretsmanager:GetSecretValue", "ProviderKeysSecret"): sweeper_task,
    # DispatchFunction
    ("DispatchFunction", "sqs:SendMessage", "WebhookQueue"): webhook_delivery,
    (
        "DispatchFunction",
        "ssm:GetParameters",
        "ProvidersParameter,ProvidersParameter/operator",
    ): sync_task,
    ("DispatchFunction", "dynamodb:GetItem", "TasksTable"): sync_task,
    ("DispatchFunction", "dynamodb:PutItem", "TasksTable"): sync_task,
    ("DispatchFunction", "dynamodb:Query", "TasksTable"): sync_task,
    ("DispatchFunction", "dynamodb:DeleteItem", "TasksTable"): sync_task,
    ("DispatchFunction", "dynamodb:UpdateItem", "TasksTable"): sync_task,
    ("DispatchFunction", "s3:GetObject", "ImagesBucket/inputs/*"): sync_edit_task,
    ("DispatchFunction", "s3:PutObject", "ImagesBucket/outputs/*"): sync_task,
    ("DispatchFunction", "states:StartExecution", "PollStateMachine"): poll_task,
    ("DispatchFunction", "sqs:SendMessage", "DispatchQueue"): fallback_task,
    ("DispatchFunction", "events:PutEvents", "EventBus"): sync_task,
    ("DispatchFunction", "secretsmanager:GetSecretValue", "WebhookSecret"): callback_task,
    ("DispatchFunction", "secretsmanager:GetSecretValue", "ProviderKeysSecret"): sync_task,
    # ThumbnailFunction
    ("ThumbnailFunction", "dynamodb:GetItem", "TasksTable"): thumbnail_made,
    ("ThumbnailFunction", "dynamodb:UpdateItem", "TasksTable"): thumbnail_made,
    ("ThumbnailFunction", "s3:GetObject", "ImagesBucket/outputs/*"): thumbnail_made,
    ("ThumbnailFunction", "s3:PutObject", "ImagesBucket/outputs/*"): thumbnail_made,
    # WebhookDeliveryFunction
    ("WebhookDeliveryFunction", "dynamodb:GetItem", "TasksTable"): webhook_delivery,
    ("WebhookDeliveryFunction", "dynamodb:PutItem", "TasksTable"): webhook_delivery,
    ("WebhookDeliveryFunction", "kms:Encrypt", "WebhookKey"): webhook_first_secret,
    ("WebhookDeliveryFunction", "kms:Decrypt", "WebhookKey"): webhook_delivery,
    (
        "WebhookDeliveryFunction",
        "sqs:SendMessage",
        "WebhookQueue,WebhookDeadLetterQueue",
    ): webhook_retried,
    # UploadEditFunction
    (
        "UploadEditFunction",
        "ssm:GetParameters",
        "ProvidersParameter,ProvidersParameter/operator",
    ): inbox_upload,
    # a re-upload reads the earlier claim's task (a first upload reads its client in one
    # BatchGetItem, and nothing with GetItem)
    ("UploadEditFunction", "dynamodb:GetItem", "TasksTable"): inbox_reupload,
    ("UploadEditFunction", "dynamodb:PutItem", "TasksTable"): inbox_upload,
    ("UploadEditFunction", "dynamodb:UpdateItem", "TasksTable"): inbox_upload,
    ("UploadEditFunction", "dynamodb:DeleteItem", "TasksTable"): inbox_reupload,
    ("UploadEditFunction", "dynamodb:BatchGetItem", "TasksTable"): inbox_upload,
    ("UploadEditFunction", "dynamodb:Query", "TasksTable"): inbox_upload,
    ("UploadEditFunction", "s3:GetObject", "InboxBucket/*"): inbox_upload,
    ("UploadEditFunction", "s3:ListBucket", "InboxBucket"): inbox_upload,
    ("UploadEditFunction", "s3:PutObject", "ImagesBucket/inputs/*"): inbox_upload,
    ("UploadEditFunction", "s3:GetObject", "ImagesBucket/inputs/*"): inbox_upload,
    ("UploadEditFunction", "s3:DeleteObject", "ImagesBucket/inputs/*"): inbox_mask_refused,
    ("UploadEditFunction", "ssm:GetParameter", "InboxRulesParameter"): inbox_upload,
    ("UploadEditFunction", "sqs:SendMessage", "DispatchQueue"): inbox_upload,
    ("UploadEditFunction", "sqs:SendMessage", "BatchQueue"): inbox_manifest,
    ("UploadEditFunction", "events:PutEvents", "EventBus"): inbox_mask_refused,
    # batches (WebhookQueue and BatchQueue are statements of their own: each taken out alone)
    ("ApiFunction", "sqs:SendMessage", "BatchQueue"): batch_task,
    ("ApiFunction", "dynamodb:BatchWriteItem", "TasksTable"): batch_task,
    ("FinalizeFunction", "sqs:SendMessage", "BatchQueue"): callback_finishes_batch,
    ("PollFunction", "sqs:SendMessage", "BatchQueue"): poll_finishes_batch,
    ("SweeperFunction", "sqs:SendMessage", "BatchQueue"): sweeper_finishes_batch,
    ("DispatchFunction", "sqs:SendMessage", "BatchQueue"): batch_task,
    (
        "BatchFunction",
        "ssm:GetParameters",
        "ProvidersParameter,ProvidersParameter/operator",
    ): batch_task,
    ("BatchFunction", "dynamodb:GetItem", "TasksTable"): batch_task,
    ("BatchFunction", "dynamodb:PutItem", "TasksTable"): batch_task,
    ("BatchFunction", "dynamodb:Query", "TasksTable"): batch_task,
    ("BatchFunction", "dynamodb:UpdateItem", "TasksTable"): batch_task,
    ("BatchFunction", "dynamodb:DeleteItem", "TasksTable"): batch_cancel,
    ("BatchFunction", "dynamodb:BatchGetItem", "TasksTable"): batch_task,
    ("BatchFunction", "dynamodb:BatchWriteItem", "TasksTable"): batch_input_file,
    ("BatchFunction", "s3:PutObject", "ImagesBucket/inputs/*"): batch_edit,
    ("BatchFunction", "s3:DeleteObject", "ImagesBucket/inputs/*"): batch_refused_input_deleted,
    ("BatchFunction", "s3:GetObject", "ImagesBucket/inputs/*"): batch_uploaded_input,
    ("BatchFunction", "s3:PutObject", "ImagesBucket/batches/*"): batch_task,
    ("BatchFunction", "s3:PutObject", "InboxBucket/batches/*"): inbox_manifest,
    ("BatchFunction", "sqs:SendMessage", "DispatchQueue,BatchQueue,WebhookQueue"): batch_task,
    ("BatchFunction", "events:PutEvents", "EventBus"): batch_task,
}
"""Each permission the check proves, and the quickest scenario that needs it (found by a
discovery run, ``--only ... --try a,b``: the first candidate that failed without it)."""

_UNCHECKED_URLS = (
    "on AWS the URL carries the signer's rights, so S3 refuses it to the receiver without"
    " s3:GetObject; moto serves presigned URLs without checking them"
)

AWS_ONLY: Final[dict[Key, str]] = {
    ("WebhookDeliveryFunction", "s3:GetObject", "ImagesBucket/outputs/*,ImagesBucket/batches/*"): (
        "signs presigned GET URLs of outputs (a task webhook's image links) and of a batch's"
        " results.jsonl (batch.completed): " + _UNCHECKED_URLS
    ),
    ("ApiFunction", "s3:GetObject", "ImagesBucket/batches/*"): (
        "signs the presigned GET of a batch's results.jsonl (GET /v1/batches/{id}): "
        + _UNCHECKED_URLS
    ),
    ("BatchFunction", "s3:GetObject", "ImagesBucket/outputs/*"): (
        "signs the presigned GET URLs of the images in results.jsonl: " + _UNCHECKED_URLS
    ),
}
"""Permissions moto cannot show are needed, and why (docs/development.md, IAM)."""

_ABORT = (
    "S3ImageRepository aborts a multipart upload (an image over its 8 MiB part size) whose part"
    " or completion failed, and S3 refuses the abort without s3:AbortMultipartUpload (the parts"
    " stay, billed, until the lifecycle rule); moto cannot be made to fail a part on demand"
    " (tests/integration/images/test_image_store_s3.py::test_failed_multipart_upload_is_aborted)"
)
_DISCARD = (
    "refresh._discard_unnamed deletes the outputs a writer stored for a task it did not finish"
    " (a cancel, an expiry or a duplicate finaliser won the race) or that failed on a later bad"
    " output; neither a race nor one good and one bad image can be made on demand"
    " (tests/unit/service/test_refresh.py::test_an_output_stored_for_a_task_that_ended_meanwhile"
    "_is_deleted, ::test_outputs_stored_before_a_bad_one_are_deleted_when_the_task_fails)"
)

NOT_ON_DEMAND: Final[dict[Key, str]] = {
    ("OpenAiCompatFunction", "s3:PutObject", "ImagesBucket/outputs/*"): (
        "the function's own sync attempt stores the image (service/dispatch.py _call_sync ->"
        " finalize_success -> images.store); taken out, the call still gets its image whenever"
        " the attempt is not made here (the dispatch function makes it again, or the task goes"
        " to an async provider), and two fresh-clone runs of three found it 'unused' on both"
        " tries: not provable on demand until a scenario can pin the attempt to this function"
    ),
    ("OpenAiCompatFunction", "s3:AbortMultipartUpload", "ImagesBucket/outputs/*"): _ABORT,
    ("OpenAiCompatFunction", "s3:DeleteObject", "ImagesBucket/outputs/*"): _DISCARD,
    ("FinalizeFunction", "s3:AbortMultipartUpload", "ImagesBucket/outputs/*"): _ABORT,
    ("FinalizeFunction", "s3:DeleteObject", "ImagesBucket/outputs/*"): _DISCARD,
    ("PollFunction", "s3:AbortMultipartUpload", "ImagesBucket/outputs/*"): _ABORT,
    ("PollFunction", "s3:DeleteObject", "ImagesBucket/outputs/*"): _DISCARD,
    ("SweeperFunction", "s3:AbortMultipartUpload", "ImagesBucket/outputs/*"): _ABORT,
    ("SweeperFunction", "s3:DeleteObject", "ImagesBucket/outputs/*"): _DISCARD,
    ("DispatchFunction", "s3:AbortMultipartUpload", "ImagesBucket/outputs/*"): _ABORT,
    ("DispatchFunction", "s3:DeleteObject", "ImagesBucket/outputs/*"): _DISCARD,
    ("UploadEditFunction", "s3:AbortMultipartUpload", "ImagesBucket/inputs/*"): _ABORT,
    ("UploadEditFunction", "s3:PutObject", "InboxBucket/batches/*"): (
        "writes the errors file of a manifest the inbox refuses before reading it: one over"
        " 50 MiB (too slow to drop in a scenario) or under a broken rules document (which would"
        " break every other inbox scenario running meanwhile)"
        " (tests/unit/service/test_inbox_batches.py"
        "::test_a_manifest_refused_by_the_inbox_gets_its_errors_file)"
    ),
    ("SweeperFunction", "dynamodb:BatchGetItem", "TasksTable"): (
        "parts.check_parent reads an open parent's parts in one BatchGetItem to record a part"
        " never made (a crash mid-submit), 5 minutes after the parent: too slow, and a crash"
        " (tests/unit/service/test_parts.py::test_the_sweeper_records_a_part_never_made_as_failed)"
    ),
    ("WebhookDeliveryFunction", "events:PutEvents", "EventBus"): (
        "publishes Image Task Webhook Failed after a delivery's 11th and last attempt (27.7 h;"
        " 33 min at devstack's time scale): too slow for a scenario"
        " (tests/unit/service/test_webhooks.py::test_after_the_last_attempt_the_delivery_is"
        "_dead_lettered)"
    ),
}
"""Permissions needed on a path no scenario can take on demand (a failure inside S3, a lost
race, a retry schedule of hours), with the code that needs them and the test that covers it.
The check does not take them out; ``docs/iam-mutations.md`` lists them."""

PENDING: Final[dict[Key, str]] = {}
"""Permissions not yet proved either way (a new scenario being written). The check reports
them and fails while any is left."""


# -- the check --------------------------------------------------------------------------------
ACCEPTED: Final = frozenset({"denied", "aws-only", "by-reading"})
"""The verdicts that pass the check."""


@dataclass
class Outcome:
    mutation: Mutation
    scenario: str
    verdict: str
    """``denied`` (the permission is needed), ``unused``, ``unproven`` (failed, but moto or the
    log did not name that action), ``aws-only``, ``by-reading`` (:data:`NOT_ON_DEMAND`),
    ``pending``, ``unmapped``."""
    detail: str
    seconds: float


def unmapped(found: list[Mutation]) -> list[Mutation]:
    """Permissions in none of the tables (a scenario, AWS-only, not on demand, pending)."""
    known = SCENARIOS.keys() | AWS_ONLY.keys() | NOT_ON_DEMAND.keys() | PENDING.keys()
    return [m for m in found if m.key not in known]


def run_scenario(ctx: Context, scenario: Scenario) -> str | None:
    """None if the scenario passed, else why it failed."""
    ctx.started = _now()
    try:
        scenario(ctx)
    except ScenarioFailed as failure:
        return str(failure)
    except (httpx.HTTPError, AssertionError, KeyError, ValueError) as failure:
        return f"{type(failure).__name__}: {failure}"
    return None


def check_one(ctx: Context, mutation: Mutation, scenario: Scenario) -> Outcome:
    """Run ``scenario`` with ``mutation`` applied; put the policies back whatever happens."""
    stack = ctx.stack
    documents = stack.policies[mutation.function]
    started = _now()
    stack.set_policies(mutation.function, without(documents, mutation.permission))
    if mutation.action.split(":")[0] in CACHED_SERVICES:
        from devstack.process_runtime import ProcessRuntime

        assert isinstance(stack.runtime, ProcessRuntime)
        stack.runtime.restart(mutation.function)
    ctx.mutation = mutation
    try:
        failure = run_scenario(ctx, scenario)
    finally:
        stack.set_policies(mutation.function, documents)
        ctx.mutation = None
    seconds = _now() - started
    iam, log = ctx.observer.since(started)
    by_moto = [d for d in iam if d.function == mutation.function and d.action == mutation.action]
    logged = [d for d in log if d.function == mutation.function]
    name = scenario.__name__
    if failure is None:
        return Outcome(mutation, name, "unused", "the scenario passed without it", seconds)
    if not by_moto or not logged:
        seen = sorted({f"{d.function} {d.action}" for d in iam})
        return Outcome(
            mutation, name, "unproven", f"{failure}; refusals seen: {seen or 'none'}", seconds
        )
    # the line naming that action (a transaction's refusal is logged as TransactWriteItems)
    shown = next((d for d in logged if d.action == mutation.action), logged[0])
    return Outcome(
        mutation, name, "denied", f"logged: {shown.action} on {shown.resource}; {failure}", seconds
    )


@contextlib.contextmanager
def enforced_stack(log: io.TextIOBase | None) -> Iterator[Context]:
    """One IAM-enforced devstack of its own (no state file), a client and an event log."""
    from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore

    from devstack.demo import subscribe
    from devstack.stack import DevStack, StackConfig

    observer = Observer(log)
    config = StackConfig(
        time_scale=0.02,
        task_deadline_seconds=500,
        provider_timeout_seconds=2,
        state_file=None,
        client_id="iam-check",
        log_sink=observer,
        log_level="WARNING",
    )
    with DevStack(config) as stack:
        watch_moto_refusals(observer)
        functions = stack.template["Resources"]
        for logical_id in stack.policies:
            if functions[logical_id]["Type"] != "AWS::Serverless::Function":
                continue
            observer.know(role_name(stack.runtime.get(logical_id).name), logical_id)
        info = stack.info
        assert info is not None
        keys = DynamoDBApiKeyStore(boto3.client("dynamodb"), info.table_name)
        events = EventLog(subscribe(info))
        try:
            client_id = f"iam-{uuid.uuid4().hex[:8]}"
            api_key = keys.create_key(client_id, name="iam-check")
            headers = {"Authorization": f"Bearer {api_key}"}
            with httpx.Client(base_url=info.api_url, headers=headers, timeout=60) as api:
                yield Context(info, stack, api, client_id, api_key, events, observer)
        finally:
            events.close()


def check(ctx: Context, found: list[Mutation], say: Callable[[str], None] = print) -> list[Outcome]:
    """The control runs, then each mutation; every outcome, in order."""
    outcomes: list[Outcome] = []
    for mutation in found:
        if mutation.key in AWS_ONLY:
            outcomes.append(Outcome(mutation, "-", "aws-only", AWS_ONLY[mutation.key], 0.0))
        elif mutation.key in NOT_ON_DEMAND:
            reason = NOT_ON_DEMAND[mutation.key]
            outcomes.append(Outcome(mutation, "-", "by-reading", reason, 0.0))
        elif mutation.key in PENDING:
            outcomes.append(Outcome(mutation, "-", "pending", PENDING[mutation.key], 0.0))
        elif mutation.key not in SCENARIOS:
            outcomes.append(
                Outcome(mutation, "-", "unmapped", "no scenario and not listed as AWS-only", 0.0)
            )
    for outcome in outcomes:
        say(_line(outcome))
    controls = {SCENARIOS[m.key] for m in found if m.key in SCENARIOS}
    for scenario in sorted(controls, key=lambda s: s.__name__):
        started = _now()
        failure = run_scenario(ctx, scenario)
        say(
            f"control   {scenario.__name__:<18} {'ok' if failure is None else failure}"
            f" ({_now() - started:.1f} s)"
        )
        if failure is not None:
            raise SystemExit(f"{scenario.__name__} fails on the template as shipped: {failure}")
    for mutation in found:
        if mutation.key in SCENARIOS:
            outcome = check_one(ctx, mutation, SCENARIOS[mutation.key])
            if outcome.verdict != "denied":
                # One more try: a scenario on a loaded machine can fail for time (its wait runs
                # out) or pass on a warm cache; a refusal the second time is still a proof, and
                # the first try stays in the detail so a flaky scenario is visible in the report.
                say(_line(outcome))
                again = check_one(ctx, mutation, SCENARIOS[mutation.key])
                first = f"{outcome.verdict}: {outcome.detail[:60]}"
                outcome = replace(
                    again,
                    detail=f"second try (first {first}); {again.detail}",
                    seconds=outcome.seconds + again.seconds,
                )
            outcomes.append(outcome)
            say(_line(outcome))
    return outcomes


def _line(outcome: Outcome) -> str:
    m = outcome.mutation
    return (
        f"{outcome.verdict:<9} {m.function} {m.action} on {m.resource}"
        f" [{outcome.scenario}, {outcome.seconds:.1f} s]: {outcome.detail[:160]}"
    )


HOW_TO_MAP: Final = (
    "Each permission in template.yaml needs a scenario that fails without it: add a function"
    " to devstack/iam_mutations.py that drives the flow using it (as a test would) and map the"
    " permission to it in SCENARIOS; or, if moto cannot show it is needed, list it in AWS_ONLY"
    " with the reason (and in docs/development.md, IAM)."
)


def report(outcomes: list[Outcome], seconds: float) -> str:
    """The Markdown report (``docs/iam-mutations.md``)."""
    denied = [o for o in outcomes if o.verdict == "denied"]
    lines = [
        "# IAM mutations: each permission, taken out, fails a named scenario",
        "",
        "Written by `python -m devstack.iam_mutations` (`make iam-check`): one IAM-enforced",
        "devstack; each `Action` of each function's policy is taken out of its role in turn,",
        "the scenario it maps to runs, and moto must refuse exactly that action to that function",
        "(the function logging `AWS access denied`) while the scenario fails.",
        "",
        f"{len(outcomes)} permissions: {len(denied)} proved needed,"
        f" {sum(o.verdict == 'aws-only' for o in outcomes)} AWS-only,"
        f" {sum(o.verdict == 'by-reading' for o in outcomes)} shown by reading the code,"
        f" {sum(o.verdict == 'unused' for o in outcomes)} unused,"
        f" {sum(o.verdict in ('unproven', 'unmapped') for o in outcomes)} unproven or unmapped;"
        f" {seconds:.0f} s in all.",
        "",
        "| function | action | resource | scenario | outcome | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        m = o.mutation
        detail = o.detail.replace("|", "\\|").replace("\n", " ")[:140]
        lines.append(
            f"| {m.function} | `{m.action}` | `{m.resource}` | {o.scenario} |"
            f" {o.verdict}: {detail} | {o.seconds:.1f} |"
        )
    lines += ["", "## Unused", ""]
    lines += [
        f"- {o.mutation.function} `{o.mutation.action}` on `{o.mutation.resource}`"
        for o in outcomes
        if o.verdict == "unused"
    ] or ["None."]
    for verdict, title in (
        ("aws-only", "AWS-only (moto cannot show them; docs/development.md, IAM)"),
        ("by-reading", "Not on demand (a failure or a race no scenario can cause; by reading)"),
    ):
        lines += ["", f"## {title}", ""]
        lines += [
            f"- {o.mutation.function} `{o.mutation.action}` on `{o.mutation.resource}`: {o.detail}"
            for o in outcomes
            if o.verdict == verdict
        ] or ["None."]
    return "\n".join(lines) + "\n"


def discover(only: str | None, names: list[str], log_path: Path | None) -> int:
    """Try candidate scenarios on the selected permissions; print what each proves."""
    by_name = {f.__name__: f for f in _all_scenarios()}
    candidates = [by_name[name] for name in names]
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(log_path.open("w")) if log_path else None
        ctx = stack.enter_context(enforced_stack(log))
        found = mutations(ctx.stack.template, ctx.stack.policies)
        if only:
            chosen = set(only.split(","))
            found = [m for m in found if chosen & {m.function, f"{m.function}:{m.action}"}]
        for scenario in candidates:
            failure = run_scenario(ctx, scenario)
            print(f"control   {scenario.__name__:<18} {'ok' if failure is None else failure}")
        for mutation in found:
            for scenario in candidates:
                outcome = check_one(ctx, mutation, scenario)
                print(_line(outcome), flush=True)
                if outcome.verdict == "denied":
                    break
    return 0


def _all_scenarios() -> list[Scenario]:
    """Every scenario function of this module (those with a ``Context`` parameter)."""
    module = sys.modules[__name__]
    return [
        value
        for name, value in vars(module).items()
        if callable(value)
        and not name.startswith("_")
        and getattr(value, "__module__", None) == __name__
        and getattr(value, "__annotations__", None) == {"ctx": "Context", "return": "None"}
    ]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: 0 when every permission is proved needed or AWS-only."""
    parser = argparse.ArgumentParser(prog="python -m devstack.iam_mutations", description=__doc__)
    parser.add_argument("--report", type=Path, default=REPORT_PATH, help="the Markdown report")
    parser.add_argument("--log", type=Path, help="write every function's output to this file")
    parser.add_argument(
        "--only",
        help="check only these permissions: functions (ApiFunction) or their actions"
        " (ApiFunction:sqs:SendMessage), comma-separated; no report is written",
    )
    parser.add_argument(
        "--try",
        dest="candidates",
        help="discovery: for the selected permissions (mapped or pending), try these scenarios"
        " (comma-separated names) in turn and print the first that proves each; no report",
    )
    args = parser.parse_args(argv)
    if args.candidates:
        return discover(args.only, args.candidates.split(","), args.log)
    started = _now()
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(args.log.open("w")) if args.log else None
        ctx = stack.enter_context(enforced_stack(log))
        found = mutations(ctx.stack.template, ctx.stack.policies)
        if args.only:
            chosen = set(args.only.split(","))
            found = [m for m in found if chosen & {m.function, f"{m.function}:{m.action}"}]
        missing = unmapped(found)
        if missing:
            for mutation in missing:
                print(f"unmapped  {mutation.function} {mutation.action} on {mutation.resource}")
            print(HOW_TO_MAP)
        outcomes = check(ctx, found)
    seconds = _now() - started
    if not args.only:
        args.report.write_text(report(outcomes, seconds))
    bad = [o for o in outcomes if o.verdict not in ACCEPTED]
    print(
        f"{len(outcomes)} permissions checked in {seconds:.0f} s:"
        f" {len(outcomes) - len(bad)} proved needed, AWS-only or shown by reading, {len(bad)} not"
        + (f"\n{HOW_TO_MAP}" if any(o.verdict == "unmapped" for o in bad) else "")
    )
    for outcome in bad:  # again at the end, where a CI log's tail shows them
        print(f"NOT PROVED {_line(outcome)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
