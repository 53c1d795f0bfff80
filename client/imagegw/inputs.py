"""Input images: references pass through, local files and bytes go inline or are uploaded first.

A request body has to stay small (API Gateway takes 10 MB, a Lambda event 6 MB), and a
16-reference edit of camera photos is far bigger. So a local image (a path or bytes) is sent
inline as a ``data:`` URL only while it is at most ``inline_max_bytes`` (1 MiB) and the
request's inline images stay within ``inline_budget`` (4 MiB of base64) in all; every other one
is uploaded first: ``POST /v1/uploads`` hands out presigned PUT URLs, the client PUTs the bytes
straight to the gateway's bucket, and the request names them by their ``s3://`` refs.
``https://``, ``s3://`` and ``data:`` strings are passed as they are.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from imagegw.errors import InputError

ImageInput: TypeAlias = str | os.PathLike[str] | bytes
"""A path, an ``https://`` / ``s3://`` / ``data:`` string, or the image's bytes."""

INLINE_MAX_BYTES = 1024 * 1024
INLINE_BUDGET = 4 * 1024 * 1024
_PASS_THROUGH = ("https://", "s3://", "data:")


@dataclass(frozen=True)
class LocalImage:
    """Image bytes that must be sent (inline or uploaded), with their sniffed type."""

    data: bytes
    content_type: str
    name: str

    @property
    def inline_size(self) -> int:
        """Characters of its data URL."""
        return len(self.data_url_prefix) + 4 * ((len(self.data) + 2) // 3)

    @property
    def data_url_prefix(self) -> str:
        """``data:image/...;base64,``."""
        return f"data:{self.content_type};base64,"

    def data_url(self) -> str:
        """The image as a ``data:`` URL."""
        return self.data_url_prefix + base64.b64encode(self.data).decode("ascii")


def sniff_content_type(data: bytes) -> str | None:
    """``image/png``, ``image/jpeg`` or ``image/webp`` from the first bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def read_input(item: ImageInput, what: str) -> str | LocalImage:
    """A reference to pass on as it is, or the local image to send (InputError if unusable)."""
    if isinstance(item, str) and item.startswith(_PASS_THROUGH):
        return item
    if isinstance(item, str) and item.startswith("http://"):
        raise InputError(f"{what}: the gateway takes https:// URLs only ({item[:60]})")
    if isinstance(item, bytes):
        data, name = item, f"{what} (bytes)"
    else:
        path = Path(item)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputError(f"{what}: no such file {path}") from None
        except OSError as exc:
            raise InputError(f"{what}: cannot read {path}: {exc.strerror}") from None
        name = str(path)
    content_type = sniff_content_type(data)
    if content_type is None:
        raise InputError(f"{what}: {name} is not a PNG, JPEG or WebP image")
    return LocalImage(data=data, content_type=content_type, name=name)


@dataclass(frozen=True)
class InputPlan:
    """Every input in order: a string to send, or the index of its upload in ``uploads``."""

    slots: list[str | int]
    uploads: list[LocalImage]

    def resolve(self, refs: list[str]) -> list[str]:
        """The strings to send, with the upload refs (in ``uploads`` order) filled in."""
        return [refs[slot] if isinstance(slot, int) else slot for slot in self.slots]


def plan_inputs(
    items: list[str | LocalImage],
    *,
    inline_max_bytes: int = INLINE_MAX_BYTES,
    inline_budget: int = INLINE_BUDGET,
) -> InputPlan:
    """Which local images go inline and which are uploaded (see the module docstring)."""
    slots: list[str | int] = []
    uploads: list[LocalImage] = []
    used = sum(len(item) for item in items if isinstance(item, str))
    for item in items:
        if isinstance(item, str):
            slots.append(item)
        elif len(item.data) <= inline_max_bytes and used + item.inline_size <= inline_budget:
            slots.append(item.data_url())
            used += item.inline_size
        else:
            slots.append(len(uploads))
            uploads.append(item)
    return InputPlan(slots=slots, uploads=uploads)


def collect_inputs(images: list[ImageInput], mask: ImageInput | None) -> list[str | LocalImage]:
    """The images then the mask, each read (InputError for an unusable one)."""
    found = [read_input(item, f"images[{i}]") for i, item in enumerate(images)]
    if mask is not None:
        found.append(read_input(mask, "mask"))
    return found
