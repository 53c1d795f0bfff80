"""Input staging: client images stored in our bucket at submit, and handed to providers later.

At submit, data URLs are stored in S3 (``inputs/{client}/{task}/{n}``) and ``s3://`` references
are checked to be the caller's own and read whole; https URLs stay as they are (unread: the
provider fetches them). Every input the gateway stores or holds is checked like an inbox upload
(:class:`~image_gateway.images.inputs.InputCheck`): a complete PNG, JPEG or WebP with nothing
after its end, at most ``max_input_pixels``, and a mask of the first image's size (when that
image is ours: a data URL or an s3:// reference). When an input is refused, the ones already
stored for the request are deleted again. Providers get URLs (presigned for our objects) or,
for multipart uploads, streams (:func:`input_opener`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from image_gateway.errors import InvalidImage, NotFound, PayloadTooLarge
from image_gateway.images.inputs import InputCheck
from image_gateway.images.sniff import sniff_image
from image_gateway.images.store import spooled_image
from image_gateway.models.request import (
    ImageRequest,
    ImageSourceKind,
    classify_image_source,
    parse_s3_ref,
)
from image_gateway.ports import Dependencies, ImageRepository
from image_gateway.providers.base import InputFile, InputOpener, InputRef, ProviderInputs

logger = Logger(child=True)

_SPOOL_IN_MEMORY = 1024 * 1024


@dataclass(frozen=True)
class _Staged:
    """One input at submit: how the stored request names it, what the provider gets, the key
    written for it (data URLs only) and its size when the gateway read it (not https URLs)."""

    ref: str
    url: str
    written: str | None = None
    size: tuple[int, int] | None = None


def stage_inputs(
    deps: Dependencies, request: ImageRequest, *, client_id: str, task_id: str
) -> tuple[ImageRequest, ProviderInputs]:
    """Store client data URLs in S3; the request as stored, and what a provider is handed.

    Raises what refused an input (InvalidImage with ``invalid_image``,
    ``image_too_many_pixels`` or ``mask_size_mismatch``; PayloadTooLarge;
    ``input_not_found`` for a missing object or another client's), after deleting what it had
    stored.
    """
    max_pixels = deps.settings.max_input_pixels
    stem = f"inputs/{client_id}/{task_id}"
    staged: list[_Staged] = []
    mask: _Staged | None = None
    with discarded_on_failure(lambda: deps.images) as written:
        for index, value in enumerate(request.images):
            check = InputCheck(max_pixels)
            one = _stage_one(deps, value, client_id, f"images[{index}]", f"{stem}/{index}", check)
            staged.append(one)
            if one.written is not None:
                written.append(one.written)
        if request.mask is not None:  # the model allows a mask only with images
            check = InputCheck(max_pixels, mask_of=staged[0].size)
            mask = _stage_one(deps, request.mask, client_id, "mask", f"{stem}/mask", check)
    stored = request.model_copy(
        update={"images": [s.ref for s in staged], "mask": None if mask is None else mask.ref}
    )
    return stored, ProviderInputs(
        images=[s.url for s in staged], mask=None if mask is None else mask.url
    )


@contextmanager
def discarded_on_failure(images: Callable[[], ImageRepository]) -> Iterator[list[str]]:
    """Keys the block stores (append them): deleted again if the block raises, then re-raised.

    ``images`` is called only when there is something to delete, so a request without inputs
    never builds the S3 client (about 35 ms of the API's first event).

    A key that cannot be deleted is logged and left (the bucket's lifecycle rule expires
    ``inputs/``); the block's own error is what the caller sees.
    """
    written: list[str] = []
    try:
        yield written
    except Exception:
        for key in written:
            try:
                images().delete(key)
            except Exception:
                logger.warning("could not delete a staged input", extra={"key": key}, exc_info=True)
        raise


def _stage_one(
    deps: Dependencies, value: str, client_id: str, what: str, key_stem: str, check: InputCheck
) -> _Staged:
    """Stage one input; refusals name it (``images[1]: ...``)."""
    try:
        return _stage(deps, value, client_id, key_stem, check)
    except (InvalidImage, PayloadTooLarge) as refused:
        raise type(refused)(
            f"{what}: {refused.message}", code=refused.code, **refused.details
        ) from None


def _stage(
    deps: Dependencies, value: str, client_id: str, key_stem: str, check: InputCheck
) -> _Staged:
    kind = classify_image_source(value)
    ttl = int(deps.settings.input_url_ttl_seconds)
    if kind is ImageSourceKind.URL:
        return _Staged(value, value)
    if kind is ImageSourceKind.DATA_URL:
        image = deps.images.store_base64([value], key_stem, check=check)
        return _Staged(
            ref=f"s3://{image.bucket}/{image.key}",
            url=deps.images.presigned_get_url(image.key, ttl),
            written=image.key,
            size=(image.width, image.height),
        )
    bucket, key = parse_s3_ref(value)
    if bucket != deps.images.bucket or not key.startswith(f"inputs/{client_id}/"):
        # another client's object is a 404 like a missing one (as another client's task is)
        raise NotFound(
            f"{value} is not one of your inputs: refer to s3://{deps.images.bucket}/"
            f"inputs/{client_id}/... (a ref from POST /v1/uploads)",
            code="input_not_found",
        )
    # Read whole, as a data URL is: an upload through a presigned URL was never checked (S3
    # only held it to its declared size and type), and no provider is paid for a bad file.
    try:
        with spooled_image(
            deps.images.open_stream(key), max_bytes=deps.settings.max_image_bytes, check=check
        ) as spooled:
            info = spooled.info
    except NotFound:
        raise NotFound(f"{value} does not exist", code="input_not_found") from None
    return _Staged(value, deps.images.presigned_get_url(key, ttl), size=(info.width, info.height))


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
