"""What ``DynamoDBUsageLedger`` reads of a client in one request: its limits item with its
counts (a submit's routing and reservation decide on them), and its usage (``GET /v1/usage``).

Both are one strongly consistent ``BatchGetItem`` of the client's ``LIMITS#<client>`` items; a
key DynamoDB leaves unprocessed (under throttling) is read on its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from image_gateway.adapters.dynamodb_client_queue import limits_key, number, read_item
from image_gateway.limits.ports import (
    RATE_WINDOW_SECONDS,
    ClientState,
    LimitOverrides,
    UsageCounts,
    utc_day,
    window_start,
)


def overrides_of(item: dict[str, Any]) -> LimitOverrides:
    """The operator's ``LIMITS`` item as overrides (absent attributes: None)."""

    def decimal(name: str) -> Decimal | None:
        value = item.get(name, {}).get("N")
        return None if value is None else Decimal(value)

    names = ("requests_per_minute", "max_running_tasks", "max_queued_tasks", "daily_budget_usd")
    rate, running, queued, budget = (decimal(n) for n in names)
    return LimitOverrides(
        requests_per_minute=None if rate is None else int(rate),
        max_running_tasks=None if running is None else int(running),
        max_queued_tasks=None if queued is None else int(queued),
        daily_budget_usd=None if budget is None else float(budget),
        routing=item.get("routing", {}).get("S"),
        hedge=item.get("hedge", {}).get("BOOL"),
    )


def read_client_state(dynamodb_client: Any, table: str, client_id: str) -> ClientState:
    """The client's ``LIMITS`` and ``COUNTS`` items."""
    items = _read(dynamodb_client, table, client_id, ["LIMITS", "COUNTS"])
    counts = items.get("COUNTS", {})
    return ClientState(
        overrides=overrides_of(items.get("LIMITS", {})),
        running=number(counts, "running"),
        queued=number(counts, "queued"),
    )


def read_usage(dynamodb_client: Any, table: str, client_id: str, now: float) -> UsageCounts:
    """The client's counts, the day's spend and the current rate window at ``now``."""
    day, window = utc_day(now), window_start(now)
    items = _read(dynamodb_client, table, client_id, ["COUNTS", f"DAY#{day}", f"RATE#{window}"])
    spent = items.get(f"DAY#{day}", {}).get("spent_usd", {}).get("N", "0")
    counts = items.get("COUNTS", {})
    return UsageCounts(
        day=day,
        spent_usd=float(Decimal(spent)),
        running=number(counts, "running"),
        queued=number(counts, "queued"),
        window_start=datetime.fromtimestamp(window, UTC),
        window_seconds=RATE_WINDOW_SECONDS,
        window_requests=number(items.get(f"RATE#{window}", {}), "request_count"),
    )


def _read(dynamodb_client: Any, table: str, client_id: str, names: list[str]) -> dict[str, Any]:
    """The client's items named ``names`` (their sort keys), by sort key; absent ones left out."""
    answer = dynamodb_client.batch_get_item(
        RequestItems={
            table: {"Keys": [limits_key(client_id, n) for n in names], "ConsistentRead": True}
        }
    )
    items = {i["sk"]["S"]: i for i in answer.get("Responses", {}).get(table, [])}
    for key in answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []):
        item = read_item(dynamodb_client, table, key)
        if item:
            items[key["sk"]["S"]] = item
    return items
