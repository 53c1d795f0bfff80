"""Input staging: client images stored in our bucket at submit, and handed to providers later.

At submit, data URLs are stored in S3 (``inputs/{client}/{task}/{n}``) and ``s3://`` references
are checked to be the caller's own; https URLs stay as they are. Providers get URLs (presigned
for our objects) or, for multipart uploads, streams (:func:`input_opener`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from image_gateway.errors import InvalidRequest, NotFound, PayloadTooLarge
from image_gateway.images.sniff import sniff_image
from image_gateway.models.request import (
    ImageRequest,
    ImageSourceKind,
    classify_image_source,
    parse_s3_ref,
)
from image_gateway.ports import Dependencies
from image_gateway.providers.base import InputRef, ProviderInputs
from image_gateway.providers.client import InputFile, InputOpener

_SPOOL_IN_MEMORY = 1024 * 1024


def stage_inputs(
    deps: Dependencies, request: ImageRequest, *, client_id: str, task_id: str
) -> tuple[ImageRequest, ProviderInputs]:
    """Store client data URLs in S3; the request as stored, and what a provider is handed."""
    stored: list[str] = []
    for_provider: list[str] = []
    for index, value in enumerate(request.images):
        ref, url = _stage_one(deps, value, client_id, f"inputs/{client_id}/{task_id}/{index}")
        stored.append(ref)
        for_provider.append(url)
    mask_ref = mask_url = None
    if request.mask is not None:
        mask_ref, mask_url = _stage_one(
            deps, request.mask, client_id, f"inputs/{client_id}/{task_id}/mask"
        )
    normalised = request.model_copy(update={"images": stored, "mask": mask_ref})
    return normalised, ProviderInputs(images=for_provider, mask=mask_url)


def _stage_one(deps: Dependencies, value: str, client_id: str, key_stem: str) -> tuple[str, str]:
    kind = classify_image_source(value)
    ttl = int(deps.settings.input_url_ttl_seconds)
    if kind is ImageSourceKind.URL:
        return value, value
    if kind is ImageSourceKind.DATA_URL:
        image = deps.images.store_base64([value], key_stem)
        return f"s3://{image.bucket}/{image.key}", deps.images.presigned_get_url(image.key, ttl)
    bucket, key = parse_s3_ref(value)
    if bucket != deps.images.bucket or not key.startswith(f"inputs/{client_id}/"):
        raise InvalidRequest(
            f"s3 references must point into s3://{deps.images.bucket}/inputs/{client_id}/",
            code="s3_reference_forbidden",
        )
    if not deps.images.exists(key):
        raise NotFound(f"{value} does not exist", code="input_not_found")
    return value, deps.images.presigned_get_url(key, ttl)


def provider_inputs(deps: Dependencies, stored: ImageRequest) -> ProviderInputs:
    """What a provider is handed for a stored request: its https URLs, and presigned URLs of
    our own objects (client data URLs were stored in S3 at submit)."""
    ttl = int(deps.settings.input_url_ttl_seconds)

    def url(ref: str) -> str:
        if ref.startswith("s3://"):
            return deps.images.presigned_get_url(parse_s3_ref(ref)[1], ttl)
        return ref

    return ProviderInputs(
        images=[url(ref) for ref in stored.images],
        mask=None if stored.mask is None else url(stored.mask),
    )


def input_opener(deps: Dependencies, stored: ImageRequest) -> InputOpener:
    """An opener for input ``i`` / ``"mask"`` of a stored request, for multipart uploads.

    Each input is spooled to a temporary file (memory up to 1 MiB, then disk), its type read
    from its header, and handed to the HTTP client as a stream.
    """

    @contextmanager
    def open_input(ref: InputRef) -> Iterator[InputFile]:
        source = stored.mask if ref == "mask" else stored.images[int(ref)]
        if source is None:
            raise ValueError("the request has no mask")
        limit = deps.settings.max_image_bytes
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            size = 0
            with _chunks(deps, source) as chunks:
                for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(f"input {ref} is over {limit} bytes")
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
