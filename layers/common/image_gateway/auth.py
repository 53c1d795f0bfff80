"""Caller API keys (stored hashed) and per-task webhook tokens (HMAC)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from image_gateway.errors import Unauthorized
from image_gateway.models.task import utc_now

API_KEY_PREFIX = "itg_"
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def hash_api_key(api_key: str) -> str:
    """The SHA-256 hex digest under which a key is stored (keys are random, so no salt needed)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


class ApiKeyStore:
    """API keys in the tasks table: ``pk=APIKEY#<sha256>``; the key itself is never stored."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._ddb = dynamodb_client
        self._table = table_name

    def create_key(self, client_id: str, *, name: str = "default") -> str:
        """Make a new key for ``client_id`` and return it (shown once, stored hashed)."""
        if not _CLIENT_ID_RE.match(client_id):
            raise ValueError("client ids are 1-64 characters of A-Z, a-z, 0-9, '_' and '-'")
        api_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
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
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("send your API key as 'Authorization: Bearer <key>'")
        api_key = authorization[7:].strip()
        if not api_key.startswith(API_KEY_PREFIX):
            raise Unauthorized("API key not recognised")
        item = self._ddb.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"APIKEY#{hash_api_key(api_key)}"}, "sk": {"S": "APIKEY"}},
        ).get("Item")
        if not item or item.get("disabled", {}).get("BOOL"):
            raise Unauthorized("API key not recognised")
        return str(item["client_id"]["S"])


class WebhookSigner:
    """Per-task callback tokens: HMAC-SHA256 of provider and task id under a stack secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("webhook secret must be at least 16 bytes")
        self._secret = secret

    def token(self, provider: str, task_id: str) -> str:
        """The token to put in the task's callback URL."""
        message = f"{provider}:{task_id}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def verify(self, provider: str, task_id: str, token: str) -> bool:
        """Constant-time check of a token from a callback URL (anything non-ASCII is wrong)."""
        if not token.isascii():
            return False
        return hmac.compare_digest(self.token(provider, task_id), token)
