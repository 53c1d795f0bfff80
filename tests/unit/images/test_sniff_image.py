"""sniff_image: recognises real PNG, JPEG and WebP files and refuses everything else."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import pytest
from image_gateway.errors import InvalidImage
from image_gateway.images.sniff import ImageInfo, sniff_image
from PIL import Image

ImageFactory = Callable[..., bytes]
SIZES = [(1, 1), (17, 5), (640, 480), (3840, 2160)]


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_png_gives_type_and_size(make_png: ImageFactory, width: int, height: int) -> None:
    """Given a real PNG, when sniffed, then it is image/png with its size."""
    info = sniff_image(io.BytesIO(make_png(width, height)))

    assert info == ImageInfo("image/png", "png", width, height)


def test_png_with_alpha_and_palette_is_recognised(make_png: ImageFactory) -> None:
    """Given PNGs in RGBA and palette modes, when sniffed, then both are read the same way."""
    infos = {sniff_image(io.BytesIO(make_png(33, 44, mode))) for mode in ("RGBA", "P")}

    assert infos == {ImageInfo("image/png", "png", 33, 44)}


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_baseline_jpeg_gives_type_and_size(
    make_jpeg: ImageFactory, width: int, height: int
) -> None:
    """Given a real baseline JPEG, when sniffed, then it is image/jpeg with its size."""
    info = sniff_image(io.BytesIO(make_jpeg(width, height)))

    assert info == ImageInfo("image/jpeg", "jpg", width, height)


def test_progressive_jpeg_gives_size(make_jpeg: ImageFactory) -> None:
    """Given a progressive JPEG (SOF2), when sniffed, then its size is read."""
    data = make_jpeg(1000, 750, progressive=True)
    assert b"\xff\xc2" in data  # the frame header really is SOF2

    assert sniff_image(io.BytesIO(data)) == ImageInfo("image/jpeg", "jpg", 1000, 750)


def test_jpeg_with_big_exif_before_the_frame_header(make_jpeg: ImageFactory) -> None:
    """Given a JPEG whose 60 KB EXIF segment precedes SOF, when sniffed, then the size is read."""
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription
    data = make_jpeg(321, 123, exif=exif.tobytes())
    assert data.find(b"\xff\xc0") > 60_000

    assert sniff_image(io.BytesIO(data)) == ImageInfo("image/jpeg", "jpg", 321, 123)


def test_jpeg_with_icc_profile_and_fill_bytes(make_jpeg: ImageFactory) -> None:
    """Given a JPEG with APP2 (ICC) segments and 0xFF fill bytes before a marker, then it sniffs."""
    data = make_jpeg(64, 32, icc_profile=b"\x00" * 150_000)
    sof = data.find(b"\xff\xc0")
    padded = data[:sof] + b"\xff\xff\xff" + data[sof:]

    assert sniff_image(io.BytesIO(padded)) == ImageInfo("image/jpeg", "jpg", 64, 32)


@pytest.mark.parametrize(
    ("mode", "options", "chunk"),
    [
        ("RGB", {"quality": 80}, b"VP8 "),
        ("RGB", {"lossless": True}, b"VP8L"),
        ("RGBA", {"quality": 80}, b"VP8X"),
    ],
    ids=["lossy", "lossless", "alpha-extended"],
)
@pytest.mark.parametrize(("width", "height"), [(1, 1), (301, 199), (3840, 2160)])
def test_webp_gives_type_and_size(
    make_webp: ImageFactory,
    mode: str,
    options: dict[str, object],
    chunk: bytes,
    width: int,
    height: int,
) -> None:
    """Given a real WebP (lossy, lossless or extended), when sniffed, then its size is read."""
    data = make_webp(width, height, mode, **options)
    assert data[12:16] == chunk

    assert sniff_image(io.BytesIO(data)) == ImageInfo("image/webp", "webp", width, height)


def test_file_is_rewound_after_sniffing(make_jpeg: ImageFactory) -> None:
    """Given a JPEG file, when sniffed, then the file is positioned at 0 again for the upload."""
    fileobj = io.BytesIO(make_jpeg(10, 10))

    sniff_image(fileobj)

    assert fileobj.tell() == 0


def test_file_is_rewound_after_a_refusal() -> None:
    """Given garbage, when sniffing fails, then the file is still positioned at 0."""
    fileobj = io.BytesIO(b"\xff\xd8\xff\xe0\x00\x10" + b"JFIF" * 3)

    with pytest.raises(InvalidImage):
        sniff_image(fileobj)

    assert fileobj.tell() == 0


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"<html><body>Not found</body></html>", "not a PNG, JPEG or WebP"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00", "not a PNG, JPEG or WebP"),
        (b'{"error": "bad request"}', "not a PNG, JPEG or WebP"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not a PNG, JPEG or WebP"),
    ],
    ids=["empty", "html", "gif", "json", "wav"],
)
def test_non_images_are_refused(data: bytes, reason: str) -> None:
    """Given bytes that are not a supported image, when sniffed, then InvalidImage says why."""
    with pytest.raises(InvalidImage, match=reason):
        sniff_image(io.BytesIO(data))


@pytest.mark.parametrize("cut", [4, 10, 23])
def test_truncated_png_is_refused(make_png: ImageFactory, cut: int) -> None:
    """Given a PNG cut inside its header, when sniffed, then InvalidImage says truncated."""
    with pytest.raises(InvalidImage, match="truncated PNG"):
        sniff_image(io.BytesIO(make_png(8, 8)[:cut]))


def test_jpeg_truncated_before_its_frame_header_is_refused(make_jpeg: ImageFactory) -> None:
    """Given a JPEG cut inside its EXIF segment, when sniffed, then InvalidImage says truncated."""
    exif = Image.Exif()
    exif[0x010E] = "x" * 10_000
    data = make_jpeg(8, 8, exif=exif.tobytes())

    with pytest.raises(InvalidImage, match="truncated JPEG"):
        sniff_image(io.BytesIO(data[:5_000]))


def test_jpeg_without_frame_header_is_refused() -> None:
    """Given SOI then EOI (no frame), when sniffed, then InvalidImage says there is no frame."""
    with pytest.raises(InvalidImage, match="ends before its frame header"):
        sniff_image(io.BytesIO(b"\xff\xd8\xff\xd9"))


@pytest.mark.parametrize("cut", [16, 22, 27])
def test_truncated_webp_is_refused(make_webp: ImageFactory, cut: int) -> None:
    """Given a WebP cut inside its first chunk header, when sniffed, then InvalidImage."""
    with pytest.raises(InvalidImage, match="truncated WebP"):
        sniff_image(io.BytesIO(make_webp(8, 8)[:cut]))


def test_png_declaring_zero_width_is_refused() -> None:
    """Given a PNG whose IHDR declares 0x10, when sniffed, then InvalidImage says zero size."""
    ihdr = struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + b"IHDR"
        + ihdr
        + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    )

    with pytest.raises(InvalidImage, match="zero size"):
        sniff_image(io.BytesIO(data))


def test_jpeg_declaring_zero_height_is_refused(make_jpeg: ImageFactory) -> None:
    """Given a JPEG whose SOF declares height 0, when sniffed, then InvalidImage says zero size."""
    data = bytearray(make_jpeg(16, 16))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 7] = b"\x00\x00"  # marker(2) length(2) precision(1), then height

    with pytest.raises(InvalidImage, match="zero size"):
        sniff_image(io.BytesIO(bytes(data)))
