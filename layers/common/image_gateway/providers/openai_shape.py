"""What the OpenAI-shaped dialects share: the three fixed sizes, the field set, the images
response ``{created, data: [{b64_json | url}]}`` and the error body ``{"error": {...}}``.

Used by mountsea-async, pmock (camelCase), openai, mountsea-compat and apimodels' sync mode.
"""

from __future__ import annotations

from typing import Any

from image_gateway.errors import ProviderError
from image_gateway.images.json_blobs import Blob
from image_gateway.models.request import ImageRequest
from image_gateway.providers.base import (
    Capabilities,
    Mode,
    Provider,
    ProviderState,
    ProviderStatus,
    ResultImage,
    SizePlan,
    looks_like_moderation,
)
from image_gateway.providers.sizes import label, nearest, requested_label, target_dimensions

FIXED_SIZES: dict[str, tuple[int, int]] = {
    "1024x1024": (1024, 1024),
    "1024x1536": (1024, 1536),
    "1536x1024": (1536, 1024),
}
FIXED_SIZE_LIST = ("auto", *FIXED_SIZES)


def openai_capabilities(mode: Mode) -> Capabilities:
    """What every OpenAI-shaped gpt-image-2 dialect supports (mountsea, pmock, openai)."""
    return Capabilities(
        modes=frozenset({mode}),
        callback=False,
        batch_poll=False,
        max_images=16,
        mask=True,
        backgrounds=frozenset({"auto", "transparent", "opaque"}),
        output_formats=frozenset({"png", "jpeg", "webp"}),
        output_compression=True,
        sizes=FIXED_SIZE_LIST,
    )


_CAMEL = {
    "output_format": "outputFormat",
    "output_compression": "outputCompression",
    "input_fidelity": "inputFidelity",
}


def plan_fixed_size(request: ImageRequest) -> SizePlan:
    """``auto`` or one of the three sizes; anything else maps to the nearest (not exact)."""
    target = target_dimensions(request)
    if target is None:
        return SizePlan(requested="auto", sent="auto", exact=True)
    requested = requested_label(request)
    if label(target) in FIXED_SIZES:
        return SizePlan(requested=requested, sent=label(target), exact=True, expected=target)
    options = list(FIXED_SIZES.values())
    choice = options[nearest(target, options)]
    return SizePlan(requested=requested, sent=label(choice), exact=False, expected=choice)


def openai_fields(
    request: ImageRequest, size: str, *, edit: bool, camel: bool = False
) -> dict[str, Any]:
    """The OpenAI image fields of a request (snake_case, or camelCase for pmock)."""
    fields: dict[str, Any] = {
        "prompt": request.prompt,
        "model": request.model,
        "size": size,
        "n": request.n,
        "quality": request.quality,
        "background": request.background,
        "output_format": request.output_format,
        "moderation": request.moderation,
    }
    if request.output_compression is not None:
        fields["output_compression"] = request.output_compression
    if edit and request.input_fidelity is not None:
        fields["input_fidelity"] = request.input_fidelity
    if camel:
        return {_CAMEL.get(key, key): value for key, value in fields.items()}
    return fields


def images_response(provider: Provider, body: Any, what: str) -> list[ResultImage]:
    """The images of ``{data: [{b64_json | url}, ...]}`` (base64 preferred when both)."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not data:
        raise provider.bad_response(f"{what} without data[]")
    images: list[ResultImage] = []
    for entry in data:
        if not isinstance(entry, dict):
            raise provider.bad_response(f"{what} whose data[] entry is not an object")
        b64 = entry.get("b64_json")
        url = entry.get("url")
        if isinstance(b64, str | Blob) and b64:
            images.append(ResultImage(b64=b64))
        elif isinstance(url, str) and url.startswith(("https://", "http://")):
            images.append(ResultImage(url=url))
        else:
            raise provider.bad_response(f"{what} with an entry that has neither b64_json nor url")
    return images


def succeeded(provider: Provider, body: Any, what: str) -> ProviderStatus:
    """A finished sync answer as a canonical status."""
    return ProviderStatus(
        state=ProviderState.SUCCEEDED,
        raw_status="completed",
        images=images_response(provider, body, what),
    )


def openai_error(provider: Provider, status_code: int, body: Any) -> ProviderError:
    """Classify ``{"error": {"message", "type", "code"}}`` (OpenAI's documented error body).

    ``moderation_blocked`` (code or type) or a moderation message is a moderation refusal;
    404 is a missing task; any other 4xx is a refusal of the request.
    """
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return provider.bad_response(f"HTTP {status_code} without an error object")
    message = str(error.get("message") or f"HTTP {status_code}")
    code = error.get("code")
    kind = str(error.get("type") or "")
    if "moderation" in f"{code} {kind}" or looks_like_moderation(message):
        return provider.rejected(message, moderation=True, provider_code=_text(code))
    if status_code == 404:
        return provider.task_missing(message)
    return provider.rejected(message, provider_code=_text(code) or str(status_code))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
