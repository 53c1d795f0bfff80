"""The provider interface: every provider difference stops here.

An adapter is pure: it builds HTTP calls from the canonical request and parses the provider's
answers into one status model and one error model. ``ProviderClient`` does the I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from image_gateway.errors import ProviderBadResponse, ProviderError, ProviderRejected
from image_gateway.models.request import ImageRequest

if TYPE_CHECKING:
    from image_gateway.images.json_blobs import Blob


class ProviderState(StrEnum):
    """The canonical view of a provider-side task."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class ProviderInputs:
    """Input images as the provider will receive them (URLs or data URLs), mask included."""

    images: list[str] = field(default_factory=list)
    mask: str | None = None


@dataclass(frozen=True)
class HttpCall:
    """One HTTP request to a provider, relative to its base URL."""

    method: Literal["GET", "POST"]
    path: str
    json: dict[str, Any] | None = None
    params: dict[str, str] | None = None


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


class Provider(ABC):
    """One provider's dialect. Adding a provider = one subclass + one registry line."""

    name: ClassVar[str]
    supports_callback: ClassVar[bool]
    poll_interval_seconds: ClassVar[float]

    @abstractmethod
    def create_call(
        self, request: ImageRequest, inputs: ProviderInputs, callback_url: str | None
    ) -> HttpCall:
        """The create request; raises ``Unprocessable`` for what this provider cannot do."""

    @abstractmethod
    def parse_create(self, status_code: int, body: Any) -> str:
        """The provider's task id from the create answer, or raise a ``ProviderError``."""

    @abstractmethod
    def status_call(self, provider_task_id: str) -> HttpCall:
        """The request that reads one task's status."""

    @abstractmethod
    def parse_status(self, status_code: int, body: Any) -> ProviderStatus:
        """The canonical status from the provider's answer, or raise a ``ProviderError``."""

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


def looks_like_moderation(message: str) -> bool:
    """Heuristic shared by adapters whose moderation errors have no dedicated code."""
    lowered = message.lower()
    return any(w in lowered for w in ("moderation", "safety system", "content policy"))
