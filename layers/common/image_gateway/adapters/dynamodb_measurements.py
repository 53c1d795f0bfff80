"""DynamoDBMeasurementStore: each provider's measured calls in the tasks table (adapter of
``health.ports.MeasurementStore``; the design is :mod:`image_gateway.health.measure`'s).

Item layout: ``pk=MEASURE#<provider>``, ``sk=<minute, 10 digits>#<operation>#<tier>``,
``answers``, ``failures``, ``l0`` .. ``l23`` (the latency histogram's counters; absent = 0),
``expires_at`` (TTL). A sample is one ``UpdateItem`` with ``ADD`` (atomic, unconditional:
concurrent finalisers never conflict); a window is one query per provider from its first
minute on (``sk >= :since``), so older records, even before TTL deletes them, are never read.
A partition per provider keeps the writes of busy providers apart.
"""

from __future__ import annotations

from typing import Any, cast

from image_gateway.health.measure import (
    HISTOGRAM_SIZE,
    KEEP_SECONDS,
    Bucket,
    Sample,
    bucket_start,
    latency_bucket,
)
from image_gateway.models.request import Operation, Resolution

PREFIX = "MEASURE#"


class DynamoDBMeasurementStore:
    """Counters per provider, operation, tier and minute, as items of the tasks table."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._ddb = dynamodb_client
        self._table = table_name

    def add(self, sample: Sample) -> None:
        """One atomic ``ADD`` to the sample's record (created on first use)."""
        start = bucket_start(sample.at)
        counts = {":one": {"N": "1"}, ":expires": {"N": str(start + KEEP_SECONDS)}}
        adds = ["answers :one" if sample.answered else "failures :one"]
        if sample.answered and sample.seconds is not None:
            adds.append(f"l{latency_bucket(sample.seconds)} :one")
        if sample.slot_wait_seconds is not None:
            adds.append(f"q{latency_bucket(sample.slot_wait_seconds)} :one")
        self._ddb.update_item(
            TableName=self._table,
            Key={
                "pk": {"S": PREFIX + sample.provider},
                "sk": {"S": f"{start:010d}#{sample.operation.value}#{sample.tier}"},
            },
            UpdateExpression="ADD " + ", ".join(adds) + " SET expires_at = :expires",
            ExpressionAttributeValues=counts,
        )

    def window(self, provider: str, since: int) -> list[Bucket]:
        """The provider's records from minute ``since`` on (one query, eventually consistent)."""
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :p AND sk >= :since",
            "ExpressionAttributeValues": {
                ":p": {"S": PREFIX + provider},
                ":since": {"S": f"{max(since, 0):010d}"},
            },
        }
        while True:  # a window is at most 15 minutes x 2 operations x 3 tiers: one page
            answer = self._ddb.query(**query)
            items.extend(answer.get("Items", []))
            if "LastEvaluatedKey" not in answer:
                break
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return [_load(provider, item) for item in items]


def _load(provider: str, item: dict[str, Any]) -> Bucket:
    start, operation, tier = item["sk"]["S"].split("#")

    def count(name: str) -> int:
        return int(item[name]["N"]) if name in item else 0

    return Bucket(
        provider=provider,
        operation=Operation(operation),
        tier=cast(Resolution, tier),
        start=int(start),
        answers=count("answers"),
        failures=count("failures"),
        latency=tuple(count(f"l{i}") for i in range(HISTOGRAM_SIZE)),
        slot_wait=tuple(count(f"q{i}") for i in range(HISTOGRAM_SIZE)),
    )
