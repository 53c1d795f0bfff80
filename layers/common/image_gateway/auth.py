"""Caller API keys (their form and hash) and per-task webhook tokens (HMAC)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from image_gateway.errors import Unauthorized

API_KEY_PREFIX = "itg_"
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def hash_api_key(api_key: str) -> str:
    """The SHA-256 hex digest under which a key is stored (keys are random, so no salt needed)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def key_id_of(digest: str) -> str:
    """The public id of the key stored under ``digest``: safe to show, log and type (a prefix
    of the hash of 256 random bits tells nothing about the key)."""
    return "key_" + digest[:16]


@dataclass(frozen=True)
class ApiKeyRecord:
    """What an operator sees of a key: everything but the key itself."""

    key_id: str
    client_id: str
    name: str
    created_at: str
    last_used_at: str | None = None
    disabled: bool = False
    disabled_after: str | None = None
    """Set by a rotation: the key stops working at this time (ISO 8601, UTC)."""

    def active(self, now: datetime) -> bool:
        """Whether the key authenticates at ``now``."""
        if self.disabled:
            return False
        return self.disabled_after is None or now < datetime.fromisoformat(self.disabled_after)


LAST_USED_EVERY_SECONDS = 3600
"""``last_used_at`` is written at most this often per key: never a write on every request."""


def bearer_key(authorization: str | None) -> str:
    """The API key of an ``Authorization: Bearer <key>`` header, or raise 401."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("send your API key as 'Authorization: Bearer <key>'")
    api_key = authorization[7:].strip()
    if not api_key.startswith(API_KEY_PREFIX):
        raise Unauthorized("API key not recognised")
    return api_key


def new_api_key(client_id: str) -> str:
    """A new random key for ``client_id`` (checked: 1-64 characters of A-Z, a-z, 0-9, _ and -)."""
    if not _CLIENT_ID_RE.match(client_id):
        raise ValueError("client ids are 1-64 characters of A-Z, a-z, 0-9, '_' and '-'")
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


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
