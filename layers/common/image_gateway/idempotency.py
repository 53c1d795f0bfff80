"""Idempotency keys: what makes two requests "the same", and what a valid key is."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from image_gateway.errors import InvalidRequest

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_KEY_CHARS = 128


def fingerprint(body: str) -> str:
    """What identifies "the same request" (the canonical JSON of the validated body)."""
    return hashlib.sha256(body.encode()).hexdigest()


def check_key(key: str) -> None:
    """Refuse a key that is empty, too long or not printable (400 ``invalid_idempotency_key``)."""
    if not 1 <= len(key) <= MAX_KEY_CHARS or not key.isprintable():
        raise InvalidRequest(
            f"Idempotency-Key must be 1-{MAX_KEY_CHARS} printable characters",
            code="invalid_idempotency_key",
        )
