"""Size mapping: the canonical size (``auto``, ``WxH``, or aspect ratio + 1K/2K/4K) in pixels,
and the one documented rule for "nearest".

Canonical meaning of ``aspect_ratio`` + ``resolution`` (used to compare it with fixed sizes):
the long edge is 1536 px at 1K (1024 for 1:1, as the providers' 1K square is 1024x1024),
2048 at 2K and 3840 at 4K; the short edge follows the ratio, rounded to a multiple of 16; an
image over 8,294,400 pixels (3840x2160) is scaled down to fit (so 1:1 at 4K is 2880x2880).

**Nearest rule** (``size_policy="nearest"``): among the sizes a provider makes, the one whose
aspect ratio is closest to the requested one (distance of the logarithms, so 2:1 and 1:2 are
equally far from 1:1); among equally close ratios, the one whose pixel count is closest (again
by logarithm). Providers that take arbitrary sizes (apimodels) fit the requested size to their
rules instead, see :func:`fit_to_rules`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from image_gateway.models.request import ImageRequest

TIER_LONG_EDGE = {"1K": 1536, "2K": 2048, "4K": 3840}
SQUARE_1K = 1024
MAX_PIXELS = 8_294_400
MIN_PIXELS = 655_360
MAX_LONG_EDGE = 3840
MAX_RATIO = 3.0
STEP = 16


def ratio_parts(aspect_ratio: str) -> tuple[int, int]:
    """``"16:9"`` -> (16, 9)."""
    width, height = aspect_ratio.split(":")
    return int(width), int(height)


def requested_label(request: ImageRequest) -> str:
    """The canonical size asked for: ``auto``, ``WxH`` or ``ratio@tier``."""
    if request.aspect_ratio is not None:
        return f"{request.aspect_ratio}@{request.tier()}"
    return request.size


def ratio_dimensions(aspect_ratio: str, tier: str) -> tuple[int, int]:
    """The canonical pixels of ``aspect_ratio`` at ``tier`` (see the module docstring)."""
    rw, rh = ratio_parts(aspect_ratio)
    long_edge = SQUARE_1K if (rw == rh and tier == "1K") else TIER_LONG_EDGE[tier]
    short_edge = max(STEP, round(long_edge * min(rw, rh) / max(rw, rh) / STEP) * STEP)
    width, height = (long_edge, short_edge) if rw >= rh else (short_edge, long_edge)
    if width * height > MAX_PIXELS:
        scale = math.sqrt(MAX_PIXELS / (width * height))
        width = int(width * scale) // STEP * STEP
        height = int(height * scale) // STEP * STEP
    return width, height


def target_dimensions(request: ImageRequest) -> tuple[int, int] | None:
    """The pixels the caller asked for; None for ``auto``."""
    if request.aspect_ratio is not None:
        return ratio_dimensions(request.aspect_ratio, request.tier())
    return request.pixel_size()


def nearest(target: tuple[int, int], options: Sequence[tuple[int, int]]) -> int:
    """The index of the option nearest to ``target`` under the documented rule."""

    def distance(option: tuple[int, int]) -> tuple[float, float]:
        ratio = abs(math.log(option[0] / option[1]) - math.log(target[0] / target[1]))
        area = abs(math.log((option[0] * option[1]) / (target[0] * target[1])))
        return round(ratio, 6), round(area, 6)

    return min(range(len(options)), key=lambda i: distance(options[i]))


def fits_rules(width: int, height: int) -> bool:
    """apimodels' arbitrary-size rules: multiples of 16, long edge <= 3840, ratio <= 3:1,
    655,360 to 8,294,400 pixels."""
    return (
        width % STEP == 0
        and height % STEP == 0
        and max(width, height) <= MAX_LONG_EDGE
        and max(width, height) <= MAX_RATIO * min(width, height)
        and MIN_PIXELS <= width * height <= MAX_PIXELS
    )


def fit_to_rules(width: int, height: int) -> tuple[int, int]:
    """The size nearest to ``width`` x ``height`` that :func:`fits_rules`.

    The ratio is clamped to 3:1, the pixel count into 655,360-8,294,400 and the long edge to
    3840 by scaling both sides; then each side goes to a multiple of 16: the pair closest to
    the scaled size (sum of both sides' differences, then the closer ratio) that meets the rules.
    """
    w, h = float(width), float(height)
    if max(w, h) > MAX_RATIO * min(w, h):  # clamp the ratio by growing the short side
        if w > h:
            h = w / MAX_RATIO
        else:
            w = h / MAX_RATIO
    scale = 1.0
    if w * h > MAX_PIXELS:
        scale = math.sqrt(MAX_PIXELS / (w * h))
    elif w * h < MIN_PIXELS:
        scale = math.sqrt(MIN_PIXELS / (w * h))
    w, h = w * scale, h * scale
    if max(w, h) > MAX_LONG_EDGE:
        shrink = MAX_LONG_EDGE / max(w, h)
        w, h = w * shrink, h * shrink
    candidates = [
        (cw, ch) for cw in _multiples_around(w) for ch in _multiples_around(h) if fits_rules(cw, ch)
    ]
    if not candidates:  # unreachable for valid canonical sizes; keep a safe square
        return 1024, 1024

    def distance(size: tuple[int, int]) -> tuple[float, float]:
        return abs(size[0] - w) + abs(size[1] - h), abs(math.log(size[0] / size[1] / (w / h)))

    return min(candidates, key=distance)


def _multiples_around(value: float) -> list[int]:
    base = int(value // STEP) * STEP
    return [m for m in (base - STEP, base, base + STEP, base + 2 * STEP) if m >= STEP]


def label(size: tuple[int, int]) -> str:
    """(1024, 1536) -> ``"1024x1536"``."""
    return f"{size[0]}x{size[1]}"
