"""HTTP request and response values passed between the simulator's server and its providers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SimRequest:
    """One HTTP request as a provider simulator sees it.

    `path` is relative to the provider's prefix (`/v1/tasks/x`, not `/apimart/v1/tasks/x`).
    `headers` maps lower-case header names to values.
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not JSON."""
        return json.loads(self.body)

    def bearer_token(self) -> str | None:
        """The token of an `Authorization: Bearer <token>` header, or None."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


@dataclass(frozen=True)
class SimResponse:
    """One HTTP response; the body is a sequence of chunks so large bodies are never joined."""

    status: int
    chunks: tuple[bytes, ...]
    content_type: str = "application/json"

    @property
    def content_length(self) -> int:
        """Total body length in bytes."""
        return sum(len(chunk) for chunk in self.chunks)

    def truncated(self) -> SimResponse:
        """The same response with only the first half of its body (broken JSON)."""
        keep = self.content_length // 2
        chunks: list[bytes] = []
        for chunk in self.chunks:
            if keep <= 0:
                break
            chunks.append(chunk[:keep])
            keep -= len(chunks[-1])
        return SimResponse(self.status, tuple(chunks), self.content_type)


def json_response(status: int, payload: Any) -> SimResponse:
    """A JSON response with the given HTTP status."""
    return SimResponse(status, (json.dumps(payload).encode(),))


def raw_response(status: int, body: bytes, content_type: str) -> SimResponse:
    """A response with a body that is sent exactly as given."""
    return SimResponse(status, (body,), content_type)
