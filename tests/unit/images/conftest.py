"""Real images, made with Pillow in the test process (the package itself never uses Pillow)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import pytest
from PIL import Image

ImageFactory = Callable[..., bytes]


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    """Encode a Pillow image to bytes in the given format."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture
def make_png() -> ImageFactory:
    """PNG bytes of a plain image of the given size."""

    def factory(width: int, height: int, mode: str = "RGB") -> bytes:
        return encode(Image.new(mode, (width, height), "teal"), "PNG")

    return factory


@pytest.fixture
def make_jpeg() -> ImageFactory:
    """JPEG bytes of a plain image of the given size (Pillow options pass through)."""

    def factory(width: int, height: int, **options: object) -> bytes:
        return encode(Image.new("RGB", (width, height), "orange"), "JPEG", **options)

    return factory


@pytest.fixture
def make_webp() -> ImageFactory:
    """WebP bytes of a plain image of the given size and mode (Pillow options pass through)."""

    def factory(width: int, height: int, mode: str = "RGB", **options: object) -> bytes:
        color = (10, 20, 30, 128)[: len(mode)]
        return encode(Image.new(mode, (width, height), color), "WEBP", **options)

    return factory


@pytest.fixture
def pad_png() -> Callable[[bytes, int], bytes]:
    """Grow a PNG to about a given size with a private ancillary chunk.

    Decoders skip unknown ancillary chunks, so the result is still a valid image; this is
    how the tests get a 20 MB PNG in milliseconds.
    """
    return padded_png


def padded_png(png: bytes, total_size: int) -> bytes:
    """The same PNG grown to about ``total_size`` bytes by a private ancillary chunk."""
    padding = max(total_size - len(png) - 12, 0)
    chunk_type = b"gaTe"  # ancillary, private, safe-to-copy
    payload = bytes(padding)
    chunk = (
        struct.pack(">I", len(payload))
        + chunk_type
        + payload
        + struct.pack(">I", zlib.crc32(chunk_type + payload))
    )
    after_ihdr = 8 + 25  # signature, then IHDR: length, type, 13 bytes, CRC
    return png[:after_ihdr] + chunk + png[after_ihdr:]
