"""Helpers shared by the provider simulator tests: the key, polling, small test images, a
webhook receiver, and the apimart and mountsea-async calls the provider and fault tests share."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
from PIL import Image

from devstack.simulator import ProviderSimulator

API_KEY = "test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
TIME_SCALE = 0.01
INSTANT = "[sim:latency=0]"
RED, GREEN, BLUE = (255, 0, 0), (0, 160, 0), (0, 0, 255)
APIMART_TERMINAL = {"completed", "failed", "cancelled"}
MOUNTSEA_TERMINAL = {"completed", "failed", "cancelled", "timeout"}

T = TypeVar("T")


def wait_until(condition: Callable[[], T | None], timeout_s: float = 15.0) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.01)
    return value


def png_bytes(picture: Image.Image, image_format: str = "PNG") -> bytes:
    """`picture` encoded as `image_format` (PNG unless told)."""
    buffer = io.BytesIO()
    picture.save(buffer, image_format)
    return buffer.getvalue()


def data_url(picture: Image.Image) -> str:
    """`picture` as a base64 PNG data URL."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode()


def red_left_blue_right(size: int = 256) -> Image.Image:
    picture = Image.new("RGB", (size, size), RED)
    picture.paste(BLUE, (size // 2, 0, size, size))
    return picture


def left_half_mask() -> Image.Image:
    """A 64x64 mask, transparent (to repaint) on its left half, opaque on its right half."""
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 64))
    return mask


def near(pixel: Any, colour: tuple[int, int, int], tolerance: int) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


def b64_image(b64_json: str) -> Image.Image:
    """The image whose bytes `b64_json` carries in base64."""
    return Image.open(io.BytesIO(base64.b64decode(b64_json)))


def inline_image(response: httpx.Response) -> Image.Image:
    """The first image of an OpenAI-style `{"data": [{"b64_json"}]}` 200 answer."""
    assert response.status_code == 200, response.text
    return b64_image(response.json()["data"][0]["b64_json"])


def url_image(http: httpx.Client, url: str) -> Image.Image:
    """The PNG served at `url`, fetched without auth (result files are public)."""
    response = http.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


# ---------------------------------------------------------------- a webhook receiver


class WebhookReceiver:
    """A local HTTP server: records POSTs, serves registered files on GET.

    A POST to a path containing `/flaky/` is answered 500 the first time, 200 afterwards.
    """

    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes, float]] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    first = all(path != self.path for path, _, _ in receiver.posts)
                    receiver.posts.append((self.path, body, time.monotonic()))
                self._answer(500 if first and "/flaky/" in self.path else 200, b"{}", "json")

            def do_GET(self) -> None:
                body, content_type = receiver.files.get(self.path, (b"missing", "text/plain"))
                self._answer(200 if self.path in receiver.files else 404, body, content_type)

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def new_hook(self, kind: str = "hooks") -> str:
        """A fresh webhook base URL (the simulator posts to `<it>/callback`)."""
        return f"{self.url}/{kind}/{uuid.uuid4().hex}"

    def posts_to(self, url: str) -> list[tuple[Any, float]]:
        """(JSON body, arrival time) of every POST received at `url`."""
        path = url.removeprefix(self.url)
        with self._lock:
            return [(json.loads(body), at) for p, body, at in self.posts if p == path]

    def serve(self, path: str, body: bytes, content_type: str = "image/png") -> str:
        """Serve `body` at `path`; returns its URL."""
        self.files[path] = (body, content_type)
        return self.url + path

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---------------------------------------------------------------- apimart and mountsea-async calls


def apimart_create(http: httpx.Client, sim: ProviderSimulator, **fields: Any) -> httpx.Response:
    body = {"model": "gpt-image-2", "prompt": "a red fox in the snow", **fields}
    url = f"{sim.provider_base_url('apimart')}/v1/images/generations"
    return http.post(url, json=body, headers=AUTH)


def apimart_query(http: httpx.Client, sim: ProviderSimulator, task_id: str) -> httpx.Response:
    return http.get(f"{sim.provider_base_url('apimart')}/v1/tasks/{task_id}", headers=AUTH)


def apimart_task_id(http: httpx.Client, sim: ProviderSimulator, **fields: Any) -> str:
    response = apimart_create(http, sim, **fields)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["data"][0]["task_id"]
    return task_id


def apimart_finished(http: httpx.Client, sim: ProviderSimulator, task_id: str) -> dict[str, Any]:
    """The `data` of the task once it is terminal."""

    def terminal() -> dict[str, Any] | None:
        data: dict[str, Any] = apimart_query(http, sim, task_id).json()["data"]
        return data if data["status"] in APIMART_TERMINAL else None

    return wait_until(terminal)


def apimart_image(http: httpx.Client, data: dict[str, Any]) -> Image.Image:
    return url_image(http, data["result"]["images"][0]["url"][0])


def mountsea_create(http: httpx.Client, sim: ProviderSimulator, **fields: Any) -> httpx.Response:
    body = {"prompt": "a lighthouse at dusk", **fields}
    url = f"{sim.provider_base_url('mountsea-async')}/openai/images"
    return http.post(url, json=body, headers=AUTH)


def mountsea_query(http: httpx.Client, sim: ProviderSimulator, task_id: str) -> httpx.Response:
    url = f"{sim.provider_base_url('mountsea-async')}/openai/tasks"
    return http.get(url, params={"taskId": task_id}, headers=AUTH)


def mountsea_task_id(http: httpx.Client, sim: ProviderSimulator, **fields: Any) -> str:
    response = mountsea_create(http, sim, **fields)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["taskId"]
    return task_id


def mountsea_finished(http: httpx.Client, sim: ProviderSimulator, task_id: str) -> dict[str, Any]:
    """The task body once it is terminal."""

    def terminal() -> dict[str, Any] | None:
        body: dict[str, Any] = mountsea_query(http, sim, task_id).json()
        return body if body["status"] in MOUNTSEA_TERMINAL else None

    return wait_until(terminal)


def mountsea_image_bytes(body: dict[str, Any]) -> bytes:
    return base64.b64decode(body["result"]["data"][0]["b64_json"])


def mountsea_image(body: dict[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(mountsea_image_bytes(body)))
