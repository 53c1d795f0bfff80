"""Is an image complete? A walk over its container structure, never a decode.

:func:`~image_gateway.images.sniff.sniff_image` reads the header; this module checks that the
rest of the file is there, by reading only structure (chunk and segment headers, and for JPEG
the markers between scans) and seeking over the data:

- PNG: after the signature, chunk lengths walk from IHDR to an IEND that ends the file, with at
  least one IDAT on the way.
- JPEG: segments walk from SOI through every scan to EOI (bytes after EOI are tolerated: phone
  cameras append motion-photo trailers there).
- WebP: the RIFF size covers exactly the file.

Header-only, truncated and half-written files fail here with :class:`InvalidImage`, so nothing
incomplete is stored or sent on. Nothing is decompressed: a 40000x40000 PNG of a few hundred
kilobytes costs the same few reads as any other (its pixel count is the caller's check).
"""

from __future__ import annotations

import re
import struct
from typing import IO

from image_gateway.errors import InvalidImage
from image_gateway.images.sniff import ImageInfo

# A real PNG has a handful of chunks (encoders split IDAT in 8-64 KiB pieces); this bounds work.
_PNG_MAX_CHUNKS = 100_000
_PNG_MAX_CHUNK_LENGTH = 0x7FFFFFFF  # the PNG spec's limit (2^31 - 1)
_JPEG_MAX_SEGMENTS = 100_000
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-RST7: no length field
_SOS, _EOI = 0xDA, 0xD9
# Inside scan data 0xFF is followed by 0x00 (a stuffed byte) or RSTn; anything else is a marker.
_SCAN_MARKER = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")
_SCAN_READ = 1 << 16


def check_complete(fileobj: IO[bytes], info: ImageInfo, size: int) -> None:
    """Check that the ``size``-byte image in a seekable file is complete (left at position 0).

    Raises:
        InvalidImage: the structure ends early, is damaged, or (PNG) has no image data.
    """
    try:
        if info.content_type == "image/png":
            _check_png(fileobj, size)
        elif info.content_type == "image/jpeg":
            _check_jpeg(fileobj, size)
        else:
            _check_webp(fileobj, size)
    finally:
        fileobj.seek(0)


def _check_png(fileobj: IO[bytes], size: int) -> None:
    fileobj.seek(8)  # after the signature (sniffing checked it, and that IHDR comes first)
    has_data = False
    for _ in range(_PNG_MAX_CHUNKS):
        header = fileobj.read(8)
        if len(header) < 8:
            raise InvalidImage("truncated PNG: the file ends before its IEND chunk")
        length, chunk_type = struct.unpack(">I4s", header)
        if length > _PNG_MAX_CHUNK_LENGTH or not chunk_type.isalpha():
            raise InvalidImage("damaged PNG: a chunk header is not valid")
        end = fileobj.tell() + length + 4  # data, then the CRC
        if end > size:
            name = chunk_type.decode("ascii")
            raise InvalidImage(f"truncated PNG: the file ends inside its {name} chunk")
        has_data = has_data or chunk_type == b"IDAT"
        if chunk_type == b"IEND":
            if not has_data:
                raise InvalidImage("PNG has no image data (no IDAT chunk)")
            if end != size:
                raise InvalidImage(f"PNG has {size - end} bytes after its IEND chunk")
            return
        fileobj.seek(end)
    raise InvalidImage(f"PNG has more than {_PNG_MAX_CHUNKS} chunks")


def _check_jpeg(fileobj: IO[bytes], size: int) -> None:
    fileobj.seek(2)  # after SOI
    marker = _read_marker(fileobj)
    scanned = False
    for _ in range(_JPEG_MAX_SEGMENTS):
        if marker == _EOI:
            if not scanned:
                raise InvalidImage("JPEG ends before its image data (EOI before any scan)")
            return
        if marker in _JPEG_STANDALONE:
            marker = _read_marker(fileobj)
            continue
        length_bytes = fileobj.read(2)
        if len(length_bytes) < 2:
            raise InvalidImage("truncated JPEG: the file ends inside a segment header")
        (length,) = struct.unpack(">H", length_bytes)
        end = fileobj.tell() + length - 2
        if length < 2:
            raise InvalidImage(f"damaged JPEG: a segment declares a length of {length}")
        if end > size:
            raise InvalidImage("truncated JPEG: the file ends inside a segment")
        fileobj.seek(end)
        if marker == _SOS:
            scanned = True
            marker = _marker_after_scan(fileobj)
        else:
            marker = _read_marker(fileobj)
    raise InvalidImage(f"JPEG has more than {_JPEG_MAX_SEGMENTS} segments")


def _read_marker(fileobj: IO[bytes]) -> int:
    """The next marker's code (fill bytes 0xFF skipped); the file must be at a marker."""
    first = fileobj.read(1)
    if not first:
        raise InvalidImage("truncated JPEG: the file ends before its EOI marker")
    if first != b"\xff":
        raise InvalidImage("damaged JPEG: expected a marker between segments")
    while True:
        code = fileobj.read(1)
        if not code:
            raise InvalidImage("truncated JPEG: the file ends inside a marker")
        if code != b"\xff":
            return code[0]


def _marker_after_scan(fileobj: IO[bytes]) -> int:
    """Skip entropy-coded data (chunk by chunk, by regex) to the next real marker's code."""
    carry = b""
    while True:
        start = fileobj.tell() - len(carry)
        block = carry + fileobj.read(_SCAN_READ)
        found = _SCAN_MARKER.search(block)
        if found is not None:
            fileobj.seek(start + found.end())  # just after the marker's code
            return found.group(1)[0]
        if len(block) == len(carry):
            raise InvalidImage("truncated JPEG: the file ends inside its image data")
        # A marker may straddle two reads: keep the trailing 0xFF bytes for the next search.
        carry = block[len(block.rstrip(b"\xff")) :]


def _check_webp(fileobj: IO[bytes], size: int) -> None:
    fileobj.seek(4)
    (riff_size,) = struct.unpack("<I", fileobj.read(4))  # sniffing read the first 32 bytes
    if riff_size + 8 > size:
        raise InvalidImage(f"truncated WebP: {riff_size + 8 - size} of its bytes are missing")
    if riff_size + 8 < size:
        raise InvalidImage(f"WebP has {size - riff_size - 8} bytes after its RIFF container")
