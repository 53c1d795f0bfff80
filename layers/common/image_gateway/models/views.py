"""What the client API returns: mapped explicitly from the stored Task (never the item itself)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from image_gateway.models.circuits import ProviderHealthView
from image_gateway.models.task import (
    DeliveryRecord,
    ImageOutput,
    ProviderAttempt,
    SourceObject,
    StatusChange,
    Task,
    TaskError,
    TaskStatus,
)


class OutputView(ImageOutput):
    """A finished image, with a short-lived download URL."""

    url: str


class TaskView(BaseModel):
    """``GET /v1/tasks/{id}`` and the body of ``POST /v1/images``."""

    task_id: str
    status: str
    operation: str
    provider: str
    path: str | None
    model: str
    size_requested: str | None
    size_sent: str | None
    size_produced: str | None
    cost_estimate_usd: float | None
    created_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    expected_seconds: float | None = Field(
        default=None,
        description="the provider's typical duration for this request (time-scaled): how "
        "long a caller should expect to wait, and when polling is worth it",
    )
    outputs: list[OutputView]
    error: TaskError | None
    metadata: dict[str, str]
    attempts: list[ProviderAttempt]
    history: list[StatusChange]
    source: SourceObject | None = None
    deliveries: list[DeliveryRecord] = Field(
        default_factory=list, description="webhook attempts to callback_url, oldest first"
    )
    url: str
    admitted_at: datetime | None = Field(
        default=None,
        description="when it got one of its client's running places; null while it waits in "
        "its client's queue",
    )
    deadline_at: datetime | None = Field(
        default=None,
        description="when it expires: the queue's bound (QueueTimeoutSeconds) until its first "
        "provider attempt, then the provider deadline counted from that attempt",
    )
    waiting_for: str | None = Field(
        default=None,
        description="why a queued task has not reached a provider yet: client_limit (every "
        "running place of its client is taken; it starts when one ends, oldest first) or "
        "dispatch (it has a place and waits for the dispatch function or a provider slot)",
    )

    @classmethod
    def from_task(
        cls,
        task: Task,
        *,
        presign: Callable[[str], str],
        base_path: str,
        expected_seconds: float | None = None,
    ) -> TaskView:
        """Map a task; ``presign`` turns an S3 key into a download URL."""
        return cls(
            task_id=task.task_id,
            status=task.status.value,
            operation=task.operation.value,
            provider=task.provider,
            path=task.path,
            model=task.model,
            size_requested=task.size_requested,
            size_sent=task.size_sent,
            size_produced=task.size_produced,
            cost_estimate_usd=task.cost_estimate_usd,
            created_at=task.created_at,
            submitted_at=task.submitted_at,
            finished_at=task.finished_at,
            duration_ms=task.duration_ms(),
            expected_seconds=expected_seconds,
            outputs=[OutputView(url=presign(o.key), **o.model_dump()) for o in task.outputs],
            error=task.error,
            metadata=task.metadata,
            attempts=task.attempts,
            history=task.history,
            source=task.source,
            deliveries=task.deliveries,
            url=f"{base_path}/v1/tasks/{task.task_id}",
            admitted_at=task.admitted_at,
            deadline_at=task.deadline_at,
            waiting_for=waiting_for(task),
        )


def waiting_for(task: Task) -> str | None:
    """``client_limit`` or ``dispatch`` for a task still queued (see ``TaskView``), else None."""
    if task.status is not TaskStatus.QUEUED:
        return None
    return "client_limit" if task.admitted_at is None else "dispatch"


class TaskSummary(BaseModel):
    """One row of ``GET /v1/tasks``: enough for a gallery without reading each task."""

    task_id: str
    status: str
    operation: str
    provider: str
    created_at: datetime
    finished_at: datetime | None
    path: str | None = None
    size_requested: str | None = None
    size_produced: str | None = None
    cost_estimate_usd: float | None = None
    duration_ms: int | None = None
    error: TaskError | None = None
    output_url: str | None = Field(
        default=None, description="a short-lived download URL of the first image, once made"
    )

    @classmethod
    def from_task(cls, task: Task, *, presign: Callable[[str], str] | None = None) -> TaskSummary:
        """Map a task to its list row; ``presign`` (an S3 key to a URL) adds ``output_url``."""
        first = task.outputs[0] if task.outputs else None
        return cls(
            task_id=task.task_id,
            status=task.status.value,
            operation=task.operation.value,
            provider=task.provider,
            created_at=task.created_at,
            finished_at=task.finished_at,
            path=task.path,
            size_requested=task.size_requested,
            size_produced=task.size_produced,
            cost_estimate_usd=task.cost_estimate_usd,
            duration_ms=task.duration_ms(),
            error=task.error,
            output_url=None if first is None or presign is None else presign(first.key),
        )


class TaskListQuery(BaseModel):
    """``GET /v1/tasks``'s query string (other parameters are ignored)."""

    limit: int = Field(20, ge=1, le=100, description="tasks per page")
    cursor: str | None = Field(
        None, max_length=2048, description="the next_cursor of the page before"
    )


class TaskList(BaseModel):
    """A page of tasks, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    tasks: list[TaskSummary]
    next_cursor: str | None


class ProviderView(BaseModel):
    """One row of ``GET /v1/providers``."""

    name: str
    enabled: bool
    default_rank: int | None = Field(description="its place in the default order (1 = first)")
    capabilities: dict[str, Any] = Field(
        description="modes, callback, batch_poll, max_images, mask, backgrounds, "
        "output_formats, output_compression, sizes"
    )
    price: dict[str, Any] | None = Field(
        description="USD per image by tier and quality (per_image) and its source, if configured"
    )
    health: ProviderHealthView = Field(
        default_factory=lambda: ProviderHealthView(state="closed"),
        description="its circuit breaker: state, until when it is open, recent success rate",
    )


class ProviderList(BaseModel):
    """``GET /v1/providers``: every provider this gateway knows, and the default order."""

    default_order: list[str]
    providers: list[ProviderView]


class WebhookSecretView(BaseModel):
    """``GET /v1/webhook-secret`` and ``POST /v1/webhook-secret/rotate``."""

    secret: str = Field(description="whsec_...: verify deliveries with it (Standard Webhooks)")
    previous_secret_valid_until: datetime | None = Field(
        default=None,
        description="after a rotation, deliveries are also signed with the "
        "previous secret until then",
    )


class WebhookRedelivery(BaseModel):
    """``POST /v1/tasks/{id}/webhooks/redeliver``: the attempt queued."""

    webhook_id: str = Field(description="the same id as the delivery it repeats")
    attempt: int = Field(description="this attempt's number")


class WebhookPayload(BaseModel):
    """The body of every signed webhook to a caller (schema version 1, Standard Webhooks)."""

    type: str = Field(
        description="image_task.submitted | running | succeeded | failed | cancelled | expired"
    )
    timestamp: datetime = Field(description="when the task reached that status")
    data: TaskView = Field(
        description="the task as it stands when the attempt is made (without deliveries); "
        "outputs carry a presigned download URL valid for OUTPUT_URL_TTL_SECONDS"
    )


def webhook_payload_schema() -> dict[str, object]:
    """The JSON Schema of a webhook body (published as events/schema/image-task-webhook.v1.json)."""
    schema = WebhookPayload.model_json_schema()
    schema["$id"] = "https://github.com/image-task-gateway/events/image-task-webhook.v1.json"
    schema["title"] = "Image Task webhook body (version 1)"
    return schema
