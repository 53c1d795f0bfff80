"""A devstack for benchmarks: schedules off, calls recorded, and helpers that do not count.

The benchmark observes tasks with its own boto3 clients (outside any invocation, so nothing it
reads is billed to the gateway) and drives the handlers in-process with the events API Gateway
would send, so that timings are the handler's and not the local HTTP server's. The stack runs
its handlers inline (in this process, one at a time), because the call recorder counts by
patching this process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from bench.cost import GlobalIndex
from bench.counting import CallRecorder
from devstack.event_sources import sqs_event_record
from devstack.provisioning import REGION
from devstack.runtime import InlineRuntime
from devstack.stack import DevStack, StackConfig, StackInfo
from devstack.template import load_template
from devstack.template import table_indexes as deployed_indexes
from devstack.waiting import wait_until

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "expired"})
ZERO_LATENCY = "[sim:latency=0]"


def table_indexes() -> list[GlobalIndex]:
    """The task table's GSIs, from template.yaml (with its parameters' defaults)."""
    template = load_template()
    props = template["Resources"]["TasksTable"]["Properties"]
    table_keys = tuple(k["AttributeName"] for k in props["KeySchema"])
    return [
        GlobalIndex(
            name=index["IndexName"],
            keys=tuple(k["AttributeName"] for k in index["KeySchema"]),
            projection=index["Projection"]["ProjectionType"],
            table_keys=table_keys,
            included=tuple(index["Projection"].get("NonKeyAttributes", [])),
        )
        for index in deployed_indexes(template)
    ]


QUIESCED_QUEUES = ("FinalizeQueue", "ThumbnailQueue", "DispatchQueue")
"""The queues whose work a child's event sets off in the stack (a callback's finalisation, a
succeeded event's thumbnail, a submit's first attempt): :meth:`BenchStack.quiesce` waits for
them."""


class BenchStack:
    """A started devstack with a call recorder and observer clients."""

    def __init__(self, devstack: DevStack, recorder: CallRecorder) -> None:
        assert devstack.info is not None and devstack.api is not None
        self.devstack = devstack
        self.info: StackInfo = devstack.info
        self.recorder = recorder
        self.ddb = boto3.client("dynamodb")
        self.sfn = boto3.client("stepfunctions")
        self.secrets = boto3.client("secretsmanager")
        self.sqs = boto3.client("sqs")
        self.time_scale = devstack.config.time_scale
        self._lift_client_limits()
        self._webhook_key: bytes | None = None

    def _lift_client_limits(self) -> None:
        """The bench's client opens hundreds of tasks within a minute (some are never finished,
        on purpose), past the stack's per-client defaults: lift its limits the operator's way
        (docs/limits.md), so every figure measures the gateway."""
        self.ddb.update_item(
            TableName=self.info.table_name,
            Key={"pk": {"S": f"LIMITS#{self.info.client_id}"}, "sk": {"S": "LIMITS"}},
            UpdateExpression="SET requests_per_minute = :rate, max_running_tasks = :open",
            ExpressionAttributeValues={":rate": {"N": "1000000"}, ":open": {"N": "1000000"}},
        )

    # -- driving the handlers in-process -----------------------------------------------------
    def http_event(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        api_key: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """The function behind a route and the API Gateway v2 event for this request (by the
        bench's client, or the one ``api_key`` names)."""
        api = self.devstack.api
        assert api is not None
        found = api.match(method, path)
        if found is None:
            raise KeyError(f"no route {method} {path}")
        route, params = found
        data = json.dumps(body).encode() if body is not None else b""
        headers = {
            "authorization": f"Bearer {api_key or self.info.api_key}",
            "content-type": "application/json",
            "host": api.base_url.removeprefix("http://"),
        }
        event = api.to_event(method, path, headers, data, route, params, headers["host"])
        return route.function, event

    def function_url_event(
        self, function: str, method: str, path: str, body: dict[str, Any], *, api_key: str
    ) -> dict[str, Any]:
        """The event Lambda sends ``function`` for a JSON request to its function URL."""
        url = self.devstack.function_urls[function]
        route, params = url.match(method, path) or (None, {})
        assert route is not None
        host = url.base_url.removeprefix("http://")
        headers = {
            "authorization": f"Bearer {api_key}",
            "content-type": "application/json",
            "host": host,
        }
        return url.to_event(method, path, headers, json.dumps(body).encode(), route, params, host)

    def held_messages(
        self,
        function: str,
        queue_url: str,
        count: int,
        make: Callable[[], object],
        timeout: float = 60.0,
    ) -> list[dict[str, Any]]:
        """SQS events for ``function``, one per message that ``make`` (called ``count`` times)
        leads to on its queue: taken off the queue while the stack's pollers of the function
        are held, so the function has not seen them (a cold start's first event)."""
        sources = self.devstack.event_sources
        assert sources is not None
        arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        queue_arn = arn["Attributes"]["QueueArn"]
        taken: list[dict[str, Any]] = []
        with sources.held(self.devstack.runtime.get(function).name):
            for _ in range(count):
                make()
            deadline = time.monotonic() + timeout
            while len(taken) < count:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(taken)} of {count} messages for {function}")
                batch = self.sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=min(10, count - len(taken)),
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                ).get("Messages", [])
                for message in batch:
                    self.sqs.delete_message(
                        QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
                taken.extend(batch)
        return [{"Records": [sqs_event_record(m, queue_arn, REGION)]} for m in taken]

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/images through the api function; the task view it answered."""
        function, event = self.http_event("POST", "/v1/images", body)
        answer = self.devstack.runtime.invoke(function, event)
        if answer["statusCode"] not in (200, 202):
            raise RuntimeError(f"submit answered {answer['statusCode']}: {answer['body']}")
        task: dict[str, Any] = json.loads(answer["body"])
        return task

    def callback_event(self, provider: str, task_id: str) -> tuple[str, dict[str, Any]]:
        """The webhook function and the event of the provider's callback for this task."""
        token = self.webhook_token(provider, task_id)
        return self.http_event("POST", f"/webhooks/{provider}/{task_id}/{token}/callback", {})

    def finalize_event(self, provider: str, task_id: str) -> dict[str, Any]:
        """The finalize function's SQS event for a verified callback of this task."""
        queue_url = self.devstack.runtime.get("WebhookFunction").environment["FINALIZE_QUEUE_URL"]
        name = queue_url.rsplit("/", 1)[-1]
        return {
            "Records": [
                {
                    "messageId": f"bench-{task_id}",
                    "receiptHandle": f"bench-{task_id}",
                    "body": json.dumps({"task_id": task_id, "provider": provider}),
                    "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": task_id},
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{name}",
                    "awsRegion": "us-east-1",
                }
            ]
        }

    def webhook_token(self, provider: str, task_id: str) -> str:
        """The per-task callback token (as the gateway computes it)."""
        from image_gateway.auth import WebhookSigner

        if self._webhook_key is None:
            arn = self.info.outputs.get("WebhookSecretArn") or self._secret_arn("WebhookSecret")
            self._webhook_key = self.secrets.get_secret_value(SecretId=arn)["SecretString"].encode()
        return WebhookSigner(self._webhook_key).token(provider, task_id)

    def _secret_arn(self, logical_id: str) -> str:
        function = self.devstack.runtime.get("WebhookFunction")
        return function.environment["WEBHOOK_SECRET_ARN"]

    def quiesce(self, timeout: float = 10.0) -> None:
        """Wait until nothing runs in the stack: no finalize, thumbnail or dispatch message
        queued or in flight, no invocation running. A cold start child measured next then does
        not share the machine with, say, the finalisation of the previous child's task (a
        provider's callback), or the thumbnail its succeeded event asks for."""
        queues = [self.devstack.queue_urls[q] for q in QUIESCED_QUEUES]
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        deadline = time.monotonic() + timeout
        time.sleep(0.05)  # a callback the simulator is about to send
        while time.monotonic() < deadline:
            counts = [
                self.sqs.get_queue_attributes(QueueUrl=q, AttributeNames=names)["Attributes"]
                for q in queues
            ]
            if any(int(v) for c in counts for v in c.values()):
                time.sleep(0.02)
                continue
            runtime = self.devstack.runtime
            if isinstance(runtime, InlineRuntime):
                with runtime.lock:  # whatever runs now ends first
                    pass
            return

    # -- observing (never counted) -------------------------------------------------------------
    def task(self, task_id: str) -> dict[str, Any]:
        """The stored task document."""
        return stored_task(self.ddb, self.info.table_name, task_id)

    def settled(self, task_id: str) -> bool:
        """Terminal, its event published, and its poll loop (if any) finished."""
        doc = self.task(task_id)
        if doc["status"] not in TERMINAL or doc["status"] not in doc.get("events_published", []):
            return False
        try:
            status = self.sfn.describe_execution(executionArn=self.execution_arn(task_id))["status"]
        except self.sfn.exceptions.ExecutionDoesNotExist:
            return True
        return bool(status != "RUNNING")

    def wait_settled(self, task_ids: list[str], timeout: float = 120) -> None:
        """Block until every task has settled (bounded)."""
        deadline = time.monotonic() + timeout
        pending = list(task_ids)
        while pending:
            pending = [t for t in pending if not self.settled(t)]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} tasks not settled, e.g. {pending[0]}")
            time.sleep(0.05)

    def execution_arn(self, task_id: str) -> str:
        """The poll loop execution of a task (named after it)."""
        arn = self.info.state_machine_arn.replace(":stateMachine:", ":execution:")
        return f"{arn}:{task_id}"

    def transitions(self, task_id: str) -> int:
        """Billed state transitions of the task's poll loop (0 when it has none).

        Every state entered is a transition; a retried Task state is billed again per retry.
        """
        try:
            paginator = self.sfn.get_paginator("get_execution_history")
            events = [
                e
                for page in paginator.paginate(executionArn=self.execution_arn(task_id))
                for e in page["events"]
            ]
        except self.sfn.exceptions.ExecutionDoesNotExist:
            return 0
        entered = sum(1 for e in events if e["type"].endswith("StateEntered"))
        task_states = sum(1 for e in events if e["type"] == "TaskStateEntered")
        scheduled = sum(
            1 for e in events if e["type"] in ("TaskScheduled", "LambdaFunctionScheduled")
        )
        return entered + max(0, scheduled - task_states)

    def stop_poll_loop(self, task_id: str, timeout: float = 30) -> None:
        """Stop a task's execution (the benchmark finalises it itself).

        Submit is storage-first: the dispatch function starts the loop a moment later.
        """
        arn = self.execution_arn(task_id)

        def stopped() -> bool:
            try:
                self.sfn.stop_execution(executionArn=arn)
            except self.sfn.exceptions.ExecutionDoesNotExist:
                return False
            return True

        wait_until(stopped, timeout=timeout)


@contextmanager
def bench_stack(time_scale: float = 0.1) -> Iterator[BenchStack]:
    """Start devstack (schedules off: the sweeper's idle cost is measured on its own)."""
    config = StackConfig(
        time_scale=time_scale,
        task_deadline_seconds=600,
        log_level="ERROR",
        run_schedules=False,
        runtime="inline",
    )
    recorder = CallRecorder(table_indexes())
    with DevStack(config) as devstack:
        assert isinstance(devstack.runtime, InlineRuntime)
        recorder.install(devstack.runtime)
        try:
            yield BenchStack(devstack, recorder)
        finally:
            recorder.uninstall()


def stored_task(ddb: Any, table: str, task_id: str) -> dict[str, Any]:
    """A task's stored document, read consistently (outside any invocation: never counted)."""
    item = ddb.get_item(
        TableName=table,
        Key={"pk": {"S": f"TASK#{task_id}"}, "sk": {"S": "TASK"}},
        ConsistentRead=True,
    )["Item"]
    doc: dict[str, Any] = json.loads(item["doc"]["S"])
    return doc
