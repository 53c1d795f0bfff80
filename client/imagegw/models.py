"""What the gateway answers, as typed, read-only records.

Parsing is lenient on purpose: fields the gateway adds later are kept in ``raw`` and ignored
here, and fields an older gateway lacks (``expected_seconds``) come back as ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "expired"})
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class TaskErrorInfo:
    """Why a task (or one provider attempt) failed."""

    code: str
    message: str
    provider: str | None = None
    retryable: bool = False

    @classmethod
    def parse(cls, data: Any) -> TaskErrorInfo | None:
        """The error, or None."""
        if not isinstance(data, dict):
            return None
        return cls(
            code=str(data.get("code", "unknown")),
            message=str(data.get("message", "")),
            provider=data.get("provider"),
            retryable=bool(data.get("retryable", False)),
        )


@dataclass(frozen=True)
class Output:
    """One finished image: where to download it (short-lived URL) and what it must be."""

    url: str
    key: str
    content_type: str
    width: int
    height: int
    bytes: int
    sha256: str

    @property
    def extension(self) -> str:
        """``png``, ``jpg`` or ``webp``."""
        return EXTENSIONS.get(self.content_type) or self.key.rsplit(".", 1)[-1]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Output:
        """From the task view's ``outputs[i]``."""
        return cls(
            url=str(data["url"]),
            key=str(data.get("key", "")),
            content_type=str(data.get("content_type", "application/octet-stream")),
            width=int(data.get("width", 0)),
            height=int(data.get("height", 0)),
            bytes=int(data.get("bytes", 0)),
            sha256=str(data.get("sha256", "")),
        )


@dataclass(frozen=True)
class StatusChange:
    """One entry of a task's history."""

    status: str
    at: datetime
    by: str


@dataclass(frozen=True)
class Attempt:
    """One try at one provider."""

    provider: str
    outcome: str
    at: datetime | None
    provider_task_id: str | None = None
    error: TaskErrorInfo | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class TaskInfo:
    """A snapshot of a task (``GET /v1/tasks/{id}``)."""

    task_id: str
    status: str
    operation: str
    provider: str
    path: str | None
    size_requested: str | None
    size_sent: str | None
    size_produced: str | None
    cost_estimate_usd: float | None
    created_at: datetime | None
    submitted_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    expected_seconds: float | None
    outputs: tuple[Output, ...]
    error: TaskErrorInfo | None
    history: tuple[StatusChange, ...]
    attempts: tuple[Attempt, ...]
    metadata: dict[str, str]
    raw: dict[str, Any] = field(repr=False, compare=False)
    prompt: str = ""
    quality: str | None = None
    output_format: str | None = None
    input_images: int = 0
    finished_by: str | None = None

    @property
    def state(self) -> tuple[object, ...]:
        """What a watcher sees change: status, provider, history, attempts, images, error.

        Not the download URLs: they are signed again at every read.
        """
        images = tuple(o.key for o in self.outputs)
        return (self.status, self.provider, self.history, self.attempts, images, self.error)

    @property
    def done(self) -> bool:
        """True once the task is terminal (succeeded, failed, cancelled, expired)."""
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        """True when the task made its image."""
        return self.status == "succeeded"

    @classmethod
    def parse(cls, data: dict[str, Any]) -> TaskInfo:
        """From the gateway's task view JSON."""
        return cls(
            task_id=str(data["task_id"]),
            status=str(data["status"]),
            operation=str(data.get("operation", "")),
            provider=str(data.get("provider", "")),
            path=data.get("path"),
            size_requested=data.get("size_requested"),
            size_sent=data.get("size_sent"),
            size_produced=data.get("size_produced"),
            cost_estimate_usd=_float(data.get("cost_estimate_usd")),
            created_at=_time(data.get("created_at")),
            submitted_at=_time(data.get("submitted_at")),
            finished_at=_time(data.get("finished_at")),
            duration_ms=data.get("duration_ms"),
            expected_seconds=_float(data.get("expected_seconds")),
            outputs=tuple(Output.parse(o) for o in data.get("outputs") or []),
            error=TaskErrorInfo.parse(data.get("error")),
            history=tuple(
                StatusChange(str(c["status"]), _time(c["at"]) or datetime.min, str(c.get("by", "")))
                for c in data.get("history") or []
            ),
            attempts=tuple(
                Attempt(
                    provider=str(a.get("provider", "")),
                    outcome=str(a.get("outcome", "")),
                    at=_time(a.get("at")),
                    provider_task_id=a.get("provider_task_id"),
                    error=TaskErrorInfo.parse(a.get("error")),
                    finished_at=_time(a.get("finished_at")),
                )
                for a in data.get("attempts") or []
            ),
            metadata=dict(data.get("metadata") or {}),
            raw=data,
            prompt=str(data.get("prompt") or ""),
            quality=data.get("quality"),
            output_format=data.get("output_format"),
            input_images=int(data.get("input_images") or 0),
            finished_by=data.get("finished_by"),
        )


@dataclass(frozen=True)
class TaskRow:
    """One row of ``GET /v1/tasks`` (newest first)."""

    task_id: str
    status: str
    operation: str
    provider: str
    created_at: datetime | None
    finished_at: datetime | None
    size_requested: str | None
    size_produced: str | None
    cost_estimate_usd: float | None
    duration_ms: int | None
    error: TaskErrorInfo | None
    output_url: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> TaskRow:
        """From one entry of the listing's ``tasks``."""
        return cls(
            task_id=str(data["task_id"]),
            status=str(data["status"]),
            operation=str(data.get("operation", "")),
            provider=str(data.get("provider", "")),
            created_at=_time(data.get("created_at")),
            finished_at=_time(data.get("finished_at")),
            size_requested=data.get("size_requested"),
            size_produced=data.get("size_produced"),
            cost_estimate_usd=_float(data.get("cost_estimate_usd")),
            duration_ms=data.get("duration_ms"),
            error=TaskErrorInfo.parse(data.get("error")),
            output_url=data.get("output_url"),
            raw=data,
        )


@dataclass(frozen=True)
class ProviderInfo:
    """One provider of ``GET /v1/providers``."""

    name: str
    enabled: bool
    default_rank: int | None
    capabilities: dict[str, Any]
    price: dict[str, Any] | None
    health: dict[str, Any] | None = None
    """Its circuit breaker: ``state`` (closed, open, half_open), ``until``, ``success_rate``."""

    @classmethod
    def parse(cls, data: dict[str, Any]) -> ProviderInfo:
        """From one entry of the answer's ``providers``."""
        return cls(
            name=str(data["name"]),
            enabled=bool(data.get("enabled", False)),
            default_rank=data.get("default_rank"),
            capabilities=dict(data.get("capabilities") or {}),
            price=data.get("price"),
            health=data.get("health"),
        )

    @property
    def breaker(self) -> str:
        """The breaker in a few words: ``closed``, ``open until 12:02:40``, ``half_open``."""
        health = self.health or {}
        state = str(health.get("state") or "-")
        until = health.get("until")
        return f"{state} until {str(until)[11:19]}" if state == "open" and until else state


class ImageOptions(TypedDict, total=False):
    """The request fields of ``POST /v1/images`` besides ``prompt``, ``images`` and ``mask``."""

    model: str
    size: str
    aspect_ratio: str
    resolution: Literal["1K", "2K", "4K"]
    size_policy: Literal["exact", "nearest"]
    quality: Literal["auto", "low", "medium", "high"]
    background: Literal["auto", "transparent", "opaque"]
    output_format: Literal["png", "jpeg", "webp"]
    output_compression: int
    moderation: Literal["auto", "low"]
    input_fidelity: Literal["high", "low"]
    n: int
    provider: str
    providers: list[str]
    callback_url: str
    metadata: dict[str, str]
