"""check_complete: a complete PNG, JPEG or WebP passes; header-only, truncated or damaged files
are refused, by walking their structure and never decoding them."""

from __future__ import annotations

import io
import random
import struct
import time
from collections.abc import Callable

import pytest
from image_gateway.errors import InvalidImage
from image_gateway.images.sniff import sniff_image
from image_gateway.images.structure import check_complete
from PIL import Image

from tests.hostile_images import png_bomb, png_chunk, png_header
from tests.unit.images.conftest import encode

ImageFactory = Callable[..., bytes]


def check(data: bytes) -> None:
    """Sniff, then check completeness, as every image store does."""
    fileobj = io.BytesIO(data)
    check_complete(fileobj, sniff_image(fileobj), len(data))


@pytest.fixture(scope="module")
def noise() -> Image.Image:
    """A noisy picture: JPEG scans full of 0xFF bytes, PNGs of several IDAT chunks."""
    rnd = random.Random(7)
    return Image.frombytes("RGB", (320, 200), rnd.randbytes(320 * 200 * 3))


JPEG_VARIANTS = {
    "baseline": {},
    "progressive": {"progressive": True},
    "optimized": {"optimize": True},
    "restart-markers": {"restart_marker_blocks": 1},
    "cmyk": {"cmyk": True},
}
FORMATS = {"png": ("PNG", {}), "webp": ("WEBP", {}), "webp-lossless": ("WEBP", {"lossless": True})}


def jpeg(picture: Image.Image, variant: str) -> bytes:
    options = dict(JPEG_VARIANTS[variant])
    if options.pop("cmyk", False):
        picture = picture.convert("CMYK")
    return encode(picture, "JPEG", **options)


# -- complete files pass ---------------------------------------------------------------------
@pytest.mark.parametrize("variant", sorted(JPEG_VARIANTS))
def test_a_complete_jpeg_passes(noise: Image.Image, variant: str) -> None:
    # GIVEN a JPEG as Pillow writes it WHEN checked THEN it is complete
    check(jpeg(noise, variant))


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_a_complete_png_or_webp_passes(noise: Image.Image, name: str) -> None:
    image_format, options = FORMATS[name]
    check(encode(noise, image_format, **options))


def test_a_jpeg_with_a_trailer_after_its_eoi_passes(noise: Image.Image) -> None:
    # GIVEN a JPEG followed by bytes (what phone cameras append: motion photos)
    # WHEN checked THEN it passes: the image itself is complete
    check(jpeg(noise, "baseline") + b"MotionPhoto_Data" * 1000)


def test_a_jpeg_whose_exif_thumbnail_has_its_own_eoi_is_still_walked_to_the_end(
    noise: Image.Image,
) -> None:
    # GIVEN a JPEG with an embedded thumbnail JPEG in APP1 (an EOI before the real scan)
    thumb = jpeg(noise.resize((32, 20)), "baseline")
    app1 = b"\xff\xe1" + struct.pack(">H", len(thumb) + 8) + b"Exif\0\0" + thumb
    data = jpeg(noise, "baseline")
    with_thumb = data[:2] + app1 + data[2:]
    # WHEN the main image is truncated THEN it is refused (the thumbnail's EOI does not count)
    check(with_thumb)
    with pytest.raises(InvalidImage, match="truncated JPEG"):
        check(with_thumb[:-100])


def test_a_forty_thousand_pixel_square_png_bomb_is_complete_and_checked_at_once() -> None:
    # GIVEN a real 40000x40000 PNG of ~190 KB (1.6 billion pixels once decoded)
    bomb = png_bomb()
    # WHEN checked THEN it is a complete PNG, found so without decoding (a few reads)
    started = time.perf_counter()
    check(bomb)
    assert time.perf_counter() - started < 0.5
    assert len(bomb) < 200_000


# -- incomplete files are refused ------------------------------------------------------------
@pytest.mark.parametrize("variant", sorted(JPEG_VARIANTS))
@pytest.mark.parametrize("keep", [0.99, 0.5, 0.1])
def test_a_truncated_jpeg_is_refused(noise: Image.Image, variant: str, keep: float) -> None:
    # GIVEN a JPEG cut short (its frame header intact) WHEN checked THEN invalid
    data = jpeg(noise, variant)
    cut = max(int(len(data) * keep), data.find(b"\xff\xda") + 20)
    with pytest.raises(InvalidImage, match="JPEG"):
        check(data[:cut])


def test_a_jpeg_cut_just_before_its_eoi_is_refused(noise: Image.Image) -> None:
    data = jpeg(noise, "baseline")
    with pytest.raises(InvalidImage, match="ends inside its image data"):
        check(data[:-2])


def test_a_jpeg_with_no_scan_is_refused(noise: Image.Image) -> None:
    # GIVEN the header segments of a JPEG then EOI (no image data) WHEN checked THEN invalid
    data = jpeg(noise, "baseline")
    with pytest.raises(InvalidImage, match="before its image data"):
        check(data[: data.find(b"\xff\xda")] + b"\xff\xd9")


def _after_frame_header(data: bytes) -> int:
    """Offset of the marker that follows the JPEG's SOF0 segment."""
    sof = data.find(b"\xff\xc0")
    (length,) = struct.unpack(">H", data[sof + 2 : sof + 4])
    return sof + 2 + length


JPEG_DAMAGE = {
    # name: (how the bytes after the frame header change, what the refusal says)
    "cut-between-segments": (lambda d, at: d[:at], "ends before its EOI"),
    "cut-inside-a-marker": (lambda d, at: d[:at] + b"\xff\xff", "ends inside a marker"),
    "cut-inside-a-length": (lambda d, at: d[: at + 3], "ends inside a segment header"),
    "cut-inside-a-segment": (lambda d, at: d[: at + 6], "ends inside a segment"),
    "no-marker": (lambda d, at: d[:at] + b"\x00" + d[at + 1 :], "expected a marker"),
    "length-below-2": (lambda d, at: d[: at + 2] + b"\x00\x01" + d[at + 4 :], "length of 1"),
}


@pytest.mark.parametrize("name", sorted(JPEG_DAMAGE))
def test_a_jpeg_damaged_between_its_segments_is_refused(noise: Image.Image, name: str) -> None:
    # GIVEN a JPEG changed after its frame header (see JPEG_DAMAGE) WHEN checked THEN invalid
    damage, says = JPEG_DAMAGE[name]
    data = jpeg(noise, "baseline")

    with pytest.raises(InvalidImage, match=says):
        check(damage(data, _after_frame_header(data)))


def test_a_standalone_marker_between_segments_is_stepped_over(noise: Image.Image) -> None:
    # GIVEN a TEM marker (no length field) between two segments WHEN checked THEN complete
    data = jpeg(noise, "baseline")
    at = _after_frame_header(data)

    check(data[:at] + b"\xff\x01" + data[at:])


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("missing", [1, 100, 1000])
def test_a_truncated_png_or_webp_is_refused(noise: Image.Image, name: str, missing: int) -> None:
    image_format, options = FORMATS[name]
    data = encode(noise, image_format, **options)
    with pytest.raises(InvalidImage, match="truncated"):
        check(data[:-missing])


def test_a_header_only_png_is_refused() -> None:
    # GIVEN a signature and an IHDR, nothing else WHEN checked THEN invalid, saying why
    with pytest.raises(InvalidImage, match="ends before its IEND"):
        check(png_header(40_000, 40_000))


def test_a_png_without_image_data_is_refused() -> None:
    # GIVEN IHDR then IEND, no IDAT WHEN checked THEN invalid
    with pytest.raises(InvalidImage, match="no IDAT"):
        check(png_header(64, 64) + png_chunk(b"IEND", b""))


def test_a_png_with_bytes_after_its_iend_is_refused(noise: Image.Image) -> None:
    with pytest.raises(InvalidImage, match="after its IEND"):
        check(encode(noise, "PNG") + b"\0\0\0\0")


def test_a_png_with_a_damaged_chunk_header_is_refused() -> None:
    # GIVEN a chunk whose type is not four letters (bytes of garbage) WHEN checked THEN invalid
    garbage = png_header(8, 8) + struct.pack(">I", 4) + b"\x00\x01\x02\x03" + bytes(8)
    with pytest.raises(InvalidImage, match="damaged PNG"):
        check(garbage)


def test_a_webp_with_bytes_after_its_container_is_refused(noise: Image.Image) -> None:
    with pytest.raises(InvalidImage, match="after its RIFF container"):
        check(encode(noise, "WEBP") + b"\0\0")


def test_the_file_is_left_at_its_start_whatever_the_outcome(noise: Image.Image) -> None:
    # GIVEN a truncated PNG WHEN checked THEN the file is back at 0 for the upload that follows
    data = encode(noise, "PNG")[:-5]
    fileobj = io.BytesIO(data)
    with pytest.raises(InvalidImage):
        check_complete(fileobj, sniff_image(fileobj), len(data))
    assert fileobj.tell() == 0
