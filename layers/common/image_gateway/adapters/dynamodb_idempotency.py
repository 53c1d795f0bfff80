"""DynamoDBIdempotencyStore: Idempotency-Key records (``ports.IdempotencyRepository``)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from image_gateway.errors import Conflict
from image_gateway.idempotency import IDEMPOTENCY_TTL, check_key
from image_gateway.models.task import utc_now


class DynamoDBIdempotencyStore:
    """Claims ``(client, key)`` once; a repeat with the same body finds the first task id."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._ddb = dynamodb_client
        self._table = table_name

    def claim(self, client_id: str, key: str, fingerprint: str, task_id: str) -> str | None:
        """Claim the key for ``task_id``; return the earlier task id if it was already claimed.

        Raises :class:`Conflict` when the key was used before with a different body.
        """
        check_key(key)
        item_key = _item_key(client_id, key)
        expires = int((utc_now() + IDEMPOTENCY_TTL).timestamp())
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    **item_key,
                    "task_id": {"S": task_id},
                    "fingerprint": {"S": fingerprint},
                    "expires_at": {"N": str(expires)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
            return None
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        existing = self._ddb.get_item(TableName=self._table, Key=item_key, ConsistentRead=True).get(
            "Item", {}
        )
        if existing.get("fingerprint", {}).get("S") != fingerprint:
            raise Conflict(
                "Idempotency-Key was already used with a different request body",
                code="idempotency_key_reused",
            )
        return str(existing["task_id"]["S"])

    def release(self, client_id: str, key: str, task_id: str) -> None:
        """Forget the claim of ``task_id`` (its request failed); a claim of another task stays."""
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key=_item_key(client_id, key),
                ConditionExpression="task_id = :t",
                ExpressionAttributeValues={":t": {"S": task_id}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise


def _item_key(client_id: str, key: str) -> dict[str, Any]:
    scope = hashlib.sha256(json.dumps([client_id, key]).encode()).hexdigest()  # no collisions
    return {"pk": {"S": f"IDEMP#{scope}"}, "sk": {"S": "IDEMP"}}
