"""InputCheck (the pixel limit and a mask's size, shared by the API and the inbox) and
sniff_head (an image's header from the start of a stream)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from image_gateway.errors import InvalidImage
from image_gateway.images.inputs import DEFAULT_MAX_INPUT_PIXELS, InputCheck
from image_gateway.images.sniff import ImageInfo, sniff_head

from tests.hostile_images import png_bomb, real_png


def png_info(width: int, height: int) -> ImageInfo:
    return ImageInfo("image/png", "png", width, height)


def test_an_image_within_the_pixel_limit_passes() -> None:
    # GIVEN the default limit WHEN a 4096x4096 image is checked THEN it passes (exactly the limit)
    InputCheck(DEFAULT_MAX_INPUT_PIXELS)(png_info(4096, 4096))


def test_an_image_over_the_pixel_limit_is_refused_with_the_limit() -> None:
    # GIVEN the default limit WHEN a 40000x40000 header is checked THEN image_too_many_pixels
    with pytest.raises(InvalidImage) as refused:
        InputCheck(DEFAULT_MAX_INPUT_PIXELS)(png_info(40_000, 40_000))

    assert refused.value.code == "image_too_many_pixels"
    assert refused.value.details == {"limit_pixels": 16_777_216}
    assert "40000x40000 is 1,600,000,000 pixels" in refused.value.message


def test_a_mask_of_its_images_size_passes() -> None:
    InputCheck(DEFAULT_MAX_INPUT_PIXELS, mask_of=(640, 480))(png_info(640, 480))


def test_a_mask_of_another_size_is_refused() -> None:
    # GIVEN a mask check for a 640x480 image WHEN a 480x640 mask is checked THEN mismatch
    with pytest.raises(InvalidImage) as refused:
        InputCheck(DEFAULT_MAX_INPUT_PIXELS, mask_of=(640, 480))(png_info(480, 640))

    assert refused.value.code == "mask_size_mismatch"
    assert "480x640" in refused.value.message and "640x480" in refused.value.message


class CountingStream:
    """Chunks of an object, counting what was read and whether the reader closed it."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self._data, self._chunk = data, chunk
        self.read = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self.read >= len(self._data):
            raise StopIteration
        piece = self._data[self.read : self.read + self._chunk]
        self.read += len(piece)
        return piece

    def close(self) -> None:
        self.closed = True


def test_the_header_of_a_stream_is_read_from_its_first_bytes_only() -> None:
    # GIVEN a 40000x40000 PNG in 1 KiB chunks WHEN its header is sniffed with a 4 KiB budget
    stream = CountingStream(png_bomb(), 1024)

    info = sniff_head(stream, max_bytes=4096)

    # THEN the size comes from the header, 4 KiB were read, and the stream was closed
    assert (info.width, info.height) == (40_000, 40_000)
    assert (stream.read, stream.closed) == (4096, True)


def test_a_short_stream_is_sniffed_whole() -> None:
    stream = CountingStream(real_png(33, 22), 100)

    assert sniff_head(stream) == png_info(33, 22)
    assert stream.closed


def test_a_stream_that_is_not_an_image_is_refused() -> None:
    with pytest.raises(InvalidImage):
        sniff_head(iter([b"<html>not an image</html>"]))
