"""Images on their way into storage: spooled in bounded memory, counted, hashed and sniffed.

:func:`spooled_image` is what every image repository (the S3 adapter and the in-memory fake)
does before it keeps anything, so both refuse the same bytes the same way.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from image_gateway.errors import PayloadTooLarge
from image_gateway.images.inputs import ImageCheck
from image_gateway.images.sniff import ImageInfo, sniff_image
from image_gateway.images.structure import check_complete

# Spool small images in memory and larger ones in /tmp (the only writable path on Lambda).
_SPOOL_MEMORY = 1 << 20


@dataclass(frozen=True, slots=True)
class StoredImage:
    """An image in storage, with what we learnt about it on the way in."""

    bucket: str
    key: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class SpooledImage:
    """A checked image waiting in a temporary file (positioned at its start)."""

    file: IO[bytes]
    size_bytes: int
    sha256: str
    info: ImageInfo


@contextmanager
def spooled_image(
    chunks: Iterable[bytes], *, max_bytes: int, check: ImageCheck | None = None
) -> Iterator[SpooledImage]:
    """Spool ``chunks`` (memory up to 1 MiB, then /tmp), hash them and read the image header.

    Raises:
        PayloadTooLarge: more than ``max_bytes`` bytes (reading stops there).
        InvalidImage: the bytes are not a complete PNG, JPEG or WebP image, or ``check``
            (called with the header) refused it.
    """
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY) as spool:
        digest = hashlib.sha256()
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(
                    f"image is larger than the {max_bytes}-byte limit", limit_bytes=max_bytes
                )
            digest.update(chunk)
            spool.write(chunk)
        spool.seek(0)
        info = sniff_image(spool)  # leaves the file at 0
        check_complete(spool, info, size)  # so does this
        if check is not None:
            check(info)
        yield SpooledImage(file=spool, size_bytes=size, sha256=digest.hexdigest(), info=info)
