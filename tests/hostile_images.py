"""Hostile images written by hand, for the unit, contract and e2e tests.

The decompression bomb is a real PNG (Pillow would decode it to 1.6 billion pixels): a
hand-written IHDR, one IDAT of zlib-compressed zeros and IEND, never decoded by the tests.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(chunk_type: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return (
        struct.pack(">I", len(data))
        + chunk_type
        + data
        + struct.pack(">I", zlib.crc32(chunk_type + data))
    )


def png_header(width: int, height: int, *, bit_depth: int = 1, colour_type: int = 0) -> bytes:
    """Signature and IHDR (1-bit greyscale by default): a PNG with no image data."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr)


@functools.cache
def png_bomb(width: int = 40_000, height: int = 40_000) -> bytes:
    """A complete 1-bit greyscale PNG of ``width`` x ``height`` black pixels (~190 KB for
    40000x40000): every row is a filter byte and ``width / 8`` bytes of zeros, compressed."""
    raw_size = (1 + (width + 7) // 8) * height
    compressor = zlib.compressobj(9)
    block = bytes(1 << 22)
    parts = []
    while raw_size > 0:
        parts.append(compressor.compress(block[: min(raw_size, len(block))]))
        raw_size -= len(block)
    parts.append(compressor.flush())
    idat = b"".join(parts)
    return png_header(width, height) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def real_png(width: int, height: int, colour: str = "teal") -> bytes:
    """A plain PNG made by Pillow."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def truncated_png(width: int = 64, height: int = 64) -> bytes:
    """A real PNG cut in the middle of its image data (the header is intact)."""
    data = real_png(width, height)
    return data[: len(data) - 20]
