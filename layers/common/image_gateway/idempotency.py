"""Idempotency keys: what makes two requests "the same", and what a valid key is."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

from image_gateway.errors import InvalidRequest

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_KEY_CHARS = 128
KEY_PATTERN = r"^[!-~]([ -~]{0,126}[!-~])?$"
"""1-128 printable ASCII characters, no space at either end (HTTP trims those): the
document's pattern, and the check below."""
_KEY_RE = re.compile(KEY_PATTERN)


def fingerprint(body: str) -> str:
    """What identifies "the same request" (the canonical JSON of the validated body)."""
    return hashlib.sha256(body.encode()).hexdigest()


def check_key(key: str) -> None:
    """Refuse a key that is not 1-128 printable ASCII characters (400 invalid_idempotency_key)."""
    if not _KEY_RE.match(key):
        raise InvalidRequest(
            f"Idempotency-Key must be 1-{MAX_KEY_CHARS} printable ASCII characters",
            code="invalid_idempotency_key",
        )
