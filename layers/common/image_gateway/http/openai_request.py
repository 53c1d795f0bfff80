"""OpenAI's image requests mapped to the canonical ``ImageRequest`` (the compat surface).

``POST /openai/v1/images/generations`` takes OpenAI's JSON body, ``.../edits`` its multipart
upload (``image`` or ``image[]``, up to 16 files, and ``mask``), with OpenAI's field names.
Gateway options ride in the SDK's ``extra_body``: ``provider``, ``providers``, ``routing`` (a
policy, or an object with ``policy``, ``max_price_usd``, ``max_seconds``), ``hedge``,
``size_policy``, ``aspect_ratio`` + ``resolution``, ``metadata``, ``callback_url``,
``callback_events`` (in a multipart body the SDK sends lists as ``name[]`` and objects as
``name[key]``). The result is an ordinary :class:`ImageRequest`, validated by the same model
as ``POST /v1/images``; every refusal is an ``InvalidRequest`` whose ``param`` names the
OpenAI field.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from image_gateway.errors import InvalidRequest
from image_gateway.http.multipart import Part
from image_gateway.models.request import MAX_REFERENCE_IMAGES, ImageRequest

ResponseFormat = Literal["b64_json", "url"]

PASSED_THROUGH = (
    "prompt",
    "model",
    "n",
    "size",
    "quality",
    "background",
    "moderation",
    "output_format",
    "output_compression",
    "input_fidelity",
)
"""OpenAI fields the canonical request has under the same name."""
GATEWAY_OPTIONS = (
    "provider",
    "providers",
    "routing",
    "hedge",
    "size_policy",
    "aspect_ratio",
    "resolution",
    "metadata",
    "callback_url",
    "callback_events",
)
"""The gateway's own options (``extra_body`` of the SDK)."""
IGNORED = ("user",)
"""OpenAI fields accepted and not used (``user``: OpenAI's end-user id for abuse reports)."""
_INTEGERS = frozenset({"n", "output_compression", "partial_images"})
_LISTS = frozenset({"providers", "callback_events"})
_BOOLEANS = frozenset({"hedge"})
_FILES = frozenset({"image", "image[]", "mask"})
_KEYED = re.compile(r"^([a-z_]+)\[([^\[\]]*)\]$")
_FIELD_TO_PARAM = {"images": "image"}
_STREAMING: dict[str, tuple[object, ...]] = {"stream": (False, "false"), "partial_images": (0, "0")}
"""Streaming fields, and the values that turn streaming off (accepted)."""
_FORMATS = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


@dataclass(frozen=True)
class CompatRequest:
    """A compat call: the canonical request and how the caller wants the image back."""

    request: ImageRequest
    response_format: ResponseFormat


def generation_from_json(body: dict[str, Any]) -> CompatRequest:
    """``images.generate``'s JSON body -> the canonical request (no input images)."""
    return _build(body, images=[], mask=None)


def edit_from_parts(parts: list[Part]) -> CompatRequest:
    """``images.edit``'s multipart body -> the canonical request (images as data URLs)."""
    fields: dict[str, Any] = {}
    images: list[str] = []
    mask: str | None = None
    for part in parts:
        if part.name in _FILES:
            if part.filename is None and not part.data:
                continue
            url = _data_url(part, f"image[{len(images)}]" if part.name != "mask" else "mask")
            if part.name == "mask":
                mask = url
            else:
                images.append(url)
            continue
        if part.filename is not None:
            raise _refuse(part.name, f"{part.name!r} is a form field, not a file")
        _add_field(fields, part.name, part.text())
    if not images:
        raise _refuse("image", "send the image to edit as a file in 'image' (or 'image[]')")
    return _build(fields, images=images, mask=mask)


def refuse_validation(error: ValidationError) -> InvalidRequest:
    """The model's first problem as a 400 naming the OpenAI field (``param``)."""
    problems = error.errors()
    first = problems[0]
    location = [str(p) for p in first.get("loc", ())]
    field = _FIELD_TO_PARAM.get(location[0], location[0]) if location else None
    message = "; ".join(
        f"{'.'.join(str(p) for p in item.get('loc', ())) or 'body'}: "
        f"{str(item.get('msg', 'invalid')).removeprefix('Value error, ')}"
        for item in problems
    )
    return InvalidRequest(message, code="validation_error", param=field)


def _build(body: dict[str, Any], *, images: list[str], mask: str | None) -> CompatRequest:
    fields: dict[str, Any] = {}
    response_format: ResponseFormat = "b64_json"
    if len(images) > MAX_REFERENCE_IMAGES:
        raise _refuse("image", f"at most {MAX_REFERENCE_IMAGES} images, not {len(images)}")
    for name, value in body.items():
        if value is None or name in IGNORED:
            continue  # OpenAI takes null for an optional field as "not given"
        if name in PASSED_THROUGH or name in GATEWAY_OPTIONS:
            fields[name] = value
        elif name == "response_format":
            if value not in ("b64_json", "url"):
                raise _refuse(name, "response_format must be 'b64_json' or 'url'")
            response_format = value
        elif name in _STREAMING:
            if value in _STREAMING[name]:
                continue  # streaming off: what the answer is anyway
            raise _refuse(
                name, "streaming is not supported: the answer comes when the image is made"
            )
        elif name == "style":
            raise _refuse(name, "style is a dall-e-3 option; gpt-image-2 has none")
        else:
            raise _refuse(name, f"unknown parameter {name!r}", code="unknown_parameter")
    if images:
        fields["images"] = images
    if mask is not None:
        fields["mask"] = mask
    if mask is not None and not images:
        raise _refuse("mask", "a mask needs an image to edit")
    try:
        request = ImageRequest.model_validate(fields)
    except ValidationError as exc:
        raise refuse_validation(exc) from None
    return CompatRequest(request=request, response_format=response_format)


def _add_field(fields: dict[str, Any], name: str, value: str) -> None:
    """A multipart text field, typed as the SDK encoded it (``name[]``, ``name[key]``)."""
    keyed = _KEYED.match(name)
    if keyed is not None:
        base, key = keyed.groups()
        if base in _LISTS and key == "":
            fields.setdefault(base, []).append(value)
            return
        if base == "metadata" and key:
            fields.setdefault("metadata", {})[key] = value
            return
        if base == "routing" and key:  # an object (policy and bounds): its fields typed later
            routing = fields.get("routing")
            fields["routing"] = {**(routing if isinstance(routing, dict) else {}), key: value}
            return
        raise _refuse(name, f"unknown parameter {name!r}", code="unknown_parameter")
    if name in _INTEGERS and re.fullmatch(r"-?\d{1,9}", value):
        fields[name] = int(value)
    elif name == "stream":
        fields[name] = value.lower() == "true" or value
    elif name in _BOOLEANS and value.lower() in ("true", "false"):  # a form's words, typed
        fields[name] = value.lower() == "true"
    else:
        fields[name] = value


def _data_url(part: Part, param: str) -> str:
    """A file part as a data URL (its type read from its first bytes; staging checks it)."""
    head = part.data[:16]
    media = next((kind for magic, kind in _FORMATS if head.startswith(magic)), None)
    if media is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        media = "image/webp"
    if media is None:
        raise InvalidRequest(
            f"{param}: not a PNG, JPEG or WebP image", code="invalid_image", param=param
        )
    return f"data:{media};base64,{base64.b64encode(part.data).decode()}"


def _refuse(param: str, message: str, *, code: str = "invalid_request") -> InvalidRequest:
    return InvalidRequest(message, code=code, param=param)
