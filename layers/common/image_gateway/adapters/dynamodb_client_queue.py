"""A client's queue in the tasks table (part of ``DynamoDBUsageLedger``): queued tasks start
oldest first, one transaction each, never past the client's running limit, each by exactly one
caller; and the item keys and reads the ledger shares with it.

- ``LIMITS#<client>`` / ``COUNTS``: ``running`` and ``queued``;
- ``HOLD#<task id>`` / ``HOLD``: a task's marker, ``state`` running or queued;
- ``QUEUE#<client>`` / ``<ticket>``: a queued task's place (tickets sort oldest first).

Starting one task deletes its queue entry (it must exist), moves its hold from queued to
running (it must be queued) and counts it (a place must be free), all at once.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from image_gateway.adapters.dynamodb_transactions import Transactions
from image_gateway.limits.ports import ClientLimits, LedgerBusy, UsageHold

HOLD_TTL_SECONDS = 90 * 86400  # far past any task's life: only a lost marker ever expires
RUNNING, QUEUED = "running", "queued"
_START_BATCH = 10  # queued tasks read per query when several places are free
_START_ROUNDS = 50  # a starter gives up after this many reads; the next settlement goes on
_STARTED, _FULL, _TAKEN = object(), object(), object()


def limits_key(client_id: str, sk: str) -> dict[str, Any]:
    """A client's ``LIMITS#`` item (limits, counts, rate windows, days)."""
    return {"pk": {"S": f"LIMITS#{client_id}"}, "sk": {"S": sk}}


def hold_key(task_id: str) -> dict[str, Any]:
    """A task's hold marker."""
    return {"pk": {"S": f"HOLD#{task_id}"}, "sk": {"S": "HOLD"}}


def queue_key(client_id: str, ticket: str) -> dict[str, Any]:
    """A queued task's place in its client's queue."""
    return {"pk": {"S": f"QUEUE#{client_id}"}, "sk": {"S": ticket}}


def read_item(dynamodb_client: Any, table: str, key: dict[str, Any]) -> dict[str, Any]:
    """One item, strongly consistent ({} when absent)."""
    item: dict[str, Any] = dynamodb_client.get_item(
        TableName=table, Key=key, ConsistentRead=True
    ).get("Item", {})
    return item


def read_counts(dynamodb_client: Any, table: str, client_id: str) -> tuple[int, int]:
    """The client's (running, queued), strongly consistent."""
    item = read_item(dynamodb_client, table, limits_key(client_id, "COUNTS"))
    return number(item, "running"), number(item, "queued")


def number(item: dict[str, Any], name: str) -> int:
    """A numeric attribute as an int (0 when absent)."""
    value = item.get(name, {}).get("N")
    return 0 if value is None else int(Decimal(value))


def settle_items(
    tx: Transactions, client_id: str, hold: UsageHold, delta_usd: str, state: str
) -> list[dict[str, Any]]:
    """The settle of a hold in ``state`` (running or queued) as transaction items: the hold
    deleted on condition of that state (item 0), its place given back, the day's spend moved by
    ``delta_usd``, and a queued hold's queue entry deleted."""
    items = [
        tx.delete(
            hold_key(hold.task_id),
            ConditionExpression="#s = :state",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":state": {"S": state}},
        ),
        tx.update(
            limits_key(client_id, "COUNTS"),
            UpdateExpression=f"ADD {state} :minus",
            ExpressionAttributeValues={":minus": {"N": "-1"}},
        ),
        tx.update(
            limits_key(client_id, f"DAY#{hold.day}"),
            UpdateExpression="ADD spent_usd :delta",
            ExpressionAttributeValues={":delta": {"N": delta_usd}},
        ),
    ]
    if state == QUEUED:
        items.append(tx.delete(queue_key(client_id, hold.ticket)))
    return items


def busy(what: str) -> Callable[[int], Exception]:
    """The LedgerBusy a transaction that kept conflicting ends with."""

    def make(attempts: int) -> Exception:
        return LedgerBusy(f"{what}: the counters kept changing ({attempts} attempts)")

    return make


class DynamoDBClientQueue:
    """Starts a client's queued tasks (see the module)."""

    def __init__(self, dynamodb_client: Any, transactions: Transactions) -> None:
        self._ddb = dynamodb_client
        self._tx = transactions

    def start_next(self, client_id: str, *, limits: Callable[[], ClientLimits]) -> list[str]:
        """Oldest queued first, one transaction each, while a place is free (see the module).

        ``limits`` is read once, and only when the client has a queued task: a finishing task
        of a client with nothing queued costs one read (the counts), not two."""
        started: list[str] = []
        in_force: ClientLimits | None = None
        for _ in range(_START_ROUNDS):  # bounded: each round starts one or rereads moved state
            running, queued = read_counts(self._ddb, self._tx.table, client_id)
            if queued <= 0:
                return started
            if in_force is None:
                in_force = limits()
            room = in_force.max_running_tasks - running
            if room <= 0:
                return started
            entries = self._ddb.query(
                TableName=self._tx.table,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": f"QUEUE#{client_id}"}},
                ConsistentRead=True,
                Limit=min(room, _START_BATCH),
            ).get("Items", [])
            if not entries:
                return started
            for entry in entries:  # one taken by another starter is skipped: read again after
                ticket_ = entry["sk"]["S"]
                outcome = self._start(client_id, ticket_, in_force)
                if outcome is _FULL:
                    return started
                if outcome is _STARTED:
                    started.append(ticket_.split("#", 1)[1])
        return started

    def _start(self, client_id: str, ticket_: str, limits: ClientLimits) -> object:
        task_id = ticket_.split("#", 1)[1]
        items = [
            self._tx.delete(
                queue_key(client_id, ticket_), ConditionExpression="attribute_exists(pk)"
            ),
            self._tx.update(
                hold_key(task_id),
                UpdateExpression="SET #s = :running",
                ConditionExpression="#s = :queued",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={
                    ":running": {"S": RUNNING},
                    ":queued": {"S": QUEUED},
                },
            ),
            self._tx.update(
                limits_key(client_id, "COUNTS"),
                UpdateExpression="ADD running :one, queued :minus",
                ConditionExpression="attribute_not_exists(running) OR running < :max",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":minus": {"N": "-1"},
                    ":max": {"N": str(limits.max_running_tasks)},
                },
            ),
        ]

        def attempt() -> object:
            failed = self._tx.write(items)
            if failed is None:
                return _STARTED
            if failed == 2:
                return _FULL
            if failed == 0:  # the entry is gone: started or settled by someone else
                return _TAKEN
            # a queue entry whose hold is gone (a settled task's entry left by a crash): drop it
            self._ddb.delete_item(TableName=self._tx.table, Key=queue_key(client_id, ticket_))
            return _TAKEN

        return self._tx.retrying(attempt, busy(f"starting a queued task of {client_id}"))

    def is_running(self, hold: UsageHold) -> bool | None:
        """The hold's state (None: settled, or never reserved)."""
        item = read_item(self._ddb, self._tx.table, hold_key(hold.task_id))
        state = item.get("state", {}).get("S")
        return None if state is None else state == RUNNING
