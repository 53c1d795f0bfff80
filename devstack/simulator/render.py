"""Real, deterministic images for the provider simulator.

Text-to-image draws a gradient, a few shapes and the prompt, all seeded by a hash of the prompt.
An edit starts from the first input image (cover-fitted to the output size) and changes it
visibly; a mask limits the change to the mask's fully transparent pixels. Every picture has
exactly the requested size and is encoded as PNG, JPEG or WebP.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import io
import random
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import httpx
from PIL import Image, ImageDraw, ImageFont, ImageOps

CONTENT_TYPES: Final = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
"""Output format -> Content-Type."""

MAX_INPUT_BYTES: Final = 50 * 1024 * 1024
"""Largest input image or mask the simulator downloads."""

DOWNLOAD_TIMEOUT_S: Final = 30.0

_REPAINT_COLOURS: Final = ((255, 0, 255), (255, 255, 0))
"""Magenta / yellow checkerboard painted where a mask is transparent: never subtle."""

ImageLoader = Callable[[str], bytes]
"""Turns an image reference (http(s) URL or base64 data URL) into the image's bytes."""

_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


class InputImageError(Exception):
    """An input image or mask could not be downloaded or decoded."""


@dataclass(frozen=True)
class RenderSpec:
    """What to draw: size, format and, for an edit, the input images and mask."""

    prompt: str
    width: int
    height: int
    output_format: str = "png"
    quality: int | None = None
    """JPEG/WebP encoder quality 1-100; None picks a sensible default."""
    transparent: bool = False
    """Transparent background (PNG and WebP only)."""
    inputs: tuple[str, ...] = ()
    """Input images (http(s) URLs or base64 data URLs); their presence makes an edit."""
    mask: str | None = None
    """Mask for the first input: its fully transparent pixels are repainted."""
    noise: bool = False
    """Fill the whole frame with seeded random noise (large, incompressible files)."""


def is_image_reference(value: object) -> bool:
    """True for a string that is an http(s) URL or a base64 data URL."""
    if not isinstance(value, str):
        return False
    if value.startswith("data:"):
        header, separator, _ = value.partition(",")
        return bool(separator) and header.endswith(";base64")
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def decode_data_url(reference: str) -> bytes:
    """The bytes of a base64 data URL (`data:<type>;base64,<payload>`)."""
    header, separator, payload = reference.partition(",")
    if not separator or not header.startswith("data:") or not header.endswith(";base64"):
        raise InputImageError("not a base64 data URL")
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputImageError(f"invalid base64 in data URL ({exc})") from exc


class ImageDownloader:
    """Loads images from http(s) URLs (with httpx) or from base64 data URLs."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def __call__(self, reference: str) -> bytes:
        """The bytes behind `reference`; raises InputImageError when they cannot be had."""
        if reference.startswith("data:"):
            return decode_data_url(reference)
        try:
            with self._client.stream(
                "GET", reference, timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=True
            ) as response:
                if response.status_code != 200:
                    raise InputImageError(f"HTTP {response.status_code} from {_short(reference)}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_INPUT_BYTES:
                        raise InputImageError(f"larger than {MAX_INPUT_BYTES} bytes")
                return bytes(body)
        except httpx.HTTPError as exc:
            raise InputImageError(
                f"download from {_short(reference)} failed ({type(exc).__name__}: {exc})"
            ) from exc


def render_image(spec: RenderSpec, load: ImageLoader) -> bytes:
    """Draw the picture `spec` asks for and encode it; raises InputImageError for bad inputs."""
    if spec.noise:
        picture = _noise(spec)
    elif spec.inputs:
        picture = _edit(spec, load)
    else:
        picture = _text_to_image(spec)
    return encode_image(picture, spec.output_format, spec.quality, fast=spec.noise)


def encode_image(
    picture: Image.Image, output_format: str, quality: int | None, fast: bool
) -> bytes:
    """Encode as png, jpeg or webp; `fast` trades file size for encoder speed."""
    buffer = io.BytesIO()
    encoder_quality = max(1, min(95, 90 if quality is None else quality))
    if output_format == "jpeg":
        picture.convert("RGB").save(buffer, "JPEG", quality=encoder_quality)
    elif output_format == "webp":
        picture.save(buffer, "WEBP", quality=encoder_quality, method=0 if fast else 4)
    else:
        picture.save(buffer, "PNG", compress_level=1 if fast else 6)
    return buffer.getvalue()


def _seed(prompt: str) -> int:
    return int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big")


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def _noise(spec: RenderSpec) -> Image.Image:
    rng = random.Random(_seed(spec.prompt))
    size = (spec.width, spec.height)
    return Image.frombytes("RGB", size, rng.randbytes(spec.width * spec.height * 3))


def _text_to_image(spec: RenderSpec) -> Image.Image:
    rng = random.Random(_seed(spec.prompt))
    width, height = spec.width, spec.height
    # Four seeded corner colours stretched over the frame: a smooth gradient in one resize.
    corners = Image.new("RGB", (2, 2))
    corners.putdata([_colour(rng) for _ in range(4)])
    picture = corners.resize((width, height), Image.Resampling.BILINEAR).convert("RGBA")
    if spec.transparent:
        picture.putalpha(0)
    draw = ImageDraw.Draw(picture)
    unit = min(width, height)
    for _ in range(rng.randint(3, 6)):
        x, y = rng.randrange(width), rng.randrange(height)
        radius = rng.randint(unit // 12, unit // 4)
        box = (x - radius, y - radius, x + radius, y + radius)
        fill = (*_colour(rng), 255)
        shape = rng.choice(("ellipse", "rectangle", "triangle"))
        if shape == "ellipse":
            draw.ellipse(box, fill=fill)
        elif shape == "rectangle":
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon(
                [(x, y - radius), (x - radius, y + radius), (x + radius, y + radius)], fill
            )
    _caption(picture, spec.prompt)
    return picture if spec.transparent else picture.convert("RGB")


def _edit(spec: RenderSpec, load: ImageLoader) -> Image.Image:
    size = (spec.width, spec.height)
    mode = "RGBA" if spec.transparent else "RGB"
    inputs = [
        _decode(load, reference, f"input image {n}") for n, reference in enumerate(spec.inputs, 1)
    ]
    base = inputs[0]
    picture = ImageOps.fit(base.convert(mode), size, Image.Resampling.BICUBIC)
    if spec.mask is None:
        # Tint and caption the whole frame: visibly edited, still clearly the input.
        tint = Image.new(mode, size, _colour(random.Random(_seed(spec.prompt))))
        picture = Image.blend(picture, tint, 0.3)
        _caption(picture, spec.prompt)
        _thumbnails(picture, inputs[1:])
        return picture
    mask = _decode(load, spec.mask, "mask").convert("RGBA").getchannel("A")
    # A mask of another size is stretched onto the input first, then cropped like the input.
    mask = mask.resize(base.size, Image.Resampling.NEAREST)
    repaint = ImageOps.fit(mask, size, Image.Resampling.NEAREST).point([255] + [0] * 255)
    box = repaint.getbbox()
    if box is None:  # Nothing transparent in the mask: nothing to repaint.
        return picture
    # New content (pattern, prompt, other inputs) drawn inside the masked area only.
    new_content = _checkerboard(size, max(8, min(size) // 16)).convert(mode).crop(box)
    _caption(new_content, spec.prompt)
    _thumbnails(new_content, inputs[1:])
    picture.paste(new_content, box[:2], repaint.crop(box))
    return picture


def _decode(load: ImageLoader, reference: str, label: str) -> Image.Image:
    try:
        data = load(reference)
    except InputImageError as exc:
        raise InputImageError(f"{label} could not be loaded: {exc}") from exc
    try:
        picture = Image.open(io.BytesIO(data))
        picture.load()
    except Exception as exc:  # Pillow decoders raise many unrelated exception types.
        raise InputImageError(f"{label} is not a decodable image ({exc})") from exc
    return picture


def _checkerboard(size: tuple[int, int], cell: int) -> Image.Image:
    columns, rows = size[0] // cell + 1, size[1] // cell + 1
    small = Image.new("RGB", (columns, rows))
    small.putdata([_REPAINT_COLOURS[(x + y) % 2] for y in range(rows) for x in range(columns)])
    board = small.resize((columns * cell, rows * cell), Image.Resampling.NEAREST)
    return board.crop((0, 0, *size))


def _thumbnails(picture: Image.Image, extra_inputs: list[Image.Image]) -> None:
    """Paste the other input images as a row of thumbnails along the top edge, right first."""
    if not extra_inputs:
        return
    width = picture.width
    margin = max(2, width // 100)
    side = max(8, (width - margin) // max(5, len(extra_inputs)) - margin)
    x = width - margin - side
    for extra in extra_inputs:
        if x < 0:
            break
        thumb = ImageOps.fit(extra.convert(picture.mode), (side, side), Image.Resampling.BICUBIC)
        picture.paste(thumb, (x, margin))
        x -= side + margin


def _caption(picture: Image.Image, prompt: str) -> None:
    """Draw the prompt on a darkened band at the bottom of the picture."""
    width, height = picture.size
    font_size = max(10, min(width, height) // 24)
    chars_per_line = max(8, int(width * 0.9 / (font_size * 0.55)))
    lines = textwrap.wrap(prompt, chars_per_line, max_lines=4, placeholder=" ...") or [" "]
    line_height = int(font_size * 1.3)
    band_height = min(height, line_height * len(lines) + font_size)
    box = (0, height - band_height, width, height)
    band = picture.crop(box)
    dark = Image.new(picture.mode, band.size, (0, 0, 0, 255) if picture.mode == "RGBA" else 0)
    picture.paste(Image.blend(band, dark, 0.55), box[:2])
    draw = ImageDraw.Draw(picture)
    font = _font(font_size)
    y = height - band_height + font_size // 2
    for line in lines:
        draw.text((width // 20, y), line, fill=(255, 255, 255), font=font)
        y += line_height


@functools.lru_cache(maxsize=32)
def _font(size: int) -> _Font:
    return ImageFont.load_default(size=size)


def _short(url: str) -> str:
    """A URL cut to a readable length (presigned URLs are long)."""
    return url if len(url) <= 120 else url[:117] + "..."
