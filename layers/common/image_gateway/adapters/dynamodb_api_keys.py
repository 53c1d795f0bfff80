"""DynamoDBApiKeyStore: caller API keys in the tasks table (adapter of ``ports.ApiKeys``).

Item ``pk=APIKEY#<sha256 of the key>``, ``sk=APIKEY``: ``client_id``, ``name``, ``created_at``,
``key_id`` (``key_`` + the hash's first 16 hex digits, what an operator types), and when set
``disabled``, ``disabled_after`` (a rotation's end of grace) and ``last_used_at``. The key itself
is never stored. Every key is also on the keys-only ``ByClientKeys`` index under
``gsi1pk=APIKEYS``, ``gsi1sk=<client>#<created>#<key id>``: one small partition that lists keys
without a scan (then the items are read).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from image_gateway.adapters.dynamodb_tasks import BY_CLIENT_INDEX, items_by_keys, table_keys
from image_gateway.auth import (
    LAST_USED_EVERY_SECONDS,
    ApiKeyRecord,
    bearer_key,
    hash_api_key,
    key_id_of,
    new_api_key,
)
from image_gateway.errors import Conflict, NotFound, Unauthorized
from image_gateway.models.task import utc_now

_LIST_PK = "APIKEYS"
_KEY_ID = re.compile(r"key_[0-9a-f]{16}")  # auth.key_id_of


def _key(digest: str) -> dict[str, Any]:
    return {"pk": {"S": f"APIKEY#{digest}"}, "sk": {"S": "APIKEY"}}


def _record(item: dict[str, Any]) -> ApiKeyRecord:
    def text(name: str) -> str | None:
        value = item.get(name, {}).get("S")
        return None if value is None else str(value)

    digest = str(item["pk"]["S"]).removeprefix("APIKEY#")
    return ApiKeyRecord(
        key_id=text("key_id") or key_id_of(digest),
        client_id=text("client_id") or "",
        name=text("name") or "default",
        created_at=text("created_at") or "",
        last_used_at=text("last_used_at"),
        disabled=bool(item.get("disabled", {}).get("BOOL", False)),
        disabled_after=text("disabled_after"),
    )


class DynamoDBApiKeyStore:
    """API keys in the tasks table; ``clock`` (UTC now) is injectable."""

    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._ddb = dynamodb_client
        self._table = table_name
        self._clock = clock

    def create_key(self, client_id: str, *, name: str = "default") -> str:
        """Make a new key for ``client_id`` and return it (shown once, stored hashed)."""
        return self.create(client_id, name=name)[0]

    def create(self, client_id: str, *, name: str = "default") -> tuple[str, ApiKeyRecord]:
        """A new key for ``client_id`` and its record (the key is shown once, stored hashed)."""
        api_key = new_api_key(client_id)
        digest = hash_api_key(api_key)
        record = ApiKeyRecord(
            key_id=key_id_of(digest),
            client_id=client_id,
            name=name,
            created_at=self._clock().isoformat(),
        )
        self._ddb.put_item(
            TableName=self._table,
            Item={
                **_key(digest),
                "client_id": {"S": client_id},
                "name": {"S": name},
                "created_at": {"S": record.created_at},
                "key_id": {"S": record.key_id},
                "gsi1pk": {"S": _LIST_PK},
                "gsi1sk": {"S": f"{client_id}#{record.created_at}#{record.key_id}"},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        return api_key, record

    def client_for(self, authorization: str | None) -> str:
        """The client id behind an ``Authorization: Bearer <key>`` header, or raise 401."""
        digest = hash_api_key(bearer_key(authorization))
        item = self._ddb.get_item(TableName=self._table, Key=_key(digest)).get("Item")
        now = self._clock()
        if not item or not _record(item).active(now):
            raise Unauthorized("API key not recognised")
        self._touch(digest, item, now)
        return str(item["client_id"]["S"])

    def _touch(self, digest: str, item: dict[str, Any], now: datetime) -> None:
        """Record the use, at most once an hour per key (a conditional write: of many
        concurrent requests one writes); a failure never fails the request."""
        cutoff = (now - timedelta(seconds=LAST_USED_EVERY_SECONDS)).isoformat()
        last = item.get("last_used_at", {}).get("S")
        if last is not None and last > cutoff:
            return
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=_key(digest),
                UpdateExpression="SET last_used_at = :now",
                ConditionExpression="attribute_exists(pk) AND "
                "(attribute_not_exists(last_used_at) OR last_used_at <= :cutoff)",
                ExpressionAttributeValues={
                    ":now": {"S": now.isoformat()},
                    ":cutoff": {"S": cutoff},
                },
            )
        except ClientError:
            return  # another request wrote it, or the write failed: "last used" is advisory

    # -- the operator's side (imagegw admin) ---------------------------------------------------
    def list_keys(self, client_id: str | None = None) -> list[ApiKeyRecord]:
        """Every key, or ``client_id``'s, by client then creation time."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_CLIENT_INDEX,
            "KeyConditionExpression": "gsi1pk = :p",
            "ExpressionAttributeValues": {":p": {"S": _LIST_PK}},
        }
        if client_id is not None:
            query["KeyConditionExpression"] += " AND begins_with(gsi1sk, :c)"
            query["ExpressionAttributeValues"][":c"] = {"S": f"{client_id}#"}
        records: list[ApiKeyRecord] = []
        for page in self._ddb.get_paginator("query").paginate(**query):
            keys = table_keys(page.get("Items", []))
            records += [_record(item) for item in items_by_keys(self._ddb, self._table, keys)]
        return records

    def get(self, key_id: str) -> ApiKeyRecord:
        """The key ``key_id`` (NotFound when there is none)."""
        return _record(self._item(key_id))

    def set_disabled(self, key_id: str, disabled: bool) -> ApiKeyRecord:
        """Turn a key off or on; the next request sees it (keys are read on every request)."""
        item = self._item(key_id)
        update = "SET disabled = :d" + ("" if disabled else " REMOVE disabled_after")
        self._ddb.update_item(
            TableName=self._table,
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression=update,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":d": {"BOOL": disabled}},
        )
        return self.get(key_id)

    def rotate(self, key_id: str, *, grace: timedelta) -> tuple[str, ApiKeyRecord, ApiKeyRecord]:
        """A new key for the same client and name; the old one stops working after ``grace``.
        Returns the new key, its record and the old key's record."""
        old = self.get(key_id)
        if not old.active(self._clock()):
            raise Conflict(f"{key_id} is disabled already: create a key instead")
        api_key, record = self.create(old.client_id, name=old.name)
        item = self._item(key_id)
        self._ddb.update_item(
            TableName=self._table,
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET disabled_after = :t",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":t": {"S": (self._clock() + grace).isoformat()}},
        )
        return api_key, record, self.get(key_id)

    def _item(self, key_id: str) -> dict[str, Any]:
        """The key's item: its id is the start of its hash, so of its table key (the index holds
        keys only: the filter is on ``pk``, then the item is read)."""
        if not _KEY_ID.fullmatch(key_id):  # a shorter prefix would match other keys
            raise NotFound(f"no API key {key_id!r}: `imagegw admin keys list` shows the ids")
        prefix = f"APIKEY#{key_id.removeprefix('key_')}"
        pages = self._ddb.get_paginator("query").paginate(
            TableName=self._table,
            IndexName=BY_CLIENT_INDEX,
            KeyConditionExpression="gsi1pk = :p",
            FilterExpression="begins_with(pk, :k)",
            ExpressionAttributeValues={":p": {"S": _LIST_PK}, ":k": {"S": prefix}},
        )
        for page in pages:
            for item in items_by_keys(self._ddb, self._table, table_keys(page.get("Items", []))):
                return dict(item)
        raise NotFound(f"no API key {key_id!r}: `imagegw admin keys list` shows the ids")
