"""DynamoDBUsageLedger: per-client limits and counters in the tasks table (adapter of
``limits.ports.UsageLedger``).

Item layout, all under ``pk=LIMITS#<client>``:
- ``sk=LIMITS``: the operator's ``requests_per_minute``, ``max_open_tasks``,
  ``daily_budget_usd`` (each optional; set with ``aws dynamodb update-item``, README);
- ``sk=RATE#<window start, epoch s>``: ``request_count`` (TTL an hour after the window);
- ``sk=OPEN``: ``open_tasks``, a string set of ``<deadline epoch s>#<task id>`` entries;
- ``sk=DAY#<YYYY-MM-DD>``: ``spent_usd`` and ``pending`` (string set of unsettled task ids),
  TTL a week after the day.
A reservation is one ``TransactWriteItems`` of three conditional updates (all or nothing; the
cancellation reasons say which limit refused). Settling deletes the set entries, so a second
settlement finds nothing to delete: the day's update is conditional on ``pending`` holding the
task, the open entry's ``DELETE`` is a no-op. An open entry whose task never settled (a crash
between the reservation and the task's write) is pruned once its deadline is long past.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from image_gateway.limits.ports import (
    RATE_WINDOW_SECONDS,
    Admission,
    ClientLimits,
    LimitKind,
    LimitOverrides,
    UsageCounts,
    UsageHold,
    next_utc_day,
    refusal,
    usd,
    utc_day,
    window_start,
)

_RATE_TTL_SECONDS = 3600
_DAY_TTL_SECONDS = 8 * 86400
_OPEN_TTL_SECONDS = 90 * 86400
_ORDER = (LimitKind.RATE, LimitKind.OPEN_TASKS, LimitKind.BUDGET)  # the transaction's items


class _Conflict(Exception):
    """The reservation's transaction met another one on the same items (nothing written)."""


class DynamoDBUsageLedger:
    """The ledger on DynamoDB; ``clock`` (epoch seconds) is injectable for tests."""

    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        *,
        prune_after_seconds: float,
        write_attempts: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ddb = dynamodb_client
        self._table = table_name
        self._prune_after = prune_after_seconds
        self._attempts = write_attempts
        self._clock = clock

    def _key(self, client_id: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": f"LIMITS#{client_id}"}, "sk": {"S": sk}}

    def overrides(self, client_id: str) -> LimitOverrides:
        """The operator's ``LIMITS`` item (absent attributes: None)."""
        item = self._ddb.get_item(TableName=self._table, Key=self._key(client_id, "LIMITS")).get(
            "Item", {}
        )

        def number(name: str) -> Decimal | None:
            value = item.get(name, {}).get("N")
            return None if value is None else Decimal(value)

        rate, open_tasks, budget = (
            number(n) for n in ("requests_per_minute", "max_open_tasks", "daily_budget_usd")
        )
        return LimitOverrides(
            requests_per_minute=None if rate is None else int(rate),
            max_open_tasks=None if open_tasks is None else int(open_tasks),
            daily_budget_usd=None if budget is None else float(budget),
        )

    def reserve(
        self,
        client_id: str,
        task_id: str,
        *,
        limits: ClientLimits,
        cost_usd: float,
        deadline: datetime,
    ) -> Admission:
        """One transaction of the three counters (see the module), tried again when it met
        another (``write_attempts`` in all) and once after pruning long-overdue open entries."""
        now = self._clock()
        outright = limits.refused_outright(cost_usd)
        if outright is not None:
            return refusal(outright, now)
        hold = UsageHold(
            day=utc_day(now),
            reserved_usd=float(usd(cost_usd)),
            open_entry=f"{int(deadline.timestamp())}#{task_id}",
        )
        pruned = False
        for _ in range(self._attempts):
            try:
                refused = self._transact(client_id, task_id, hold, limits, cost_usd, now)
            except _Conflict:  # another transaction of this client's items: try again
                continue
            if refused is None:
                return Admission(hold=hold)
            if refused is LimitKind.OPEN_TASKS and not pruned and self._prune(client_id, now):
                pruned = True
                continue
            return refusal(refused, now)
        raise RuntimeError(f"usage of {client_id} kept conflicting ({self._attempts} attempts)")

    def _transact(
        self,
        client_id: str,
        task_id: str,
        hold: UsageHold,
        limits: ClientLimits,
        cost_usd: float,
        now: float,
    ) -> LimitKind | None:
        window = window_start(now)
        budget = limits.budget_room(cost_usd)
        day_condition = (
            None if budget is None else "attribute_not_exists(spent_usd) OR spent_usd <= :room"
        )
        updates = [
            {
                "Key": self._key(client_id, f"RATE#{window}"),
                "UpdateExpression": "ADD request_count :one SET expires_at = :ttl",
                "ConditionExpression": "attribute_not_exists(request_count)"
                " OR request_count < :limit",
                "ExpressionAttributeValues": {
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limits.requests_per_minute)},
                    ":ttl": {"N": str(window + RATE_WINDOW_SECONDS + _RATE_TTL_SECONDS)},
                },
            },
            {
                "Key": self._key(client_id, "OPEN"),
                "UpdateExpression": "ADD open_tasks :entry SET expires_at = :ttl",
                "ConditionExpression": "attribute_not_exists(open_tasks)"
                " OR size(open_tasks) < :max",
                "ExpressionAttributeValues": {
                    ":entry": {"SS": [hold.open_entry]},
                    ":max": {"N": str(limits.max_open_tasks)},
                    ":ttl": {"N": str(int(now) + _OPEN_TTL_SECONDS)},
                },
            },
            {
                "Key": self._key(client_id, f"DAY#{hold.day}"),
                "UpdateExpression": "ADD spent_usd :cost, pending :task SET expires_at = :ttl",
                "ExpressionAttributeValues": {
                    ":cost": {"N": str(usd(cost_usd))},
                    ":task": {"SS": [task_id]},
                    ":ttl": {"N": str(int(next_utc_day(now)) + _DAY_TTL_SECONDS)},
                    **({} if budget is None else {":room": {"N": str(budget)}}),
                },
                **({} if day_condition is None else {"ConditionExpression": day_condition}),
            },
        ]
        try:
            self._ddb.transact_write_items(
                TransactItems=[{"Update": {"TableName": self._table, **u}} for u in updates]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            for kind, reason in zip(_ORDER, reasons, strict=False):
                if reason.get("Code") == "ConditionalCheckFailed":
                    return kind
            if any(r.get("Code") == "TransactionConflict" for r in reasons):
                raise _Conflict from None
            raise
        return None

    def _prune(self, client_id: str, now: float) -> bool:
        """Drop open entries whose deadline passed ``prune_after_seconds`` ago; any dropped?"""
        item = self._ddb.get_item(
            TableName=self._table, Key=self._key(client_id, "OPEN"), ConsistentRead=True
        ).get("Item", {})
        entries = item.get("open_tasks", {}).get("SS", [])
        stale = [e for e in entries if int(e.split("#", 1)[0]) + self._prune_after < now]
        if stale:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._key(client_id, "OPEN"),
                UpdateExpression="DELETE open_tasks :stale",
                ExpressionAttributeValues={":stale": {"SS": stale}},
            )
        return bool(stale)

    def settle(self, client_id: str, hold: UsageHold, *, cost_usd: float) -> bool:
        """Free the open entry; move the day's spend from the reservation to ``cost_usd``."""
        self._ddb.update_item(
            TableName=self._table,
            Key=self._key(client_id, "OPEN"),
            UpdateExpression="DELETE open_tasks :entry",
            ExpressionAttributeValues={":entry": {"SS": [hold.open_entry]}},
        )
        task_id = hold.open_entry.split("#", 1)[1]
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._key(client_id, f"DAY#{hold.day}"),
                UpdateExpression="ADD spent_usd :delta DELETE pending :task",
                ConditionExpression="contains(pending, :id)",
                ExpressionAttributeValues={
                    ":delta": {"N": str(usd(cost_usd) - usd(hold.reserved_usd))},
                    ":task": {"SS": [task_id]},
                    ":id": {"S": task_id},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False  # settled before
        return True

    def usage(self, client_id: str) -> UsageCounts:
        """One BatchGetItem of the open set, today's spend and the current window."""
        now = self._clock()
        day, window = utc_day(now), window_start(now)
        keys = [self._key(client_id, sk) for sk in ("OPEN", f"DAY#{day}", f"RATE#{window}")]
        answer = self._ddb.batch_get_item(
            RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}}
        )
        items = {i["sk"]["S"]: i for i in answer.get("Responses", {}).get(self._table, [])}
        spent = items.get(f"DAY#{day}", {}).get("spent_usd", {}).get("N", "0")
        count = items.get(f"RATE#{window}", {}).get("request_count", {}).get("N", "0")
        return UsageCounts(
            day=day,
            spent_usd=float(Decimal(spent)),
            open_tasks=len(items.get("OPEN", {}).get("open_tasks", {}).get("SS", [])),
            window_start=datetime.fromtimestamp(window, UTC),
            window_seconds=RATE_WINDOW_SECONDS,
            window_requests=int(count),
        )
