"""The ``OpenByCheckTime`` index: what the sweeper looks at, and when (botocore only).

An open task's item carries ``open_pk=OPEN#<shard>`` and ``check_ts`` (its next check time),
a client's hold ``open_pk=HOLDS#<shard>`` and its reservation time (the holds' check list,
``dynamodb_hold_checks.py``); both leave the sparse index when there is nothing more to check.
This module reads the index and nothing else, so the sweeper's cold start on an idle stack
(:class:`DynamoDBDueIndex`, ``functions/sweeper/app.py``) imports neither the task model nor
pydantic: the task store and the ledger import the shard queries from here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

OPEN_SHARDS = 16  # the open-task index: 16 partitions of 1,000 WCU/s each (docs/capacity.md)
OPEN_BY_CHECK_INDEX = "OpenByCheckTime"
TASK_SHARD = "OPEN#"
"""``open_pk`` of an open task: ``OPEN#<shard>``."""
HOLD_SHARD = "HOLDS#"
"""``open_pk`` of a client's hold on the check list: ``HOLDS#<shard>``."""


def due_keys(
    dynamodb_client: Any, table: str, partition: str, cutoff: float, limit: int
) -> list[dict[str, Any]]:
    """The keys of one partition of the ``OpenByCheckTime`` index (``OPEN#<shard>`` for tasks,
    ``HOLDS#<shard>`` for client holds) whose check time is ``cutoff`` or earlier, oldest first."""
    answer = dynamodb_client.query(
        TableName=table,
        IndexName=OPEN_BY_CHECK_INDEX,
        KeyConditionExpression="open_pk = :p AND check_ts <= :cutoff",
        ExpressionAttributeValues={
            ":p": {"S": partition},
            ":cutoff": {"N": str(int(cutoff))},
        },
        Limit=limit,
    )
    keys: list[dict[str, Any]] = answer.get("Items", [])
    return keys


SHARD_QUERY_THREADS = OPEN_SHARDS
"""Shards queried at once. Botocore's clients are thread-safe, and its connection pool keeps 10
connections (``max_pool_connections``): the rest wait for one, they are not refused."""


def due_keys_of_shards(
    dynamodb_client: Any,
    table: str,
    prefixes: tuple[str, ...],
    cutoffs: tuple[float, ...],
    limit: int,
) -> list[list[list[dict[str, Any]]]]:
    """:func:`due_keys` of every shard of each prefix (``<prefix><shard>``, with that prefix's
    cut-off), in shard order, all the queries made at once: a sweep waits for one round trip
    instead of sixteen a prefix (an idle sweep on devstack: 32 queries one after another were
    most of its first event's 107 ms)."""
    # imported here: only the sweeper queries the shards (about 3 ms of an import otherwise)
    from concurrent.futures import ThreadPoolExecutor

    asked = [
        (f"{prefix}{shard}", cutoff)
        for prefix, cutoff in zip(prefixes, cutoffs, strict=True)
        for shard in range(OPEN_SHARDS)
    ]
    with ThreadPoolExecutor(max_workers=SHARD_QUERY_THREADS) as pool:
        found = list(pool.map(lambda a: due_keys(dynamodb_client, table, a[0], a[1], limit), asked))
    return [found[i * OPEN_SHARDS : (i + 1) * OPEN_SHARDS] for i in range(len(prefixes))]


class DynamoDBDueIndex:
    """Whether the sweep has anything to do (adapter of ``sweep_ports.DueIndex``)."""

    def __init__(self, dynamodb_client: Any, table: str) -> None:
        self._ddb = dynamodb_client
        self._table = table

    def anything_due(self, now: datetime, *, holds_older_than_seconds: float) -> bool:
        """A task whose check time is ``now`` or earlier, or a hold on the check list reserved
        ``holds_older_than_seconds`` before ``now`` or earlier: one query a shard, at once."""
        cutoffs = (now.timestamp(), now.timestamp() - holds_older_than_seconds)
        shards = due_keys_of_shards(self._ddb, self._table, (TASK_SHARD, HOLD_SHARD), cutoffs, 1)
        return any(keys for prefix in shards for keys in prefix)
