"""Helpers shared by the provider simulator tests: the key, polling, and small test images."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from PIL import Image

API_KEY = "test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
TIME_SCALE = 0.01
INSTANT = "[sim:latency=0]"
RED, GREEN, BLUE = (255, 0, 0), (0, 160, 0), (0, 0, 255)

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
