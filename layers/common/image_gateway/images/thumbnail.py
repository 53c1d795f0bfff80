"""Small JPEG previews of finished images, for the console's gallery.

Pillow is imported when the first thumbnail is made, never when a function starts: the
thumbnail function (``service.thumbnails``) makes one for each succeeded task, from its event.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable
from typing import TYPE_CHECKING

THUMBNAIL_EDGE = 320
"""A thumbnail's longest side, in pixels (the console's gallery shows them)."""
THUMBNAIL_QUALITY = 80
"""JPEG quality of a thumbnail (a 320 px preview is about 10-20 kB)."""
_SPOOL_BYTES = 4 * 1024 * 1024

if TYPE_CHECKING:
    from PIL import Image


def thumbnail_stem(output_key: str) -> str:
    """Where the thumbnail of the output at ``output_key`` goes: next to it, ``.thumb`` added
    to its name (the store adds ``.jpg``)."""
    return f"{output_key.rsplit('.', 1)[0]}.thumb"


def make_thumbnail(chunks: Iterable[bytes], edge: int = THUMBNAIL_EDGE) -> bytes:
    """A JPEG of the image in ``chunks`` whose longest side is at most ``edge`` pixels.

    The source is spooled to disk past a few MiB, so memory holds the decoded image only.
    Raises ``OSError`` (Pillow's ``UnidentifiedImageError`` included) for bytes it cannot read.
    """
    from PIL import Image  # here, not at import: only finalisers that made an image pay for it

    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as source:
        for chunk in chunks:
            source.write(chunk)
        source.seek(0)
        with Image.open(source) as image:
            image.draft("RGB", (edge, edge))  # JPEG decodes at a reduced scale, others ignore it
            image.thumbnail((edge, edge), reducing_gap=2.0)
            preview = _flatten(image)
    out = io.BytesIO()
    preview.save(out, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return out.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """RGB on white: JPEG has no alpha, and a transparent background reads as white."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")
