"""The provider interface: every provider difference stops here.

An adapter is pure: it builds HTTP calls from the canonical request and parses the provider's
answers into one status model and one error model. ``ProviderClient`` does the I/O.

Two kinds of provider exist, and an adapter may be both (apimodels picks per request):

- **async**: ``create_call``/``parse_create`` start a provider task; ``status_call``/
  ``parse_status`` read it (poll loop, sweeper, or after a callback);
- **sync**: ``sync_call``/``parse_sync``: one long HTTP call that answers with the image. It is
  made by the ``dispatch`` function from an SQS queue, never inside an API request.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from image_gateway.errors import (
    InvalidRequest,
    ProviderBadResponse,
    ProviderError,
    ProviderRejected,
    Unprocessable,
)
from image_gateway.models.request import ImageRequest

if TYPE_CHECKING:
    from image_gateway.images.json_blobs import Blob


class ProviderState(StrEnum):
    """The canonical view of a provider-side task."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Mode(StrEnum):
    """How a provider works: it starts a task (async), or answers with the image (sync)."""

    ASYNC = "async"
    SYNC = "sync"


InputRef = int | Literal["mask"]
"""A multipart file part's content: input image number ``i``, or the mask."""
InputFile = tuple[str, IO[bytes], str]
"""A multipart file part: file name, readable binary stream, content type."""
InputOpener = Callable[[InputRef], AbstractContextManager[InputFile]]
"""Opens input image ``i`` (or the mask) as a stream, for multipart uploads (defined here, not
in :mod:`providers.client`, so that staging inputs at submit does not import httpx)."""


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do; requests it cannot honour are refused before any spend."""

    modes: frozenset[Mode]
    callback: bool
    batch_poll: bool
    max_images: int
    mask: bool
    backgrounds: frozenset[str]
    output_formats: frozenset[str]
    output_compression: bool
    sizes: tuple[str, ...]
    """The sizes it makes, each a size or a rule (docs, ``GET /v1/providers``, 422 bodies)."""

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "modes": sorted(self.modes),
            "callback": self.callback,
            "batch_poll": self.batch_poll,
            "max_images": self.max_images,
            "mask": self.mask,
            "backgrounds": sorted(self.backgrounds),
            "output_formats": sorted(self.output_formats),
            "output_compression": self.output_compression,
            "sizes": list(self.sizes),
        }


@dataclass(frozen=True)
class SizePlan:
    """How a provider will make the requested size."""

    requested: str
    """The canonical size asked for: ``auto``, ``WxH`` or ``ratio@tier`` (e.g. ``16:9@2K``)."""
    sent: str
    """What the provider is asked for, in its own words (e.g. ``3:2 @ 1k``)."""
    exact: bool
    """False when the documented nearest size replaces the requested one."""
    expected: tuple[int, int] | None = None
    """The pixels the provider documents for it; None when it decides (``auto``)."""


@dataclass(frozen=True)
class ProviderInputs:
    """Input images as the provider will receive them (URLs or data URLs), mask included."""

    images: list[str] = field(default_factory=list)
    mask: str | None = None


@dataclass(frozen=True)
class HttpCall:
    """One HTTP request to a provider, relative to its base URL.

    A JSON body (``json``), or a multipart form: ``form`` fields plus ``files``, each a part
    name and the input it carries (the client streams those bytes from S3 or the source URL).
    """

    method: Literal["GET", "POST"]
    path: str
    json: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    form: dict[str, str] | None = None
    files: tuple[tuple[str, InputRef], ...] = ()


@dataclass
class ResultImage:
    """Where a finished image is: a URL to download or base64 text (maybe spooled)."""

    url: str | None = None
    b64: Blob | str | None = None


@dataclass
class ProviderStatus:
    """A provider task's state, in the canonical model."""

    state: ProviderState
    raw_status: str
    images: list[ResultImage] = field(default_factory=list)
    error: ProviderError | None = None
    blobs: list[Blob] = field(default_factory=list)

    def close(self) -> None:
        """Release spooled base64 blobs."""
        for blob in self.blobs:
            blob.close()

    def __enter__(self) -> ProviderStatus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ProviderOptions(BaseModel):
    """Per-provider settings from the providers parameter (``options``); none by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Provider(ABC):
    """One provider's dialect. Adding a provider = one subclass + one registry line."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    poll_interval_seconds: ClassVar[float] = 5.0
    options_model: ClassVar[type[ProviderOptions]] = ProviderOptions

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        try:
            self.options = self.options_model.model_validate(dict(options or {}))
        except ValidationError as exc:
            raise InvalidRequest(
                f"bad options for provider {self.name}: {exc.errors()[0]['msg']}",
                code="provider_options_invalid",
            ) from None

    @property
    def supports_callback(self) -> bool:
        """Whether the provider can call our webhook when a task ends."""
        return self.capabilities.callback

    # -- planning (pure, before any spend) -----------------------------------------------------
    def mode(self, request: ImageRequest) -> Mode:
        """Async or sync for this request (a provider with both modes decides per request)."""
        (only,) = self.capabilities.modes
        return only

    @abstractmethod
    def plan_size(self, request: ImageRequest) -> SizePlan:
        """How this provider makes the requested size (``exact=False``: the nearest one)."""

    def check(self, request: ImageRequest) -> SizePlan:
        """Refuse, naming this provider and the field, what it cannot honour; else the size plan.

        With ``size_policy="exact"`` a size the provider cannot make exactly is refused with the
        list of what it supports; with ``"nearest"`` the documented nearest size is used.
        """
        caps = self.capabilities
        if len(request.images) > caps.max_images:
            self._refuse(
                "images", f"takes at most {caps.max_images} input images, not {len(request.images)}"
            )
        if request.mask is not None and not caps.mask:
            self._refuse("mask", "does not support masks (masked edits)")
        if request.background not in caps.backgrounds:
            self._refuse(
                "background",
                f"does not support background={request.background!r} "
                f"(supports {', '.join(sorted(caps.backgrounds))})",
            )
        if request.output_format not in caps.output_formats:
            self._refuse(
                "output_format",
                f"does not make {request.output_format} "
                f"(supports {', '.join(sorted(caps.output_formats))})",
            )
        if request.output_compression is not None and not caps.output_compression:
            self._refuse("output_compression", "does not support output_compression")
        plan = self.plan_size(request)
        if not plan.exact and request.size_policy == "exact":
            raise Unprocessable(
                f"{self.name} cannot make size {plan.requested} exactly; it makes: "
                f"{'; '.join(caps.sizes)}. Ask for one of those, or send "
                f"size_policy='nearest' to get {plan.sent}",
                provider=self.name,
                field="size" if request.aspect_ratio is None else "aspect_ratio",
                supported=list(caps.sizes),
                nearest=plan.sent,
            )
        return plan

    def _refuse(self, field_name: str, what: str) -> None:
        raise Unprocessable(f"{self.name} {what}", provider=self.name, field=field_name)

    # -- async dialect -------------------------------------------------------------------------
    def create_call(
        self, request: ImageRequest, inputs: ProviderInputs, callback_url: str | None
    ) -> HttpCall:
        """The create request; raises ``Unprocessable`` for what this provider cannot do."""
        raise NotImplementedError(f"{self.name} has no async mode")

    def parse_create(self, status_code: int, body: Any) -> str:
        """The provider's task id from the create answer, or raise a ``ProviderError``."""
        raise NotImplementedError(f"{self.name} has no async mode")

    def status_call(self, provider_task_id: str) -> HttpCall:
        """The request that reads one task's status."""
        raise NotImplementedError(f"{self.name} has no async mode")

    def parse_status(self, status_code: int, body: Any) -> ProviderStatus:
        """The canonical status from the provider's answer, or raise a ``ProviderError``."""
        raise NotImplementedError(f"{self.name} has no async mode")

    def batch_status_call(self, provider_task_ids: list[str]) -> HttpCall:
        """One request that reads several tasks (providers with ``batch_poll``)."""
        raise NotImplementedError(f"{self.name} has no batch status query")

    def parse_batch_status(self, status_code: int, body: Any) -> dict[str, ProviderStatus]:
        """Provider task id -> status; ids the provider did not return are missing."""
        raise NotImplementedError(f"{self.name} has no batch status query")

    # -- sync dialect --------------------------------------------------------------------------
    def sync_call(self, request: ImageRequest, inputs: ProviderInputs) -> HttpCall:
        """The one request that answers with the image."""
        raise NotImplementedError(f"{self.name} has no sync mode")

    def parse_sync(self, status_code: int, body: Any) -> ProviderStatus:
        """The image(s) of a sync answer (``SUCCEEDED``), or raise a ``ProviderError``."""
        raise NotImplementedError(f"{self.name} has no sync mode")

    @abstractmethod
    def expected_latency_seconds(self, request: ImageRequest) -> float:
        """The documented typical duration of such a task (the first poll waits this long)."""

    # helpers shared by adapters ------------------------------------------------------------
    def bad_response(self, what: str) -> ProviderBadResponse:
        """A classified error for an answer that breaks the provider's documented shape."""
        return ProviderBadResponse(f"{self.name} answered {what}", provider=self.name)

    def rejected(
        self, message: str, *, moderation: bool = False, provider_code: str | None = None
    ) -> ProviderRejected:
        """A classified refusal; moderation refusals get the stable ``moderation_blocked``."""
        return ProviderRejected(
            f"{self.name}: {message}",
            provider=self.name,
            code="moderation_blocked" if moderation else "provider_rejected",
            provider_code=provider_code,
        )

    def task_failed(
        self, message: str, raw_status: str, provider_code: str | None = None
    ) -> ProviderError:
        """A provider task that ended badly (not retryable: the money question is settled)."""
        code = {"timeout": "provider_timeout", "cancelled": "provider_cancelled"}.get(
            raw_status, "provider_task_failed"
        )
        return ProviderError(
            f"{self.name}: {message}",
            provider=self.name,
            retryable=False,
            code=code,
            provider_code=provider_code,
        )

    def task_missing(self, message: str) -> ProviderError:
        """The provider does not know the task (expired, or never existed)."""
        return ProviderError(
            f"{self.name}: {message or 'task not found'}",
            provider=self.name,
            retryable=False,
            code="provider_task_missing",
        )


def looks_like_moderation(message: str) -> bool:
    """Heuristic shared by adapters whose moderation errors have no dedicated code."""
    lowered = message.lower()
    return any(w in lowered for w in ("moderation", "safety system", "content policy"))
