"""DynamoDBApiKeyStore: caller API keys in the tasks table (adapter of ``ports.ApiKeys``)."""

from __future__ import annotations

from typing import Any

from image_gateway.auth import bearer_key, hash_api_key, new_api_key
from image_gateway.errors import Unauthorized
from image_gateway.models.task import utc_now


class DynamoDBApiKeyStore:
    """API keys in the tasks table: ``pk=APIKEY#<sha256>``; the key itself is never stored."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._ddb = dynamodb_client
        self._table = table_name

    def create_key(self, client_id: str, *, name: str = "default") -> str:
        """Make a new key for ``client_id`` and return it (shown once, stored hashed)."""
        api_key = new_api_key(client_id)
        self._ddb.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": f"APIKEY#{hash_api_key(api_key)}"},
                "sk": {"S": "APIKEY"},
                "client_id": {"S": client_id},
                "name": {"S": name},
                "created_at": {"S": utc_now().isoformat()},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        return api_key

    def client_for(self, authorization: str | None) -> str:
        """The client id behind an ``Authorization: Bearer <key>`` header, or raise 401."""
        api_key = bearer_key(authorization)
        item = self._ddb.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"APIKEY#{hash_api_key(api_key)}"}, "sk": {"S": "APIKEY"}},
        ).get("Item")
        if not item or item.get("disabled", {}).get("BOOL"):
            raise Unauthorized("API key not recognised")
        return str(item["client_id"]["S"])
