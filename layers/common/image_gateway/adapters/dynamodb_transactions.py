"""DynamoDB transactions for the adapters that keep counters: one write of several items, the
index of the item whose condition refused it, and retries with full-jitter backoff when it met
another transaction (``TransactionConflict``), as AWS's guidance on hot items advises."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError

_T = TypeVar("_T")


class Conflict(Exception):
    """A transaction met another on the same items, or a value changed under a decision taken
    on it (nothing was written): try again."""


class Transactions:
    """``TransactWriteItems`` on one table, and a retry loop for attempts that conflict."""

    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        *,
        attempts: int,
        backoff_seconds: float,
        pause: Callable[[float], None],
    ) -> None:
        self._ddb = dynamodb_client
        self.table = table_name
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._pause = pause

    def update(self, key: dict[str, Any], **update: Any) -> dict[str, Any]:
        """An ``Update`` item of a transaction."""
        return {"Update": {"TableName": self.table, "Key": key, **update}}

    def put(self, item: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """A ``Put`` item of a transaction."""
        return {"Put": {"TableName": self.table, "Item": item, **extra}}

    def delete(self, key: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """A ``Delete`` item of a transaction."""
        return {"Delete": {"TableName": self.table, "Key": key, **extra}}

    def write(self, items: list[dict[str, Any]]) -> int | None:
        """Write ``items`` at once; None when written, else the index of the item whose
        condition failed. Raises :class:`Conflict` when the transaction met another."""
        try:
            self._ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            for index, reason in enumerate(reasons):
                if reason.get("Code") == "ConditionalCheckFailed":
                    return index
            if any(r.get("Code") == "TransactionConflict" for r in reasons):
                raise Conflict from None
            raise
        return None

    def retrying(self, attempt: Callable[[], _T], busy: Callable[[int], Exception]) -> _T:
        """``attempt()`` until it does not raise :class:`Conflict`, pausing a random time up to
        a doubling bound between tries; ``busy(attempts)`` is raised when every try conflicted."""
        for n in range(self._attempts):
            try:
                return attempt()
            except Conflict:
                if n + 1 < self._attempts:
                    self._pause(random.uniform(0, self._backoff * 2**n))
        raise busy(self._attempts)
