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
:data:`AWS_ONLY` with the reason; the README's IAM section lists the same. A permission in
neither table fails the check at once: each new permission gets a scenario that needs it.

Every scenario first runs on the template as shipped (the control): one that fails there
proves nothing, and fails the check.

Writes ``docs/iam-mutations.md`` (function, action, resource, scenario, outcome, seconds).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import re
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
                    with self._lock:
                        self._types[str(detail.get("task_id", ""))].add(str(event["detail-type"]))
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
        answer = ctx.api.post(f"/v1/tasks/{task_id}/webhooks/redeliver")
        if answer.status_code != 202:
            raise ScenarioFailed(f"redeliver answered {answer.status_code}: {answer.text[:200]}")
        ctx.wait(
            lambda: len([d for d in receiver.received(path) if d.status == 204]) >= 2, "redelivery"
        )
    finally:
        receiver.close()


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


SCENARIOS: Final[dict[Key, Scenario]] = {
    ("ApiFunction", "kms:Encrypt", "WebhookKey"): webhook_secret,
    ("ApiFunction", "kms:Decrypt", "WebhookKey"): webhook_secret,
    ("ApiFunction", "sqs:SendMessage", "WebhookQueue"): webhook_delivery,
    (
        "ApiFunction",
        "ssm:GetParameter",
        "ProvidersParameter,ProvidersParameter/operator",
    ): get_and_list,
    ("ApiFunction", "dynamodb:GetItem", "TasksTable,TasksTable/index/ByClient"): get_and_list,
    ("ApiFunction", "dynamodb:PutItem", "TasksTable,TasksTable/index/ByClient"): get_and_list,
    ("ApiFunction", "dynamodb:Query", "TasksTable,TasksTable/index/ByClient"): get_and_list,
    ("ApiFunction", "dynamodb:UpdateItem", "TasksTable,TasksTable/index/ByClient"): get_and_list,
    ("ApiFunction", "dynamodb:DeleteItem", "TasksTable,TasksTable/index/ByClient"): cancel,
    ("ApiFunction", "dynamodb:BatchGetItem", "TasksTable,TasksTable/index/ByClient"): usage,
    ("ApiFunction", "s3:PutObject", "ImagesBucket/inputs/*"): edit_task,
    ("ApiFunction", "sqs:SendMessage", "DispatchQueue"): get_and_list,
    ("ApiFunction", "events:PutEvents", "EventBus"): cancel,
    (
        "OpenAiCompatFunction",
        "ssm:GetParameter",
        "ProvidersParameter,ProvidersParameter/operator",
    ): openai_generate,
    ("OpenAiCompatFunction", "dynamodb:GetItem", "TasksTable"): openai_generate,
    ("OpenAiCompatFunction", "dynamodb:PutItem", "TasksTable"): openai_generate,
    ("OpenAiCompatFunction", "dynamodb:UpdateItem", "TasksTable"): openai_generate,
    ("OpenAiCompatFunction", "dynamodb:Query", "TasksTable"): openai_generate,
    ("OpenAiCompatFunction", "s3:PutObject", "ImagesBucket/outputs/*"): openai_generate,
    (
        "SweeperFunction",
        "ssm:GetParameter",
        "ProvidersParameter,ProvidersParameter/operator",
    ): sweeper_task,
    ("OpenAiCompatFunction", "s3:GetObject", "ImagesBucket/outputs/*"): openai_generate,
    ("OpenAiCompatFunction", "sqs:SendMessage", "DispatchQueue"): openai_generate,
    ("SweeperFunction", "dynamodb:GetItem", "TasksTable"): sweeper_task,
    ("SweeperFunction", "dynamodb:PutItem", "TasksTable"): sweeper_task,
    (
        "OpenAiCompatFunction",
        "secretsmanager:GetSecretValue",
        "ProviderKeysSecret",
    ): openai_generate,
    ("SweeperFunction", "dynamodb:UpdateItem", "TasksTable"): sweeper_task,
    ("SweeperFunction", "dynamodb:DeleteItem", "TasksTable"): sweeper_task,
    ("WebhookFunction", "sqs:SendMessage", "FinalizeQueue"): callback_task,
    ("WebhookFunction", "secretsmanager:GetSecretValue", "WebhookSecret"): callback_task,
    ("SweeperFunction", "dynamodb:Query", "TasksTable/index/OpenByCheckTime"): sweeper_task,
    (
        "FinalizeFunction",
        "ssm:GetParameter",
        "ProvidersParameter,ProvidersParameter/operator",
    ): callback_task,
    ("SweeperFunction", "s3:PutObject", "ImagesBucket/outputs/*"): sweeper_task,
    ("FinalizeFunction", "dynamodb:GetItem", "TasksTable"): callback_task,
    ("FinalizeFunction", "dynamodb:PutItem", "TasksTable"): callback_task,
    ("FinalizeFunction", "dynamodb:UpdateItem", "TasksTable"): callback_task,
    ("FinalizeFunction", "dynamodb:DeleteItem", "TasksTable"): callback_task,
    ("FinalizeFunction", "s3:PutObject", "ImagesBucket/outputs/*"): callback_task,
}
"""Each permission the check proves, and the quickest scenario that needs it (each found by
a discovery run: the first of the function's candidate scenarios that failed without it)."""

AWS_ONLY: Final[dict[Key, str]] = {}
"""Permissions moto cannot show are needed, and why (README, "IAM: what devstack enforces")."""

PENDING: Final[dict[Key, str]] = {
    (
        "ApiFunction",
        "s3:DeleteObject",
        "ImagesBucket/inputs/*",
    ): "discovery run: no ApiFunction scenario failed without it",
    (
        "ApiFunction",
        "s3:GetObject",
        "ImagesBucket/inputs/*,ImagesBucket/outputs/*",
    ): "discovery run: no ApiFunction scenario failed without it",
    (
        "OpenAiCompatFunction",
        "dynamodb:DeleteItem",
        "TasksTable",
    ): "discovery run: openai_generate unused",
    ("SweeperFunction", "sqs:SendMessage", "DispatchQueue"): "discovery run: sweeper_task unused",
    (
        "OpenAiCompatFunction",
        "s3:PutObject",
        "ImagesBucket/inputs/*",
    ): "discovery run: openai_generate unused",
    (
        "OpenAiCompatFunction",
        "s3:DeleteObject",
        "ImagesBucket/inputs/*",
    ): "discovery run: openai_generate unused",
    ("SweeperFunction", "sqs:SendMessage", "WebhookQueue"): "discovery run: sweeper_task unused",
    (
        "OpenAiCompatFunction",
        "s3:GetObject",
        "ImagesBucket/inputs/*",
    ): "discovery run: openai_generate unused",
    (
        "OpenAiCompatFunction",
        "s3:AbortMultipartUpload",
        "ImagesBucket/outputs/*",
    ): "discovery run: openai_generate unused",
    (
        "OpenAiCompatFunction",
        "s3:DeleteObject",
        "ImagesBucket/outputs/*",
    ): "discovery run: openai_generate unused",
    (
        "OpenAiCompatFunction",
        "states:StartExecution",
        "PollStateMachine",
    ): "discovery run: openai_generate unused",
    (
        "OpenAiCompatFunction",
        "sqs:SendMessage",
        "WebhookQueue",
    ): "discovery run: openai_generate unused",
    (
        "OpenAiCompatFunction",
        "events:PutEvents",
        "EventBus",
    ): "discovery run: openai_generate unused",
    (
        "OpenAiCompatFunction",
        "secretsmanager:GetSecretValue",
        "WebhookSecret",
    ): "discovery run: openai_generate unused",
    ("SweeperFunction", "dynamodb:Query", "TasksTable"): "discovery run: sweeper_task unused",
    ("FinalizeFunction", "sqs:SendMessage", "DispatchQueue"): "discovery run: callback_task unused",
    (
        "SweeperFunction",
        "s3:AbortMultipartUpload",
        "ImagesBucket/outputs/*",
    ): "discovery run: sweeper_task unused",
    (
        "SweeperFunction",
        "s3:DeleteObject",
        "ImagesBucket/outputs/*",
    ): "discovery run: sweeper_task unused",
    ("FinalizeFunction", "dynamodb:Query", "TasksTable"): "discovery run: callback_task unused",
    (
        "SweeperFunction",
        "s3:GetObject",
        "ImagesBucket/outputs/*",
    ): "discovery run: sweeper_task unused",
    (
        "FinalizeFunction",
        "s3:AbortMultipartUpload",
        "ImagesBucket/outputs/*",
    ): "discovery run: callback_task unused",
    (
        "FinalizeFunction",
        "s3:DeleteObject",
        "ImagesBucket/outputs/*",
    ): "discovery run: callback_task unused",
    (
        "FinalizeFunction",
        "s3:GetObject",
        "ImagesBucket/outputs/*",
    ): "not reached: the discovery run stopped before it",
    (
        "FinalizeFunction",
        "sqs:SendMessage",
        "WebhookQueue",
    ): "not reached: the discovery run stopped before it",
    (
        "FinalizeFunction",
        "events:PutEvents",
        "EventBus",
    ): "not reached: the discovery run stopped before it",
    (
        "FinalizeFunction",
        "secretsmanager:GetSecretValue",
        "ProviderKeysSecret",
    ): "not reached: the discovery run stopped before it",
    (
        "PollFunction",
        "sqs:SendMessage",
        "DispatchQueue",
    ): "not reached: the discovery run stopped before it",
    (
        "PollFunction",
        "sqs:SendMessage",
        "WebhookQueue",
    ): "not reached: the discovery run stopped before it",
    (
        "PollFunction",
        "ssm:GetParameter",
        "ProvidersParameter,ProvidersParameter/operator",
    ): "not reached: the discovery run stopped before it",
    (
        "PollFunction",
        "dynamodb:GetItem",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "PollFunction",
        "dynamodb:PutItem",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "PollFunction",
        "dynamodb:UpdateItem",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "PollFunction",
        "dynamodb:DeleteItem",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "PollFunction",
        "dynamodb:Query",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "PollFunction",
        "s3:PutObject",
        "ImagesBucket/outputs/*",
    ): "not reached: the discovery run stopped before it",
    (
        "PollFunction",
        "s3:AbortMultipartUpload",
        "ImagesBucket/outputs/*",
    ): "not reached: the discovery run stopped before it",
    (
        "PollFunction",
        "s3:DeleteObject",
        "ImagesBucket/outputs/*",
    ): "not reached: the discovery run stopped before it",
    (
        "PollFunction",
        "s3:GetObject",
        "ImagesBucket/outputs/*",
    ): "not reached: the discovery run stopped before it",
    (
        "PollFunction",
        "events:PutEvents",
        "EventBus",
    ): "not reached: the discovery run stopped before it",
    (
        "PollFunction",
        "secretsmanager:GetSecretValue",
        "ProviderKeysSecret",
    ): "not reached: the discovery run stopped before it",
    (
        "SweeperFunction",
        "events:PutEvents",
        "EventBus",
    ): "not reached: the discovery run stopped before it",
    (
        "SweeperFunction",
        "secretsmanager:GetSecretValue",
        "ProviderKeysSecret",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "sqs:SendMessage",
        "WebhookQueue",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "ssm:GetParameter",
        "ProvidersParameter,ProvidersParameter/operator",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "dynamodb:GetItem",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "dynamodb:PutItem",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "dynamodb:Query",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "dynamodb:DeleteItem",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "dynamodb:UpdateItem",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "s3:GetObject",
        "ImagesBucket/inputs/*",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "s3:PutObject",
        "ImagesBucket/outputs/*",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "s3:AbortMultipartUpload",
        "ImagesBucket/outputs/*",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "s3:DeleteObject",
        "ImagesBucket/outputs/*",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "s3:GetObject",
        "ImagesBucket/outputs/*",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "states:StartExecution",
        "PollStateMachine",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "sqs:SendMessage",
        "DispatchQueue",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "events:PutEvents",
        "EventBus",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "secretsmanager:GetSecretValue",
        "WebhookSecret",
    ): "not reached: the discovery run stopped before it",
    (
        "DispatchFunction",
        "secretsmanager:GetSecretValue",
        "ProviderKeysSecret",
    ): "not reached: the discovery run stopped before it",
    (
        "WebhookDeliveryFunction",
        "dynamodb:GetItem",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "WebhookDeliveryFunction",
        "dynamodb:PutItem",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "WebhookDeliveryFunction",
        "kms:Encrypt",
        "WebhookKey",
    ): "not reached: the discovery run stopped before it",
    (
        "WebhookDeliveryFunction",
        "kms:Decrypt",
        "WebhookKey",
    ): "not reached: the discovery run stopped before it",
    (
        "WebhookDeliveryFunction",
        "s3:GetObject",
        "ImagesBucket/outputs/*",
    ): "not reached: the discovery run stopped before it",
    (
        "WebhookDeliveryFunction",
        "sqs:SendMessage",
        "WebhookQueue,WebhookDeadLetterQueue",
    ): "not reached: the discovery run stopped before it",
    (
        "WebhookDeliveryFunction",
        "events:PutEvents",
        "EventBus",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "sqs:SendMessage",
        "WebhookQueue",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "ssm:GetParameter",
        "ProvidersParameter,ProvidersParameter/operator",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "dynamodb:GetItem",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "dynamodb:PutItem",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "dynamodb:UpdateItem",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "dynamodb:DeleteItem",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "dynamodb:Query",
        "TasksTable",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "s3:GetObject",
        "InboxBucket/*",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "s3:GetObjectVersion",
        "InboxBucket/*",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "s3:ListBucket",
        "InboxBucket",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "s3:PutObject",
        "ImagesBucket/inputs/*",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "s3:GetObject",
        "ImagesBucket/inputs/*",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "s3:AbortMultipartUpload",
        "ImagesBucket/inputs/*",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "s3:DeleteObject",
        "ImagesBucket/inputs/*",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "ssm:GetParameter",
        "InboxRulesParameter",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "sqs:SendMessage",
        "DispatchQueue",
    ): "not reached: the discovery run stopped before it",
    (
        "UploadEditFunction",
        "events:PutEvents",
        "EventBus",
    ): "not reached: the discovery run stopped before it",
}
"""Permissions not yet proved either way, with what was seen: no scenario failed without them
(unused, or needed by a path no scenario reaches yet), or the discovery run did not reach them.
Each needs a decision: a scenario, a place in AWS_ONLY, or its removal from template.yaml.
The check reports them and fails while any is left."""


# -- the check --------------------------------------------------------------------------------
@dataclass
class Outcome:
    mutation: Mutation
    scenario: str
    verdict: str
    """``denied`` (the permission is needed), ``unused``, ``unproven`` (failed, but moto or the
    log did not name that action), ``aws-only``, ``unmapped``."""
    detail: str
    seconds: float


def unmapped(found: list[Mutation]) -> list[Mutation]:
    """Permissions in none of the tables (proved by a scenario, AWS-only, pending)."""
    return [m for m in found if m.key not in SCENARIOS | AWS_ONLY | PENDING]


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
    return Outcome(
        mutation,
        name,
        "denied",
        f"logged: {logged[0].action} on {logged[0].resource}; {failure}",
        seconds,
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
    " with the reason (and in the README's IAM section)."
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
            f"| {m.function} | `{m.action}` | {m.resource} | {o.scenario} |"
            f" {o.verdict}: {detail} | {o.seconds:.1f} |"
        )
    lines += ["", "## Unused", ""]
    lines += [
        f"- {o.mutation.function} `{o.mutation.action}` on {o.mutation.resource}"
        for o in outcomes
        if o.verdict == "unused"
    ] or ["None."]
    lines += ["", "## AWS-only (moto cannot show them; README, IAM section)", ""]
    lines += [
        f"- {o.mutation.function} `{o.mutation.action}` on {o.mutation.resource}: {o.detail}"
        for o in outcomes
        if o.verdict == "aws-only"
    ] or ["None."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: 0 when every permission is proved needed or AWS-only."""
    parser = argparse.ArgumentParser(prog="python -m devstack.iam_mutations", description=__doc__)
    parser.add_argument("--report", type=Path, default=REPORT_PATH, help="the Markdown report")
    parser.add_argument("--log", type=Path, help="write every function's output to this file")
    parser.add_argument(
        "--only",
        help="check only these permissions: a function (ApiFunction) or one of its actions"
        " (ApiFunction:sqs:SendMessage); no report is written",
    )
    args = parser.parse_args(argv)
    started = _now()
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(args.log.open("w")) if args.log else None
        ctx = stack.enter_context(enforced_stack(log))
        found = mutations(ctx.stack.template, ctx.stack.policies)
        if args.only:
            found = [m for m in found if args.only in (m.function, f"{m.function}:{m.action}")]
        missing = unmapped(found)
        if missing:
            for mutation in missing:
                print(f"unmapped  {mutation.function} {mutation.action} on {mutation.resource}")
            print(HOW_TO_MAP)
        outcomes = check(ctx, found)
    seconds = _now() - started
    if not args.only:
        args.report.write_text(report(outcomes, seconds))
    bad = [o for o in outcomes if o.verdict not in ("denied", "aws-only")]
    print(
        f"{len(outcomes)} permissions checked in {seconds:.0f} s:"
        f" {len(outcomes) - len(bad)} proved needed or AWS-only, {len(bad)} not"
        + (f"\n{HOW_TO_MAP}" if any(o.verdict == "unmapped" for o in bad) else "")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
