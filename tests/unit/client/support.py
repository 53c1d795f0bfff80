"""Helpers of the client's unit tests: task views as the gateway sends them, a scripted gateway
behind httpx.MockTransport, and a clock that sleeps without waiting."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

URL = "https://gw.example"
KEY = "itg_test"
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(200)
IMAGE_URL = "https://bucket.example/outputs/demo/1.png?sig=abc"


def view(status: str, *, task_id: str = "tsk_1", **fields: Any) -> dict[str, Any]:
    """A task view (``GET /v1/tasks/{id}``) in ``status``; ``fields`` override."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "task_id": task_id,
        "status": status,
        "operation": "generate",
        "provider": "mountsea-async",
        "path": "poll",
        "model": "gpt-image-2",
        "size_requested": "1024x1024",
        "size_sent": "1024x1024",
        "size_produced": None,
        "cost_estimate_usd": None,
        "created_at": now.isoformat(),
        "submitted_at": now.isoformat(),
        "finished_at": None,
        "duration_ms": None,
        "expected_seconds": 30.0,
        "outputs": [],
        "error": None,
        "metadata": {},
        "attempts": [],
        "history": [{"status": status, "at": now.isoformat(), "by": "api"}],
        "url": f"/v1/tasks/{task_id}",
    }
    if status == "succeeded":
        body.update(
            size_produced="1024x1024",
            finished_at=(now + timedelta(seconds=1)).isoformat(),
            duration_ms=1000,
            outputs=[output()],
        )
    body.update(fields)
    return body


def output(data: bytes = IMAGE, url: str = IMAGE_URL) -> dict[str, Any]:
    """One ``outputs[i]`` entry describing ``data``."""
    return {
        "bucket": "bucket",
        "key": "outputs/demo/1.png",
        "content_type": "image/png",
        "width": 1024,
        "height": 1024,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "url": url,
    }


def error_body(code: str, message: str = "no", **details: Any) -> dict[str, Any]:
    """The gateway's error body."""
    return {"error": {"code": code, "message": message, **details}}


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class ScriptedGateway:
    """Answers by ``METHOD path`` from queues of responses (the last one repeats)."""

    routes: dict[str, list[Any]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, route: str, *answers: Any) -> ScriptedGateway:
        """Queue answers: a dict/list (200 JSON), (status, body), an httpx.Response or an
        exception to raise."""
        self.routes.setdefault(route, []).extend(answers)
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = f"{request.method} {request.url.copy_with(query=None)}".replace(URL, "")
        queue = self.routes.get(route)
        if not queue:
            return httpx.Response(404, json=error_body("route_not_found", route))
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        if isinstance(answer, tuple):
            status, body = answer
            if isinstance(body, bytes):
                return httpx.Response(status, content=body)
            return httpx.Response(status, json=body)
        return httpx.Response(200, json=answer)

    def sent(self, route: str) -> list[httpx.Request]:
        """Requests made to ``METHOD path``."""
        return [
            r for r in self.requests
            if f"{r.method} {r.url.copy_with(query=None)}".replace(URL, "") == route
        ]  # fmt: skip

    def json_of(self, route: str) -> Any:
        """The JSON body of the last request to ``route``."""
        return json.loads(self.sent(route)[-1].content)


@dataclass
class FakeClock:
    """``sleep`` advances ``now`` instead of waiting; every sleep is recorded."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds

    def __call__(self) -> float:
        return self.now
