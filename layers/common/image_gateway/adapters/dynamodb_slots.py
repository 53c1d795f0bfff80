"""DynamoDBProviderSlots: per-provider concurrency leases in the tasks table
(adapter of ``ports.ProviderSlots``).

Item layout: ``pk=SLOTS#<provider>``, ``sk=<index>``, ``holder``, ``held_until`` (epoch seconds),
``expires_at`` (TTL). One query reads a provider's slots; a conditional put takes a free or
expired one, so two dispatchers never hold the same slot. A crashed holder's lease simply runs
out.
"""

from __future__ import annotations

import random
import time
from typing import Any

from botocore.exceptions import ClientError

from image_gateway.health.ports import Slot

_TTL_MARGIN_SECONDS = 86400


class DynamoDBProviderSlots:
    """Leases on ``limit`` numbered slots per provider."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._ddb = dynamodb_client
        self._table = table_name

    def acquire(
        self, provider: str, holder: str, *, limit: int, lease_seconds: float
    ) -> Slot | None:
        """Take a free (or expired) slot, or None when every one is held."""
        now = time.time()
        held = self._held(provider, now)
        free = [i for i in range(limit) if i not in held]
        random.shuffle(free)  # spread contention over the free slots
        for index in free:
            try:
                self._ddb.put_item(
                    TableName=self._table,
                    Item={
                        "pk": {"S": f"SLOTS#{provider}"},
                        "sk": {"S": str(index)},
                        "holder": {"S": holder},
                        "held_until": {"N": f"{now + lease_seconds:.3f}"},
                        "expires_at": {"N": str(int(now + lease_seconds + _TTL_MARGIN_SECONDS))},
                    },
                    ConditionExpression="attribute_not_exists(pk) OR held_until < :now",
                    ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                continue  # someone took it between the read and the write
            return Slot(provider=provider, index=index, holder=holder)
        return None

    def release(self, slot: Slot) -> None:
        """Free the slot if the holder still holds it (an expired lease may be someone else's)."""
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key={"pk": {"S": f"SLOTS#{slot.provider}"}, "sk": {"S": str(slot.index)}},
                ConditionExpression="holder = :h",
                ExpressionAttributeValues={":h": {"S": slot.holder}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def _held(self, provider: str, now: float) -> set[int]:
        answer = self._ddb.query(
            TableName=self._table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": f"SLOTS#{provider}"}},
            ConsistentRead=True,
        )
        return {
            int(item["sk"]["S"])
            for item in answer.get("Items", [])
            if float(item["held_until"]["N"]) >= now
        }
