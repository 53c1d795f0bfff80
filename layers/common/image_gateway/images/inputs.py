"""Input images: what every image a caller hands the gateway must be, beyond a complete PNG, JPEG
or WebP (which every stored image is, see :mod:`image_gateway.images.structure`).

One check for both entry points, the API (``service/staging.py``) and the S3 inbox
(``service/upload_edit.py``), with the same codes: ``image_too_many_pixels`` over the pixel
limit, ``mask_size_mismatch`` for a mask of another size than the image it masks. Both read
header dimensions only: a 40000x40000 PNG (a decompression bomb of a few hundred kilobytes) is
refused without decoding a pixel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from image_gateway.errors import InvalidImage
from image_gateway.images.sniff import ImageInfo

ImageCheck = Callable[[ImageInfo], None]
"""Called with an image's header before it is stored; what it raises refuses the image."""

DEFAULT_MAX_INPUT_PIXELS = 4096 * 4096
"""16,777,216: the API's limit and the inbox's default (``InboxMaxPixels``)."""
DEFAULT_MAX_IMAGE_BYTES = 50 * 1024 * 1024
"""The input image limit of a stack that does not set another (``Settings.max_image_bytes``)."""


@dataclass(frozen=True)
class InputCheck:
    """The pixel limit of an input image, and for a mask the size of the image it masks.

    Use it as the ``check`` of :meth:`ImageRepository.store` (refused before anything is
    written) or call it with the header of an image stored earlier. Messages do not name the
    image: callers put its name in front (``images[1]: ...``, ``products/shoe.png: ...``).
    """

    max_pixels: int
    mask_of: tuple[int, int] | None = None
    """For a mask: the width and height of the image it masks (None: not a mask, or unknown)."""

    def __call__(self, info: ImageInfo) -> None:
        """Raise :class:`InvalidImage` (``image_too_many_pixels``, ``mask_size_mismatch``)."""
        pixels = info.width * info.height
        if pixels > self.max_pixels:
            raise InvalidImage(
                f"{info.width}x{info.height} is {pixels:,} pixels; the limit is "
                f"{self.max_pixels:,} pixels",
                code="image_too_many_pixels",
                limit_pixels=self.max_pixels,
            )
        if self.mask_of is not None and (info.width, info.height) != self.mask_of:
            width, height = self.mask_of
            raise InvalidImage(
                f"the mask is {info.width}x{info.height} but the image it masks is "
                f"{width}x{height}: they must be the same size",
                code="mask_size_mismatch",
            )
