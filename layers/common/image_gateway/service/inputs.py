"""Input images as files, for providers that take multipart uploads (OpenAI-shaped edits).

A task's stored inputs are ``s3://`` references to our bucket (client uploads and data URLs,
stored at submit) or https URLs. Each is spooled to a temporary file (memory up to 1 MiB, then
disk), its type read from its header, and handed to the HTTP client as a stream.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from image_gateway.errors import PayloadTooLarge
from image_gateway.images.sniff import sniff_image
from image_gateway.models.request import parse_s3_ref
from image_gateway.providers.base import InputRef
from image_gateway.providers.client import InputFile, InputOpener

if TYPE_CHECKING:
    from image_gateway.service.dependencies import Dependencies

_SPOOL_IN_MEMORY = 1024 * 1024


def input_opener(
    deps: Dependencies, stored_images: list[str], stored_mask: str | None
) -> InputOpener:
    """An opener for input ``i`` / ``"mask"`` of a stored request."""

    @contextmanager
    def open_input(ref: InputRef) -> Iterator[InputFile]:
        source = stored_mask if ref == "mask" else stored_images[int(ref)]
        if source is None:
            raise ValueError("the request has no mask")
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            size = 0
            with _chunks(deps, source) as chunks:
                for chunk in chunks:
                    size += len(chunk)
                    if size > deps.settings.max_image_bytes:
                        raise PayloadTooLarge(
                            f"input {ref} is over {deps.settings.max_image_bytes} bytes"
                        )
                    spool.write(chunk)
            info = sniff_image(spool)  # leaves the file at 0
            name = "mask" if ref == "mask" else f"image-{ref}"
            yield f"{name}.{info.extension}", spool, info.content_type

    return open_input


@contextmanager
def _chunks(deps: Dependencies, source: str) -> Iterator[Iterator[bytes]]:
    if source.startswith("s3://"):
        _, key = parse_s3_ref(source)
        yield deps.images.open_stream(key)
    else:
        with deps.fetcher.stream(source) as chunks:
            yield chunks
