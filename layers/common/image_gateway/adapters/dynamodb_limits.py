"""DynamoDBUsageLedger: per-client limits, counters and queues in the tasks table (adapter of
``limits.ports.UsageLedger``).

Item layout (every item a fixed size: none grows with a client's open work):
- ``LIMITS#<client>`` / ``LIMITS``: the operator's ``requests_per_minute``,
  ``max_running_tasks``, ``max_queued_tasks``, ``daily_budget_usd``, ``routing`` (a string),
  ``hedge`` (a boolean; each optional; set with ``imagegw admin limits set``, docs/limits.md);
- ``LIMITS#<client>`` / ``RATE#<window start, epoch s>``: ``request_count`` (TTL an hour after);
- ``LIMITS#<client>`` / ``COUNTS``: ``running`` and ``queued``, two numbers;
- ``LIMITS#<client>`` / ``DAY#<YYYY-MM-DD>``: ``spent_usd`` (TTL a week after the day);
- ``HOLD#<task id>`` / ``HOLD``: the task's marker: ``client_id``, ``state`` (running or
  queued), ``ticket``, ``day``, ``reserved_usd``; and ``open_pk``, ``check_ts`` until the
  sweeper has seen its task (the holds' check list: ``dynamodb_hold_checks.py``);
- ``QUEUE#<client>`` / ``<ticket>``: a queued task's place in its client's queue; a query reads
  the oldest first.

A reservation is one ``TransactWriteItems`` (rate window, counts, day, hold, and the queue
entry when it waits): all or nothing, and the cancellation reasons say which limit refused.
Starting a queued task moves it in one transaction (queue entry deleted, hold to running,
counts), conditional on a free place, so two starters never start the same task or more than
the limit. Settling deletes the hold in the same transaction as the counts and the day's
adjustment, conditional on the hold's state: only the first settlement finds it. Every
transaction that meets another (``TransactionConflict``) is tried again after a jittered,
growing pause; when every try met one, :class:`LedgerBusy`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from image_gateway.adapters.dynamodb_client_queue import (
    HOLD_TTL_SECONDS,
    QUEUED,
    RUNNING,
    DynamoDBClientQueue,
    busy,
    hold_key,
    limits_key,
    queue_key,
    read_counts,
    read_item,
    settle_items,
)
from image_gateway.adapters.dynamodb_client_reads import overrides_of, read_client_state, read_usage
from image_gateway.adapters.dynamodb_hold_checks import HoldCheckList, hold_check_attributes
from image_gateway.adapters.dynamodb_transactions import Conflict, Transactions
from image_gateway.limits.ports import (
    RATE_WINDOW_SECONDS,
    Admission,
    ClientLimits,
    ClientState,
    LimitKind,
    LimitOverrides,
    Settlement,
    UsageCounts,
    UsageHold,
    next_utc_day,
    refusal,
    ticket,
    usd,
    utc_day,
    window_start,
)

_RATE_TTL_SECONDS = 3600
_DAY_TTL_SECONDS = 8 * 86400


class DynamoDBUsageLedger(HoldCheckList):
    """The ledger on DynamoDB; ``clock`` (epoch seconds) and ``pause`` are injectable."""

    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        *,
        write_attempts: int = 8,
        backoff_seconds: float = 0.02,
        clock: Callable[[], float] = time.time,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ddb = dynamodb_client
        self._table = table_name
        self._tx = Transactions(
            dynamodb_client,
            table_name,
            attempts=write_attempts,
            backoff_seconds=backoff_seconds,
            pause=pause,
        )
        self._clock = clock
        self._queue = DynamoDBClientQueue(dynamodb_client, self._tx)

    def _get(self, key: dict[str, Any]) -> dict[str, Any]:
        return read_item(self._ddb, self._table, key)

    def overrides(self, client_id: str) -> LimitOverrides:
        """The operator's ``LIMITS`` item (absent attributes: None)."""
        key = limits_key(client_id, "LIMITS")
        return overrides_of(self._ddb.get_item(TableName=self._table, Key=key).get("Item", {}))

    def client_state(self, client_id: str) -> ClientState:
        """The ``LIMITS`` and ``COUNTS`` items in one BatchGetItem (``read_client_state``)."""
        return read_client_state(self._ddb, self._table, client_id)

    # -- reserve --------------------------------------------------------------------------------
    def reserve(
        self,
        client_id: str,
        task_id: str,
        *,
        limits: ClientLimits,
        cost_usd: float,
        prepaid: bool = False,
        seen: ClientState | None = None,
    ) -> Admission:
        """One transaction (see the module): running when a place is free and nobody of the
        client waits, else queued; tried again after a conflict or a counter that moved.
        ``seen``: the first try decides on these counts without reading them (the port)."""
        now = self._clock()
        outright = limits.refused_outright(0.0 if prepaid else cost_usd)
        if outright is not None:
            return refusal(outright, now)
        hold = UsageHold(
            day=utc_day(now), reserved_usd=float(usd(cost_usd)), ticket=ticket(now, task_id)
        )

        def attempt(counts: tuple[int, int] | None = None) -> Admission:
            running, queued = counts or read_counts(self._ddb, self._table, client_id)
            start = running < limits.max_running_tasks and queued == 0
            if not start and queued >= limits.max_queued_tasks:
                if counts is not None:
                    raise Conflict  # a queue seen full: read it again before refusing
                return refusal(LimitKind.QUEUE_FULL, now)
            refused = self._reserve(
                client_id, hold, limits, cost_usd, now, start=start, prepaid=prepaid
            )
            if refused is _HELD:  # reserved before (a retried delivery): that reservation
                return self._earlier(hold.task_id)
            if isinstance(refused, LimitKind):
                return refusal(refused, now)
            return Admission(hold=hold, started=start)

        if seen is not None:  # one try on the counts seen, then the loop that reads them
            try:
                return attempt((seen.running, seen.queued))
            except Conflict:
                pass  # they moved since (or another transaction met this one): read them
        return self._tx.retrying(attempt, busy(f"reserving for {client_id}"))

    def _reserve(
        self,
        client_id: str,
        hold: UsageHold,
        limits: ClientLimits,
        cost_usd: float,
        now: float,
        *,
        start: bool,
        prepaid: bool,
    ) -> LimitKind | object | None:
        window = window_start(now)
        budget = None if prepaid else limits.budget_room(cost_usd)
        if start:
            counts: dict[str, Any] = {
                "UpdateExpression": "ADD running :one",
                "ConditionExpression": "(attribute_not_exists(running) OR running < :max)"
                " AND (attribute_not_exists(queued) OR queued <= :zero)",
                "ExpressionAttributeValues": {
                    ":one": {"N": "1"},
                    ":zero": {"N": "0"},
                    ":max": {"N": str(limits.max_running_tasks)},
                },
            }
        else:
            counts = {
                "UpdateExpression": "ADD queued :one",
                "ConditionExpression": "attribute_not_exists(queued) OR queued < :max",
                "ExpressionAttributeValues": {
                    ":one": {"N": "1"},
                    ":max": {"N": str(limits.max_queued_tasks)},
                },
            }
        day: dict[str, Any] = {
            "UpdateExpression": "ADD spent_usd :cost SET expires_at = :ttl",
            "ExpressionAttributeValues": {
                ":cost": {"N": "0" if prepaid else str(usd(cost_usd))},
                ":ttl": {"N": str(int(next_utc_day(now)) + _DAY_TTL_SECONDS)},
            },
        }
        if budget is not None:
            day["ConditionExpression"] = "attribute_not_exists(spent_usd) OR spent_usd <= :room"
            day["ExpressionAttributeValues"][":room"] = {"N": str(budget)}
        items: list[dict[str, Any]] = [
            self._tx.update(
                limits_key(client_id, f"RATE#{window}"),
                UpdateExpression="ADD request_count :one SET expires_at = :ttl",
                ConditionExpression="attribute_not_exists(request_count) OR request_count < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limits.requests_per_minute)},
                    ":ttl": {"N": str(window + RATE_WINDOW_SECONDS + _RATE_TTL_SECONDS)},
                },
            ),
            self._tx.update(limits_key(client_id, "COUNTS"), **counts),
            self._tx.update(limits_key(client_id, f"DAY#{hold.day}"), **day),
            self._tx.put(
                {
                    **hold_key(hold.task_id),
                    "client_id": {"S": client_id},
                    "state": {"S": RUNNING if start else QUEUED},
                    "ticket": {"S": hold.ticket},
                    "day": {"S": hold.day},
                    "reserved_usd": {"N": str(usd(cost_usd))},
                    "expires_at": {"N": str(int(now) + HOLD_TTL_SECONDS)},
                    **hold_check_attributes(hold.task_id, now),
                },
                ConditionExpression="attribute_not_exists(pk)",
            ),
        ]
        if not start:
            items.append(self._queue_put(client_id, hold.ticket, now))
        failed = self._tx.write(items)
        if failed is None:
            return None
        if failed == 0:
            return LimitKind.RATE
        if failed == 2:
            return LimitKind.BUDGET
        if failed == 3:
            return _HELD
        raise Conflict  # the counts moved since they were read: decide again

    def _earlier(self, task_id: str) -> Admission:
        item = self._get(hold_key(task_id))
        if not item:  # settled meanwhile: nothing of it is left to hold
            raise Conflict
        hold = UsageHold(
            day=item["day"]["S"],
            reserved_usd=float(Decimal(item["reserved_usd"]["N"])),
            ticket=item["ticket"]["S"],
        )
        return Admission(hold=hold, started=item["state"]["S"] == RUNNING)

    def _queue_put(self, client_id: str, ticket_: str, now: float) -> dict[str, Any]:
        ttl = {"N": str(int(now) + HOLD_TTL_SECONDS)}
        return self._tx.put({**queue_key(client_id, ticket_), "expires_at": ttl})

    # -- start queued tasks (the client's queue) --------------------------------------------
    def start_next(self, client_id: str, *, limits: Callable[[], ClientLimits]) -> list[str]:
        """Oldest queued first, while a place is free (``DynamoDBClientQueue``)."""
        return self._queue.start_next(client_id, limits=limits)

    def is_running(self, client_id: str, hold: UsageHold) -> bool | None:
        """The hold's state (None: settled, or never reserved)."""
        return self._queue.is_running(hold)

    # -- settle ---------------------------------------------------------------------------------
    def settle(self, client_id: str, hold: UsageHold, *, cost_usd: float) -> Settlement:
        """Delete the hold, give its place back, move the day's spend to ``cost_usd``. The first
        try takes the hold as running (nearly every settle) without reading it: one GetItem
        fewer per task; the hold's condition refuses a wrong guess, and the hold is read."""
        try:
            if self._settle_as(client_id, hold, cost_usd, RUNNING) is None:
                return Settlement.RUNNING
        except Conflict:
            pass  # it met another transaction: read the hold and try again, below

        def attempt() -> Settlement:
            state = self._get(hold_key(hold.task_id)).get("state", {}).get("S")
            if state is None:
                return Settlement.NONE
            if self._settle_as(client_id, hold, cost_usd, state) is not None:
                raise Conflict  # started or settled meanwhile: read the hold again
            return Settlement.RUNNING if state == RUNNING else Settlement.QUEUED

        return self._tx.retrying(attempt, busy(f"settling {hold.task_id}"))

    def _settle_as(self, client_id: str, hold: UsageHold, cost: float, state: str) -> int | None:
        """Settle a hold in ``state``: None, or the refusing item's index (see ``_tx.write``)."""
        delta = str(usd(cost) - usd(hold.reserved_usd))
        return self._tx.write(settle_items(self._tx, client_id, hold, delta, state))

    # -- batches --------------------------------------------------------------------------------
    def prepay(self, client_id: str, *, limits: ClientLimits, cost_usd: float) -> str | None:
        """One conditional ``ADD`` on today's spend (the budget's room as its condition)."""
        now = self._clock()
        day = utc_day(now)
        room = limits.budget_room(cost_usd)
        if room is not None and room < 0:
            return None
        update: dict[str, Any] = {
            "UpdateExpression": "ADD spent_usd :cost SET expires_at = :ttl",
            "ExpressionAttributeValues": {
                ":cost": {"N": str(usd(cost_usd))},
                ":ttl": {"N": str(int(next_utc_day(now)) + _DAY_TTL_SECONDS)},
            },
        }
        if room is not None:
            update["ConditionExpression"] = "attribute_not_exists(spent_usd) OR spent_usd <= :room"
            update["ExpressionAttributeValues"][":room"] = {"N": str(room)}
        try:
            self._ddb.update_item(
                TableName=self._table, Key=limits_key(client_id, f"DAY#{day}"), **update
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return None
        return day

    def refund(self, client_id: str, day: str, cost_usd: float) -> None:
        """``ADD`` the negative amount to that day's spend."""
        self._ddb.update_item(
            TableName=self._table,
            Key=limits_key(client_id, f"DAY#{day}"),
            UpdateExpression="ADD spent_usd :minus",
            ExpressionAttributeValues={":minus": {"N": str(-usd(cost_usd))}},
        )

    # -- usage ----------------------------------------------------------------------------------
    def usage(self, client_id: str) -> UsageCounts:
        """One BatchGetItem of the counts, today's spend and the current window."""
        return read_usage(self._ddb, self._table, client_id, self._clock())


_HELD = object()
