"""A caller's webhook receiver on 127.0.0.1 that verifies every delivery with the official
``standardwebhooks`` package, as the docs' example does (docs/webhooks.md).

Paths choose its behaviour: ``/ok/<name>`` answers 204; ``/down3/<name>`` answers 503 to its
first three deliveries, then 204; ``/gone/<name>`` answers 410.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Delivery:
    """One POST as received: its raw parts, and the payload if it verified."""

    path: str
    body: bytes
    headers: dict[str, str]
    payload: dict[str, Any] | None
    status: int


class WebhookReceiver:
    """Runs the receiver; ``url(path)`` to give as callback_url, ``wait(path, n)`` to read."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._received: dict[str, list[Delivery]] = defaultdict(list)
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._answer(self.path, body, headers)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        """The callback_url of ``path``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def _answer(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            payload = None
        with self._lock:
            earlier = len(self._received[path])
            if payload is None:
                status = 401
            elif path.startswith("/gone/"):
                status = 410
            elif path.startswith("/down3/") and earlier < 3:
                status = 503
            else:
                status = 204
            self._received[path].append(Delivery(path, body, headers, payload, status))
            self._lock.notify_all()
        return status

    def received(self, path: str) -> list[Delivery]:
        """What ``path`` received so far."""
        with self._lock:
            return list(self._received[path])

    def wait(self, path: str, count: int, timeout: float = 30) -> list[Delivery]:
        """The first ``count`` deliveries to ``path`` (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._received[path]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = len(self._received[path])
                    raise AssertionError(f"{path}: {got} of {count} deliveries in {timeout} s")
                self._lock.wait(left)
            return list(self._received[path])

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
