"""The cost model: counted AWS requests -> dollars, with the unit rules each service bills by.

Pure functions only (no AWS, no clock), so a known task's counts always give a known price.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from bench.prices import PRICES, Price

KB = 1024
API_GATEWAY_METERING_BYTES = 512 * KB
EVENTBRIDGE_METERING_BYTES = 64 * KB
SQS_METERING_BYTES = 64 * KB


@dataclass
class RequestCounts:
    """What one task (or a batch, before dividing) made AWS do, in billing units."""

    api_gateway_requests: float = 0.0
    lambda_invocations: float = 0.0
    lambda_gb_seconds: float = 0.0
    dynamodb_wru: float = 0.0
    dynamodb_rru: float = 0.0
    s3_put_class: float = 0.0
    s3_get_class: float = 0.0
    eventbridge_events: float = 0.0
    sfn_transitions: float = 0.0
    sqs_requests: float = 0.0
    sqs_fifo_requests: float = 0.0
    secrets_calls: float = 0.0
    kms_requests: float = 0.0

    def __add__(self, other: RequestCounts) -> RequestCounts:
        return RequestCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def scaled(self, factor: float) -> RequestCounts:
        """Every count multiplied by ``factor`` (e.g. 1/tasks for a per-task figure)."""
        return RequestCounts(**{f.name: getattr(self, f.name) * factor for f in fields(self)})

    def as_dict(self) -> dict[str, float]:
        """The counts by field name."""
        return asdict(self)


@dataclass(frozen=True)
class CostBreakdown:
    """Dollars per billing dimension and their total."""

    by_item: dict[str, float]

    @property
    def total(self) -> float:
        """The sum of every item."""
        return sum(self.by_item.values())

    def by_service(self) -> dict[str, float]:
        """Items grouped by AWS service (Lambda requests + duration = Lambda, ...)."""
        grouped: dict[str, float] = {}
        for item, usd in self.by_item.items():
            service = SERVICE_OF[item]
            grouped[service] = grouped.get(service, 0.0) + usd
        return grouped


SERVICE_OF: dict[str, str] = {
    "api_gateway_requests": "API Gateway",
    "lambda_invocations": "Lambda",
    "lambda_gb_seconds": "Lambda",
    "dynamodb_wru": "DynamoDB",
    "dynamodb_rru": "DynamoDB",
    "s3_put_class": "S3",
    "s3_get_class": "S3",
    "eventbridge_events": "EventBridge",
    "sfn_transitions": "Step Functions",
    "sqs_requests": "SQS",
    "sqs_fifo_requests": "SQS",
    "secrets_calls": "Secrets Manager",
    "kms_requests": "KMS",
}

_PRICE_OF: dict[str, str] = {
    "api_gateway_requests": "api_gateway_requests",
    "lambda_invocations": "lambda_requests",
    "lambda_gb_seconds": "lambda_gb_seconds",
    "dynamodb_wru": "dynamodb_wru",
    "dynamodb_rru": "dynamodb_rru",
    "s3_put_class": "s3_put_class",
    "s3_get_class": "s3_get_class",
    "eventbridge_events": "eventbridge_events",
    "sfn_transitions": "sfn_transitions",
    "sqs_requests": "sqs_requests",
    "sqs_fifo_requests": "sqs_fifo_requests",
    "secrets_calls": "secrets_calls",
    "kms_requests": "kms_requests",
}


def price(counts: RequestCounts, prices: dict[str, Price] | None = None) -> CostBreakdown:
    """What ``counts`` cost at list ``prices`` (default: :data:`bench.prices.PRICES`)."""
    table = PRICES if prices is None else prices
    return CostBreakdown(
        by_item={
            item: getattr(counts, item) * table[key].usd_per_unit for item, key in _PRICE_OF.items()
        }
    )


# -- Lambda -----------------------------------------------------------------------------------
def billed_gb_seconds(duration_ms: float, memory_mb: int) -> float:
    """Lambda bills duration rounded up to the millisecond, times the configured memory."""
    return math.ceil(duration_ms) / 1000 * memory_mb / 1024


# -- API Gateway, EventBridge, SQS: metered by size ----------------------------------------------
def metered_requests(size_bytes: int, increment: int) -> int:
    """Requests billed for one request of ``size_bytes`` metered in ``increment`` chunks."""
    return max(1, math.ceil(size_bytes / increment))


# -- DynamoDB ---------------------------------------------------------------------------------
def attribute_value_size(value: dict[str, Any]) -> int:
    """Bytes of one low-level attribute value, as DynamoDB sizes items."""
    (kind, inner), *_ = value.items()
    if kind in ("S",):
        return len(str(inner).encode())
    if kind == "B":
        return len(inner)
    if kind == "N":  # about one byte per two significant digits, plus one
        digits = str(inner).lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_value_size({kind[0]: v}) for v in inner)
    if kind == "L":
        return 3 + sum(attribute_value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_value_size(v) + 1 for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, dict[str, Any]]) -> int:
    """An item's size: attribute names plus values, in bytes."""
    return sum(len(name.encode()) + attribute_value_size(v) for name, v in item.items())


def write_units(size_bytes: int) -> int:
    """Write request units of one write: 1 per KB, rounded up, at least 1."""
    return max(1, math.ceil(size_bytes / KB))


def read_units(size_bytes: int, *, consistent: bool) -> float:
    """Read request units of one read: 1 per 4 KB (strongly consistent) or half that."""
    units = max(1, math.ceil(size_bytes / (4 * KB)))
    return float(units) if consistent else units / 2


@dataclass(frozen=True)
class GlobalIndex:
    """A GSI as far as write billing cares: its key attributes and what it projects."""

    name: str
    keys: tuple[str, ...]
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    table_keys: tuple[str, ...] = ("pk", "sk")
    included: tuple[str, ...] = ()

    def entry(self, item: dict[str, Any] | None) -> dict[str, Any] | None:
        """The item's entry in this index (None when the item is not in it: sparse index)."""
        if item is None or any(k not in item for k in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        names = set(self.keys) | set(self.table_keys) | set(self.included)
        return {k: v for k, v in item.items() if k in names}


def index_write_units(
    index: GlobalIndex, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> int:
    """Write units one item write costs in ``index`` (AWS: GSI write rules).

    Entering or leaving the index costs one write; a changed index key costs two (delete +
    put); an unchanged key with changed projected attributes one; no change, nothing.
    """
    old, new = index.entry(before), index.entry(after)
    if old is None and new is None:
        return 0
    if old is None:
        assert new is not None
        return write_units(item_size(new))
    if new is None:
        return write_units(item_size(old))
    if any(old.get(k) != new.get(k) for k in index.keys):
        return write_units(item_size(old)) + write_units(item_size(new))
    if old != new:
        return write_units(item_size(new))
    return 0


# -- signed webhooks to callers ------------------------------------------------------------------
def webhook_attempt_counts(
    *,
    task_item_bytes: int = 4 * KB,
    duration_ms: float = 100.0,
    memory_mb: int = 256,
    chained_hops: int = 0,
) -> RequestCounts:
    """One webhook attempt: its SQS message (send, receive, delete), one WebhookDeliveryFunction
    invocation, the task read, the client's secret read and KMS decrypt, and the attempt
    recorded on the task (a consistent read and a put of the whole item; the listing index
    holds keys only, which the attempt does not change). ``chained_hops``
    adds the empty hops of a wait longer than SQS's 15 minutes (each a message and a short
    invocation)."""
    item_reads = math.ceil(task_item_bytes / (4 * KB))  # strongly consistent: 1 RRU per 4 KB
    item_writes = math.ceil(task_item_bytes / KB)
    hops = RequestCounts(
        sqs_requests=3.0,
        lambda_invocations=1.0,
        lambda_gb_seconds=billed_gb_seconds(10.0, memory_mb),
    ).scaled(chained_hops)
    return hops + RequestCounts(
        sqs_requests=3.0,
        lambda_invocations=1.0,
        lambda_gb_seconds=billed_gb_seconds(duration_ms, memory_mb),
        dynamodb_rru=2 * item_reads + 1.0,  # the task, the update's read, the secret's item
        dynamodb_wru=float(item_writes),  # the table only (ByClientKeys: keys unchanged)
        kms_requests=1.0,
    )


# -- the OpenAI-compatible path ------------------------------------------------------------------
COMPAT_MEMORY_MB = 192
"""``OpenAiCompatFunction``'s MemorySize in template.yaml (pinned by the cost model's tests)."""


def compat_call_counts(
    *,
    wait_seconds: float,
    memory_mb: int = COMPAT_MEMORY_MB,
    looks: int = 1,
    answer_ms: float = 150.0,
    task_item_bytes: int = 4 * KB,
    inline_image: bool = True,
) -> RequestCounts:
    """What one OpenAI-compatible call adds to its task's own path (callback, poll or sync).

    One invocation of the compat function billed for the whole wait plus its answer (a
    function URL has no charge of its own, unlike an HTTP API request); each look reads the
    task consistently (a provider status call costs AWS nothing); a ``b64_json`` answer GETs
    the image from S3 once (``inline_image``; not when the function stored the image itself, a
    sync provider's: ``S3ImageStore`` hands the last image it stored back from memory). The
    submit the function makes is the task path's own (the caller subtracts the HTTP API
    request and the API function's invocation it replaces).
    """
    item_reads = math.ceil(task_item_bytes / (4 * KB))
    return RequestCounts(
        lambda_invocations=1.0,
        lambda_gb_seconds=billed_gb_seconds(wait_seconds * 1000 + answer_ms, memory_mb),
        dynamodb_rru=float(looks * item_reads),
        s3_get_class=1.0 if inline_image else 0.0,
    )
