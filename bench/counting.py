"""Count, for real, every AWS request and provider HTTP call the in-process Lambdas make.

``CallRecorder.install(runtime)`` wraps devstack's ``InlineRuntime.invoke`` (one record per
invocation with its duration) and patches botocore's ``BaseClient._make_api_call`` and
``httpx.Client.send``, so the handlers must run in this process (``StackConfig(runtime=
"inline")``): calls made in worker processes would not be seen. A call counts when it happens
on a thread that is inside an invocation, so the benchmark's own observation calls (and moto's
internals) never count. DynamoDB read and write units are worked out from the items themselves
(sizes, consistency, GSI updates) because moto does not report consumed capacity the way
DynamoDB bills it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from botocore.client import BaseClient

from bench.cost import (
    API_GATEWAY_METERING_BYTES,
    EVENTBRIDGE_METERING_BYTES,
    SQS_METERING_BYTES,
    GlobalIndex,
    RequestCounts,
    billed_gb_seconds,
    index_write_units,
    item_size,
    metered_requests,
    read_units,
    write_units,
)
from devstack.runtime import InlineRuntime

S3_PUT_CLASS = frozenset(
    {
        "PutObject",
        "CopyObject",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
        "ListObjects",
        "ListObjectsV2",
        "ListParts",
        "ListMultipartUploads",
        "ListBuckets",
    }
)
S3_FREE = frozenset({"DeleteObject", "DeleteObjects", "AbortMultipartUpload"})


@dataclass
class AwsCall:
    """One AWS API request made by a function, with its billing units."""

    function: str
    service: str
    operation: str
    wru: float = 0.0
    rru: float = 0.0
    index_wru: float = 0.0  # the part of ``wru`` spent on global secondary indexes
    units: float = 1.0  # metered requests (EventBridge entries, SQS 64 KB chunks, ...)
    params: dict[str, Any] | None = None
    failed: bool = False
    fifo: bool = False  # an SQS request to a FIFO queue (priced apart)


@dataclass
class HttpCall:
    """One outbound HTTP request made by a function (provider API or result download)."""

    function: str
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""


@dataclass
class Invocation:
    """One Lambda invocation: which function, how long, at what memory."""

    function: str
    duration_ms: float
    memory_mb: int
    api_gateway_requests: int = 0  # metered HTTP API requests (0 unless an HTTP event)


class CallRecorder:
    """Records invocations, AWS calls and HTTP calls of the functions devstack runs."""

    def __init__(self, indexes: list[GlobalIndex], *, keep_params: bool = False) -> None:
        self.indexes = indexes
        self.keep_params = keep_params
        self.invocations: list[Invocation] = []
        self.aws: list[AwsCall] = []
        self.http: list[HttpCall] = []
        self._items: dict[tuple[str, str, str], dict[str, Any]] = {}  # last item seen per key
        self._local = threading.local()
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []

    # -- installing ----------------------------------------------------------------------------
    def install(self, runtime: InlineRuntime) -> None:
        """Wrap ``runtime.invoke`` and patch botocore and httpx (undo with :meth:`uninstall`)."""
        if not isinstance(runtime, InlineRuntime):
            raise TypeError("counting patches this process: use StackConfig(runtime='inline')")
        original_invoke = runtime.invoke
        recorder = self

        def invoke(name: str, event: Any) -> Any:
            function = runtime.get(name)
            # Time inside the runtime's lock so that waiting for another invocation is not
            # billed (the lock is re-entrant; the original takes it again).
            with runtime.lock:
                previous = getattr(recorder._local, "function", None)
                recorder._local.function = function.logical_id
                started = time.perf_counter()
                result: Any = None
                try:
                    result = original_invoke(name, event)
                    return result
                finally:
                    elapsed = (time.perf_counter() - started) * 1000
                    recorder._local.function = previous
                    recorder._record_invocation(function, elapsed, event, result)

        runtime.invoke = invoke  # type: ignore[method-assign]
        self._undo.append(lambda: setattr(runtime, "invoke", original_invoke))

        original_call = BaseClient._make_api_call

        def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            response: Any = None
            failed = False
            try:
                response = original_call(client, operation, params)
                return response
            except Exception:
                failed = True
                raise
            finally:
                recorder._record_aws(client, operation, params, response, failed)

        BaseClient._make_api_call = make_api_call
        self._undo.append(lambda: setattr(BaseClient, "_make_api_call", original_call))

        original_send = httpx.Client.send

        def send(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            function = getattr(recorder._local, "function", None)
            if function is not None:
                call = HttpCall(function, request.method, str(request.url))
                if recorder.keep_params:
                    call.headers = dict(request.headers)
                    try:
                        call.content = request.content
                    except httpx.RequestNotRead:  # a streamed upload: replayed without body
                        call.headers.pop("content-length", None)
                with recorder._lock:
                    recorder.http.append(call)
            return original_send(client, request, **kwargs)

        httpx.Client.send = send  # type: ignore[method-assign,assignment]
        self._undo.append(lambda: setattr(httpx.Client, "send", original_send))

    def uninstall(self) -> None:
        """Put back everything :meth:`install` patched."""
        while self._undo:
            self._undo.pop()()

    def reset(self) -> None:
        """Forget what was recorded (the item sizes seen are kept: they are the table's state)."""
        with self._lock:
            self.invocations.clear()
            self.aws.clear()
            self.http.clear()

    @contextmanager
    def attributed_to(self, function: str) -> Iterator[None]:
        """Count the calls made in this block as ``function``'s (used by the floors)."""
        previous = getattr(self._local, "function", None)
        self._local.function = function
        try:
            yield
        finally:
            self._local.function = previous

    # -- totals --------------------------------------------------------------------------------
    def counts(self, *, sfn_transitions: float = 0.0) -> RequestCounts:
        """Everything recorded so far, in billing units."""
        counts = RequestCounts(sfn_transitions=sfn_transitions)
        with self._lock:
            for invocation in self.invocations:
                counts.lambda_invocations += 1
                counts.lambda_gb_seconds += billed_gb_seconds(
                    invocation.duration_ms, invocation.memory_mb
                )
                counts.api_gateway_requests += invocation.api_gateway_requests
            for call in self.aws:
                counts.dynamodb_wru += call.wru
                counts.dynamodb_rru += call.rru
                if call.service == "s3" and call.operation not in S3_FREE:
                    if call.operation in S3_PUT_CLASS:
                        counts.s3_put_class += 1
                    else:
                        counts.s3_get_class += 1
                elif call.service == "events" and call.operation == "PutEvents":
                    counts.eventbridge_events += call.units
                elif call.service == "sqs" and call.fifo:
                    counts.sqs_fifo_requests += call.units
                elif call.service == "sqs":
                    counts.sqs_requests += call.units
                elif call.service == "secretsmanager":
                    counts.secrets_calls += 1
        return counts

    def index_write_units(self) -> float:
        """The DynamoDB write units recorded so far that went to global secondary indexes."""
        with self._lock:
            return sum(call.index_wru for call in self.aws)

    def operations(self) -> dict[str, int]:
        """How many times each ``service:Operation`` was called."""
        totals: dict[str, int] = {}
        with self._lock:
            for call in self.aws:
                key = f"{call.service}:{call.operation}"
                totals[key] = totals.get(key, 0) + 1
        return totals

    # -- recording -----------------------------------------------------------------------------
    def _record_invocation(self, function: Any, elapsed_ms: float, event: Any, result: Any) -> None:
        api_requests = 0
        if isinstance(event, dict) and "requestContext" in event and "routeKey" in event:
            size = len(event.get("body") or "")
            if isinstance(result, dict):
                size = max(size, len(str(result.get("body") or "")))
            api_requests = metered_requests(size, API_GATEWAY_METERING_BYTES)
        with self._lock:
            self.invocations.append(
                Invocation(function.logical_id, elapsed_ms, function.memory_mb, api_requests)
            )

    def _record_aws(
        self, client: Any, operation: str, params: dict[str, Any], response: Any, failed: bool
    ) -> None:
        service = client.meta.service_model.endpoint_prefix
        if service == "states":
            service = "stepfunctions"
        function = getattr(self._local, "function", None)
        call = AwsCall(function or "", service, operation, failed=failed)
        if service == "dynamodb":
            self._dynamodb_units(call, params, response)
        elif service == "events" and operation == "PutEvents":
            call.units = sum(
                metered_requests(len(str(entry)), EVENTBRIDGE_METERING_BYTES)
                for entry in params.get("Entries", [])
            )
        elif service == "sqs":
            call.units = metered_requests(
                len(str(params.get("MessageBody", ""))), SQS_METERING_BYTES
            )
            call.fifo = str(params.get("QueueUrl", "")).endswith(".fifo")
        if function is None:
            return  # not a function's call: only the item bookkeeping above mattered
        if self.keep_params:
            call.params = params
        with self._lock:
            self.aws.append(call)

    def _dynamodb_units(self, call: AwsCall, params: dict[str, Any], response: Any) -> None:
        table = str(params.get("TableName", ""))
        if call.operation == "GetItem":
            item = (response or {}).get("Item") or {}
            call.rru = read_units(item_size(item), consistent=bool(params.get("ConsistentRead")))
        elif call.operation == "Query":
            items = (response or {}).get("Items") or []
            call.rru = read_units(
                sum(item_size(i) for i in items), consistent=bool(params.get("ConsistentRead"))
            )
        elif call.operation == "BatchGetItem":
            # each key is billed as a GetItem of its own (an absent item: the minimum unit)
            found = (response or {}).get("Responses") or {}
            call.rru = 0.0
            for name, request in params.get("RequestItems", {}).items():
                consistent = bool(request.get("ConsistentRead"))
                items = found.get(name) or []
                absent = max(0, len(request.get("Keys", [])) - len(items))
                call.rru += sum(read_units(item_size(i), consistent=consistent) for i in items)
                call.rru += absent * read_units(0, consistent=consistent)
        elif call.operation == "PutItem":
            new = params["Item"]
            key = (table, str(new["pk"].get("S")), str(new.get("sk", {}).get("S")))
            old = self._items.get(key)
            # PutItem is billed on the larger of the old and the new item.
            call.wru = write_units(max(item_size(new), item_size(old) if old else 0))
            if not call.failed:
                call.index_wru = sum(index_write_units(ix, old, new) for ix in self.indexes)
                call.wru += call.index_wru
                self._items[key] = new
        elif call.operation == "TransactWriteItems":
            # a transactional write is billed twice a standard one: 2 WRU per item (up to 1 KB;
            # the client-limit counters submit writes are small), failed or not
            call.wru = 2.0 * len(params.get("TransactItems", []))
        elif call.operation in ("UpdateItem", "DeleteItem", "BatchWriteItem"):
            call.wru = 1.0  # counted at the minimum (limit counters, leases: items under 1 KB)
        else:
            call.rru = 0.5
