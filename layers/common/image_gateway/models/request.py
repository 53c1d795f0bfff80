"""The canonical image request: one model for every entry point (API, S3 inbox, tests).

Provider dialects never leak in here; adapters map this model to each provider's wire format.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from image_gateway.models.routing import Hedge, Routing
from image_gateway.models.routing import RoutingPolicy as RoutingPolicy

if TYPE_CHECKING:
    from pydantic.config import JsonDict, JsonValue

MAX_REFERENCE_IMAGES = 16
MAX_IMAGES = 10  # n: one provider call each (OpenAI's own bound)
MAX_PROMPT_CHARS = 32_000
MAX_SIDE_PX = 3840
MIN_SIDE_PX = 64

_SIZE_RE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
# Whitespace as pydantic strips it (Unicode White_Space), spelled out: regex engines disagree on
# \s (Python's adds \x1c-\x1f, ECMA's has no \x85 and adds \ufeff): the document never says \s.
_WS = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
SPACE, NOT_SPACE = f"[{_WS}]", f"[^{_WS}]"
# Each ends on a character strip() keeps, so the document (which sees the value unstripped)
# cannot accept a value that is empty where it matters once stripped.
_DATA_URL = rf"data:image/(png|jpeg|jpg|webp);base64,[A-Za-z0-9+/={_WS}]*[A-Za-z0-9+/=]"
_S3_REF = rf"s3://([a-z0-9][a-z0-9.\-]{{1,61}}[a-z0-9])/([^\n]*{NOT_SPACE})"
_DATA_URL_RE = re.compile(f"^{_DATA_URL}$", re.DOTALL)
_S3_REF_RE = re.compile(f"^{_S3_REF}$")
PROVIDER_NAME_PATTERN = r"^[a-z][a-z0-9\-]{1,40}$"
_PROVIDER_RE = re.compile(PROVIDER_NAME_PATTERN)

# The document's patterns: what the validators below accept, written as JSON Schema (a test
# checks both agree). Values are stripped first (str_strip_whitespace), hence the spaces at the
# ends.
_SIDE = r"(6[4-9]|[7-9]\d|[1-9]\d{2}|[12]\d{3}|3[0-7]\d{2}|38[0-3]\d|3840)"  # 64-3840
SIZE_PATTERN = rf"^{SPACE}*(auto|{_SIDE}x{_SIDE}){SPACE}*$"
IMAGE_REF_PATTERN = rf"^{SPACE}*(https://[\s\S]*{NOT_SPACE}|{_DATA_URL}|{_S3_REF}){SPACE}*$"
CALLBACK_URL_PATTERN = rf"^{SPACE}*https?://{NOT_SPACE}"
_CALLBACK_URL_RE = re.compile(CALLBACK_URL_PATTERN)

AspectRatio = Literal[
    "1:1", "3:2", "2:3", "4:3", "3:4", "5:4", "4:5", "16:9", "9:16",
    "2:1", "1:2", "3:1", "1:3", "21:9", "9:21",
]  # fmt: skip
Resolution = Literal["1K", "2K", "4K"]


class Operation(StrEnum):
    """What the task does; derived from the inputs, never sent by callers."""

    GENERATE = "generate"
    EDIT = "edit"


class ImageSourceKind(StrEnum):
    """How a caller passed an input image."""

    URL = "url"
    DATA_URL = "data_url"
    S3 = "s3"


def classify_image_source(value: str) -> ImageSourceKind:
    """Say which kind of image reference ``value`` is, or raise ``ValueError`` saying why not."""
    if value.startswith("data:"):
        if not _DATA_URL_RE.match(value):
            raise ValueError(
                "a data URL must look like data:image/png;base64,<base64> "
                "(png, jpeg or webp, base64-encoded)"
            )
        return ImageSourceKind.DATA_URL
    if value.startswith("s3://"):
        if not _S3_REF_RE.match(value):
            raise ValueError("an S3 reference must look like s3://bucket/key")
        return ImageSourceKind.S3
    if value.startswith("https://") and len(value) > len("https://"):
        return ImageSourceKind.URL
    raise ValueError("an image must be an https:// URL, a data:image/...;base64 URL or s3://...")


def parse_s3_ref(value: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into (bucket, key)."""
    match = _S3_REF_RE.match(value)
    if not match:
        raise ValueError("an S3 reference must look like s3://bucket/key")
    return match.group(1), match.group(2)


ImageRef = Annotated[
    str,
    Field(
        min_length=9,
        description="https URL, data URL, or s3://bucket/key",
        json_schema_extra={"pattern": IMAGE_REF_PATTERN},
    ),
]


def _given(field: str, then: JsonDict) -> JsonDict:
    """JSON Schema: when ``field`` is given (and not null), the body must also meet ``then``."""
    return {
        "if": {"required": [field], "properties": {field: {"not": {"type": "null"}}}},
        "then": then,
    }


_NOT_NULL: JsonDict = {"not": {"type": "null"}}
# Typed (the model refuses images: null beside a mask), it also keeps the schema within what
# schemathesis can expand (tests/unit/api/test_openapi_document.py: a valid body is drawn).
_SOME_IMAGES: JsonDict = {
    "required": ["images"],
    "properties": {"images": {"type": "array", "minItems": 1}},
}
RULES_BETWEEN_FIELDS: list[JsonValue] = [
    _given("resolution", {"required": ["aspect_ratio"], "properties": {"aspect_ratio": _NOT_NULL}}),
    _given("aspect_ratio", {"properties": {"size": {"pattern": f"^{SPACE}*auto{SPACE}*$"}}}),
    _given("mask", _SOME_IMAGES),
    _given("input_fidelity", _SOME_IMAGES),
    _given("provider", {"properties": {"providers": {"type": "null"}}}),
    _given(
        "output_compression",
        {
            "required": ["output_format"],
            "properties": {"output_format": {"enum": ["jpeg", "webp"]}},
        },
    ),
    _given(
        "callback_events", {"required": ["callback_url"], "properties": {"callback_url": _NOT_NULL}}
    ),
]
"""The rules between fields :meth:`ImageRequest._check_combinations` enforces, for the document."""


class ImageRequest(BaseModel):
    """A generation or edit request, as callers send it to ``POST /v1/images``."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"allOf": RULES_BETWEEN_FIELDS},
    )

    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        json_schema_extra={"pattern": NOT_SPACE},  # stripped first: blanks alone are empty
    )
    model: Literal["gpt-image-2"] = "gpt-image-2"
    size: str = Field(
        default="auto",
        description="`auto` or an exact `WxH` (each side 64-3840); or leave it `auto` and give "
        "aspect_ratio",
        json_schema_extra={"pattern": SIZE_PATTERN},
    )
    aspect_ratio: AspectRatio | None = None
    resolution: Resolution | None = None
    size_policy: Literal["exact", "nearest"] = Field(
        default="exact",
        description="what a provider that cannot make the size exactly does: `exact` refuses "
        "(the next provider is tried; 422 with each provider's sizes if none can), `nearest` "
        "makes its documented nearest size",
    )
    quality: Literal["auto", "low", "medium", "high"] = "auto"
    background: Literal["auto", "transparent", "opaque"] = "auto"
    output_format: Literal["png", "jpeg", "webp"] = "png"
    output_compression: int | None = Field(default=None, ge=0, le=100)
    moderation: Literal["auto", "low"] = "auto"
    input_fidelity: Literal["high", "low"] | None = None
    images: list[ImageRef] = Field(default_factory=list, max_length=MAX_REFERENCE_IMAGES)
    mask: ImageRef | None = None
    n: int = Field(default=1, ge=1, le=MAX_IMAGES, description="images (docs/images-n.md)")
    provider: str | None = Field(default=None, description="pin one provider")
    providers: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description="ordered fallback list (no provider twice)",
        json_schema_extra={"uniqueItems": True},
    )
    routing: RoutingPolicy | Routing | None = Field(
        default=None,
        description="how the providers are ranked (docs/routing.md): a policy, `order` (the "
        "list's or the stack's order), `price` (cheapest for the tier and quality), `latency` "
        "(lowest measured p50), `reliability` (highest measured success rate), `balanced` "
        "(cheapest among the reliable and fast enough); or an object with `policy` and the "
        "bounds `max_price_usd`, `max_seconds`; default: the client's, else the stack's, else "
        "`order`",
    )
    hedge: Hedge = None  # omitted: the client's default (models/routing.py)
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        description="signed Standard Webhooks deliveries go here (https; SSRF-checked at submit: "
        "422 callback_url_refused for a private address or a host that does not exist)",
        json_schema_extra={"pattern": CALLBACK_URL_PATTERN},
    )
    callback_events: list[Literal["submitted", "running", "completed"]] | None = Field(
        default=None,
        min_length=1,
        max_length=3,
        description="which changes are delivered to callback_url (default: completed only)",
    )
    metadata: dict[str, str] = Field(
        default_factory=dict,
        max_length=16,
        description="up to 16 keys of 1-64 characters, values of at most 256",
        json_schema_extra={
            "propertyNames": {"minLength": 1, "maxLength": 64, "pattern": NOT_SPACE},
            "additionalProperties": {"type": "string", "maxLength": 256},
        },
    )

    @model_serializer(mode="wrap")
    def _without_an_unset_hedge(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a stored request read back must validate: an unset hedge is left out, not null
        data: dict[str, Any] = handler(self)
        if data.get("hedge", False) is None:
            del data["hedge"]
        return data

    @field_validator("size")
    @classmethod
    def _check_size(cls, value: str) -> str:
        if value == "auto":
            return value
        match = _SIZE_RE.match(value)
        if not match:
            raise ValueError("size must be 'auto' or WIDTHxHEIGHT in pixels, e.g. 1024x1536")
        width, height = int(match.group(1)), int(match.group(2))
        for side in (width, height):
            if not MIN_SIDE_PX <= side <= MAX_SIDE_PX:
                raise ValueError(
                    f"each side of size must be between {MIN_SIDE_PX} and {MAX_SIDE_PX} pixels"
                )
        return value

    @field_validator("images")
    @classmethod
    def _check_images(cls, values: list[str]) -> list[str]:
        for index, value in enumerate(values):
            try:
                classify_image_source(value)
            except ValueError as exc:
                raise ValueError(f"images[{index}]: {exc}") from None
        return values

    @field_validator("mask")
    @classmethod
    def _check_mask(cls, value: str | None) -> str | None:
        if value is not None:
            classify_image_source(value)
        return value

    @field_validator("provider")
    @classmethod
    def _check_provider(cls, value: str | None) -> str | None:
        if value is not None and not _PROVIDER_RE.match(value):
            raise ValueError("provider must be a provider name such as 'apimart'")
        return value

    @field_validator("providers")
    @classmethod
    def _check_providers(cls, values: list[str] | None) -> list[str] | None:
        if values is not None:
            for value in values:
                if not _PROVIDER_RE.match(value):
                    raise ValueError(f"{value!r} is not a provider name")
            if len(set(values)) != len(values):
                raise ValueError("providers must not repeat a provider")
        return values

    @field_validator("callback_url")
    @classmethod
    def _check_callback_url(cls, value: str | None) -> str | None:
        # http:// only reaches the hosts a stack allows (devstack); the submit check says so
        if value is not None and not _CALLBACK_URL_RE.match(value):
            raise ValueError("callback_url must be an https:// URL")
        return value

    @model_validator(mode="after")
    def _events_need_a_url(self) -> ImageRequest:
        if self.callback_events is not None and self.callback_url is None:
            raise ValueError("callback_events needs a callback_url")
        return self

    @field_validator("metadata")
    @classmethod
    def _check_metadata(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not 1 <= len(key) <= 64 or len(item) > 256:
                raise ValueError("metadata keys must be 1-64 characters, values at most 256")
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> ImageRequest:
        if self.size != "auto" and self.aspect_ratio is not None:
            raise ValueError("give either size (WxH) or aspect_ratio (+ resolution), not both")
        if self.resolution is not None and self.aspect_ratio is None:
            raise ValueError("resolution needs aspect_ratio (e.g. aspect_ratio=16:9, 4K)")
        if self.mask is not None and not self.images:
            raise ValueError("mask needs at least one image to edit")
        if self.input_fidelity is not None and not self.images:
            raise ValueError("input_fidelity only applies to edits (give images)")
        if self.provider is not None and self.providers is not None:
            raise ValueError("give either provider or providers, not both")
        if self.output_compression is not None and self.output_format == "png":
            raise ValueError("output_compression applies to jpeg and webp only")
        return self

    @property
    def operation(self) -> Operation:
        """``edit`` when input images are present, else ``generate``."""
        return Operation.EDIT if self.images else Operation.GENERATE

    def pixel_size(self) -> tuple[int, int] | None:
        """The exact size asked for, when the caller gave ``WxH``."""
        match = _SIZE_RE.match(self.size)
        return (int(match.group(1)), int(match.group(2))) if match else None

    @property
    def routing_policy(self) -> RoutingPolicy | None:
        """The policy the request asks for (None: the client's or the stack's applies)."""
        return self.routing.policy if isinstance(self.routing, Routing) else self.routing

    @property
    def max_price_usd(self) -> float | None:
        """``routing.max_price_usd``, when the request gives it."""
        return self.routing.max_price_usd if isinstance(self.routing, Routing) else None

    @property
    def max_seconds(self) -> float | None:
        """``routing.max_seconds``, when the request gives it."""
        return self.routing.max_seconds if isinstance(self.routing, Routing) else None

    def tier(self) -> Resolution:
        """The 1K/2K/4K tier the request falls in (long edge <=1536, <=2048, above)."""
        if self.resolution is not None:
            return self.resolution
        size = self.pixel_size()
        if size is None:
            return "1K"
        long_edge = max(size)
        return "1K" if long_edge <= 1536 else "2K" if long_edge <= 2048 else "4K"
