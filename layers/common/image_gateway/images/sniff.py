"""Recognise PNG, JPEG and WebP images and read their dimensions from the header alone.

Only the first bytes (or, for JPEG, the segment headers up to the frame header) are read, so
sniffing a 25 MB image costs a few reads, never the whole file in memory.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Literal

from image_gateway.errors import InvalidImage

ContentType = Literal["image/png", "image/jpeg", "image/webp"]
Extension = Literal["png", "jpg", "webp"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# SOFn markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_JPEG_SOF_MARKERS = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
# Markers that stand alone, without a length field: TEM and RST0-RST7.
_JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})
# A real JPEG has a handful of segments before its frame header; this bounds work on garbage.
_JPEG_MAX_SEGMENTS = 4096
# Enough for any header: JPEG metadata (EXIF, ICC, XMP) before the frame header is at most a
# few 64 KiB segments.
HEAD_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the header of an image says: its type and its size in pixels."""

    content_type: ContentType
    extension: Extension
    width: int
    height: int


def sniff_image(fileobj: IO[bytes]) -> ImageInfo:
    """Identify the PNG, JPEG or WebP image in a seekable binary file and read its dimensions.

    The file is read from its start and left positioned at 0 again, whatever the outcome.

    Raises:
        InvalidImage: the bytes are empty, not one of the three formats, truncated before the
            dimensions, or declare a zero width or height.
    """
    try:
        fileobj.seek(0)
        head = fileobj.read(32)
        if not head:
            raise InvalidImage("image is empty")
        if head.startswith(_PNG_SIGNATURE[:4]):
            info = _sniff_png(head)
        elif head.startswith(b"\xff\xd8"):
            info = _sniff_jpeg(fileobj)
        elif head.startswith(b"RIFF") and head[8:12] == b"WEBP":
            info = _sniff_webp(head)
        else:
            raise InvalidImage("not a PNG, JPEG or WebP image (unrecognised signature)")
    finally:
        fileobj.seek(0)
    if info.width <= 0 or info.height <= 0:
        raise InvalidImage(
            f"{info.extension.upper()} image declares a zero size ({info.width}x{info.height})"
        )
    return info


def sniff_head(chunks: Iterator[bytes], *, max_bytes: int = HEAD_BYTES) -> ImageInfo:
    """Sniff an image from the start of a stream, reading at most about ``max_bytes``.

    The stream is closed once enough was read (an S3 download stops there).

    Raises:
        InvalidImage: as :func:`sniff_image`, on the bytes read.
    """
    head = io.BytesIO()
    try:
        for chunk in chunks:
            head.write(chunk)
            if head.tell() >= max_bytes:
                break
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return sniff_image(head)


def _sniff_png(head: bytes) -> ImageInfo:
    # Signature (8), then the first chunk must be IHDR: length 13, type, width, height.
    if len(head) < 24:
        raise InvalidImage("truncated PNG header")
    if not head.startswith(_PNG_SIGNATURE):
        raise InvalidImage("not a PNG image (damaged signature)")
    length, chunk_type, width, height = struct.unpack(">I4sII", head[8:24])
    if chunk_type != b"IHDR" or length != 13:
        raise InvalidImage("PNG image does not start with an IHDR chunk")
    return ImageInfo("image/png", "png", width, height)


def _sniff_jpeg(fileobj: IO[bytes]) -> ImageInfo:
    fileobj.seek(2)  # after SOI
    for _ in range(_JPEG_MAX_SEGMENTS):
        marker = _next_jpeg_marker(fileobj)
        if marker in _JPEG_STANDALONE_MARKERS:
            continue
        if marker == 0xD9:
            raise InvalidImage("JPEG image ends before its frame header")
        if marker == 0xDA:
            raise InvalidImage("JPEG image has scan data before its frame header")
        length_bytes = fileobj.read(2)
        if len(length_bytes) < 2:
            raise InvalidImage("truncated JPEG header (segment length)")
        (length,) = struct.unpack(">H", length_bytes)
        if length < 2:
            raise InvalidImage(f"JPEG segment FF{marker:02X} has an invalid length {length}")
        if marker in _JPEG_SOF_MARKERS:
            frame = fileobj.read(5)
            if len(frame) < 5 or length < 7:
                raise InvalidImage("truncated JPEG frame header")
            _precision, height, width = struct.unpack(">BHH", frame)
            return ImageInfo("image/jpeg", "jpg", width, height)
        fileobj.seek(length - 2, os.SEEK_CUR)
    raise InvalidImage(f"JPEG image has no frame header in its first {_JPEG_MAX_SEGMENTS} segments")


def _next_jpeg_marker(fileobj: IO[bytes]) -> int:
    first = fileobj.read(1)
    if not first:
        raise InvalidImage("truncated JPEG header (no frame header before the end)")
    if first != b"\xff":
        raise InvalidImage("damaged JPEG header (expected a segment marker)")
    while True:  # any number of 0xFF fill bytes may precede the marker code
        code = fileobj.read(1)
        if not code:
            raise InvalidImage("truncated JPEG header (marker)")
        if code != b"\xff":
            if code == b"\x00":
                raise InvalidImage("damaged JPEG header (stuffed byte outside scan data)")
            return code[0]


def _sniff_webp(head: bytes) -> ImageInfo:
    # RIFF(4) size(4) WEBP(4), then the first chunk: fourcc(4) size(4) payload.
    fourcc = head[12:16]
    payload = head[20:]
    needed = {b"VP8 ": 10, b"VP8L": 5, b"VP8X": 10}.get(fourcc, 0)
    if len(head) < 20 or len(payload) < needed:
        raise InvalidImage("truncated WebP header")
    if fourcc == b"VP8 ":
        # Lossy: 3-byte frame tag (bit 0 clear on a key frame), start code, 14-bit sizes.
        if payload[0] & 1 or payload[3:6] != b"\x9d\x01\x2a":
            raise InvalidImage("WebP VP8 bitstream does not start with a key frame")
        width, height = struct.unpack("<HH", payload[6:10])
        return ImageInfo("image/webp", "webp", width & 0x3FFF, height & 0x3FFF)
    if fourcc == b"VP8L":
        # Lossless: signature 0x2F, then 14 bits width-1 and 14 bits height-1, little-endian.
        if payload[0] != 0x2F:
            raise InvalidImage("WebP VP8L bitstream has a bad signature")
        (bits,) = struct.unpack("<I", payload[1:5])
        return ImageInfo("image/webp", "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if fourcc == b"VP8X":
        # Extended: flags(1) reserved(3) canvas width-1 (24 bits) canvas height-1 (24 bits).
        width = int.from_bytes(payload[4:7], "little") + 1
        height = int.from_bytes(payload[7:10], "little") + 1
        return ImageInfo("image/webp", "webp", width, height)
    raise InvalidImage(f"WebP image has an unknown first chunk {fourcc!r}")
