"""The holds' check list (part of ``DynamoDBUsageLedger``): every hold is on the tasks'
``OpenByCheckTime`` index from its reservation (``open_pk=HOLDS#<shard>``, partitions of its
own beside the tasks' ``OPEN#``; ``check_ts``: the reservation time), until it is settled (the
hold is deleted) or claimed (its task was seen: the two attributes removed). The sweeper reads
the holds reserved long ago and still listed: a submit that died between its reservation and
its task's write left them, and their places would stay taken for ever (docs/limits.md).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from image_gateway.adapters.dynamodb_client_queue import hold_key, read_item
from image_gateway.adapters.dynamodb_due import HOLD_SHARD, OPEN_SHARDS, due_keys_of_shards
from image_gateway.limits.ports import UnclaimedHold, UsageHold


def hold_check_attributes(task_id: str, now: float) -> dict[str, Any]:
    """The index attributes a new hold is written with."""
    shard = hashlib.sha256(task_id.encode()).digest()[0] % OPEN_SHARDS
    return {"open_pk": {"S": f"{HOLD_SHARD}{shard}"}, "check_ts": {"N": str(int(now))}}


class HoldCheckList:
    """The ledger's ``unclaimed_holds`` and ``claim`` (see the module); mixed into
    ``DynamoDBUsageLedger``, whose client, table and clock they use."""

    _ddb: Any
    _table: str
    _clock: Callable[[], float]

    def unclaimed_holds(self, *, older_than_seconds: float, limit: int) -> list[UnclaimedHold]:
        """Up to ``limit`` holds reserved before the cut-off, shard after shard (the shards'
        keys read at once, keys only), each hold found read whole."""
        cutoff = int(self._clock() - older_than_seconds)
        keys = [
            key
            for shards in due_keys_of_shards(
                self._ddb, self._table, (HOLD_SHARD,), (cutoff,), limit
            )
            for shard_keys in shards
            for key in shard_keys
        ][:limit]
        found: list[UnclaimedHold] = []
        for key in keys:
            item = read_item(self._ddb, self._table, {"pk": key["pk"], "sk": key["sk"]})
            if item.get("open_pk"):  # neither settled nor claimed since the index was read
                found.append(_unclaimed(item))
        return found

    def claim(self, task_id: str) -> None:
        """The two attributes removed, only from a hold that still exists."""
        # settled meanwhile: nothing to claim, and nothing must be written back
        with contextlib.suppress(self._ddb.exceptions.ConditionalCheckFailedException):
            self._ddb.update_item(
                TableName=self._table,
                Key=hold_key(task_id),
                UpdateExpression="REMOVE open_pk, check_ts",
                ConditionExpression="attribute_exists(pk)",
            )


def _unclaimed(item: dict[str, Any]) -> UnclaimedHold:
    return UnclaimedHold(
        client_id=item["client_id"]["S"],
        hold=UsageHold(
            day=item["day"]["S"],
            reserved_usd=float(Decimal(item["reserved_usd"]["N"])),
            ticket=item["ticket"]["S"],
        ),
    )
