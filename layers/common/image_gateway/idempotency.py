"""Idempotency-Key support: the same key and body give the same task, never a second one."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from image_gateway.errors import Conflict, InvalidRequest
from image_gateway.models.task import utc_now

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_KEY_CHARS = 128


class IdempotencyStore:
    """Claims ``(client, key)`` once; a repeat with the same body finds the first task id."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._ddb = dynamodb_client
        self._table = table_name

    @staticmethod
    def fingerprint(body: str) -> str:
        """What identifies "the same request" (the canonical JSON of the validated body)."""
        return hashlib.sha256(body.encode()).hexdigest()

    def claim(self, client_id: str, key: str, fingerprint: str, task_id: str) -> str | None:
        """Claim the key for ``task_id``; return the earlier task id if it was already claimed.

        Raises :class:`Conflict` when the key was used before with a different body.
        """
        if not 1 <= len(key) <= MAX_KEY_CHARS or not key.isprintable():
            raise InvalidRequest(
                f"Idempotency-Key must be 1-{MAX_KEY_CHARS} printable characters",
                code="invalid_idempotency_key",
            )
        scope = hashlib.sha256(json.dumps([client_id, key]).encode()).hexdigest()  # no collisions
        item_key = {"pk": {"S": f"IDEMP#{scope}"}, "sk": {"S": "IDEMP"}}
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
