"""What the client API returns: mapped explicitly from the stored Task (never the item itself)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from image_gateway.images.thumbnail import THUMBNAIL_EDGE
from image_gateway.models.request import parse_s3_ref
from image_gateway.models.routing import RoutingDecision
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


class InputImageView(BaseModel):
    """One input of an edit: a reference image or the mask."""

    role: Literal["image", "mask"]
    url: str | None = Field(
        description="a short-lived download URL of the stored input, or the https URL as the "
        "caller gave it; None for an object outside the gateway's bucket (an inbox upload)"
    )


class RequestFields(BaseModel):
    """What the caller asked for, as a person reading a task looks for it."""

    prompt: str = Field(description="the prompt as submitted")
    quality: str = Field(description="auto, low, medium or high")
    output_format: str = Field(description="png, jpeg or webp")
    background: str = Field(description="auto, transparent or opaque")
    input_images: int = Field(description="reference images of an edit (the mask not counted)")
    size_requested: str | None = Field(
        description="the size asked for, canonical: auto, WxH or ratio@tier"
    )

    @staticmethod
    def of(task: Task) -> dict[str, Any]:
        """The request fields of ``task`` as keyword arguments of a view."""
        request = task.request
        return {
            "prompt": request.prompt,
            "quality": request.quality,
            "output_format": request.output_format,
            "background": request.background,
            "input_images": len(request.images),
            "size_requested": task.size_requested,
        }


class PartView(BaseModel):
    """One ended image of a task of n images (its outputs are the task's, in order)."""

    index: int = Field(description="0-based: the image's place in the task's outputs")
    task_id: str = Field(description="the part task that made it (GET /v1/tasks/{id} reads it)")
    status: str
    provider: str
    error: TaskError | None = None


class TaskView(RequestFields):
    """``GET /v1/tasks/{id}`` and the body of ``POST /v1/images``."""

    task_id: str
    status: str
    operation: str
    provider: str
    path: str | None = Field(description="the path planned when a provider took it")
    finished_by: str | None = Field(
        default=None,
        description="what ended it: callback, poll, dispatch (a sync call, or a failed "
        "hand-off), sweeper, cancel, compat, submit or parts (a task of n images); None while "
        "it runs",
    )
    model: str
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
    routing: RoutingDecision | None = Field(
        default=None,
        description="why it went where it went: the routing policy (and whether the request, "
        "the client or the stack chose it) and the ranking of providers it saw",
    )
    source: SourceObject | None = None
    batch_id: str | None = Field(default=None, description="the batch it is a line of")
    custom_id: str | None = Field(default=None, description="its line's custom_id")
    inputs: list[InputImageView] = Field(
        default_factory=list, description="an edit's reference images, then its mask"
    )
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
    n: int = Field(default=1, description="images asked for (1-10; docs/images-n.md)")
    parts: list[PartView] = Field(
        default_factory=list,
        description="n > 1: each image that ended so far (succeeded, or why not), by index",
    )
    parent_id: str | None = Field(
        default=None, description="a part: the task of n images it makes one image of"
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
        images_bucket: str | None = None,
    ) -> TaskView:
        """Map a task; ``presign`` turns an S3 key of ``images_bucket`` into a download URL."""
        return cls(
            **RequestFields.of(task),
            task_id=task.task_id,
            status=task.status.value,
            operation=task.operation.value,
            provider=task.provider,
            path=task.path,
            finished_by=task.finished_by,
            routing=task.routing,
            model=task.model,
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
            batch_id=task.batch_id,
            custom_id=task.custom_id,
            inputs=input_views(task, presign, images_bucket),
            deliveries=task.deliveries,
            url=f"{base_path}/v1/tasks/{task.task_id}",
            admitted_at=task.admitted_at,
            deadline_at=task.deadline_at,
            waiting_for=waiting_for(task),
            n=task.request.n,
            parts=[
                PartView(**e.model_dump(exclude={"outputs", "cost_estimate_usd"}))
                for e in task.parts
            ],
            parent_id=task.parent_id,
        )


def waiting_for(task: Task) -> str | None:
    """``client_limit`` or ``dispatch`` for a task still queued (see ``TaskView``), else None."""
    if task.status is not TaskStatus.QUEUED or task.is_parent:  # a parent: its parts wait
        return None
    return "client_limit" if task.admitted_at is None else "dispatch"


def input_views(
    task: Task, presign: Callable[[str], str], images_bucket: str | None
) -> list[InputImageView]:
    """The task's inputs with a URL a browser can show (stored ones presigned)."""

    def url(ref: str) -> str | None:
        if ref.startswith("https://"):
            return ref
        if not ref.startswith("s3://") or images_bucket is None:
            return None
        bucket, key = parse_s3_ref(ref)
        return presign(key) if bucket == images_bucket else None

    views = [InputImageView(role="image", url=url(ref)) for ref in task.request.images]
    if task.request.mask is not None:
        views.append(InputImageView(role="mask", url=url(task.request.mask)))
    return views


class TaskSummary(RequestFields):
    """One row of ``GET /v1/tasks``: enough for a gallery without reading each task."""

    task_id: str
    status: str
    operation: str
    provider: str
    created_at: datetime
    finished_at: datetime | None
    path: str | None = None
    finished_by: str | None = None
    size_produced: str | None = None
    cost_estimate_usd: float | None = None
    duration_ms: int | None = None
    error: TaskError | None = None
    n: int = Field(default=1, description="images asked for (1-10; docs/images-n.md)")
    output_url: str | None = Field(None, description="a short-lived URL of the first image")
    thumbnail_url: str | None = Field(
        None,
        description="a short-lived URL of the first image's "
        f"small preview (JPEG, at most {THUMBNAIL_EDGE} px a side), once made; else output_url",
    )

    @classmethod
    def from_task(cls, task: Task, *, presign: Callable[[str], str] | None = None) -> TaskSummary:
        """Map a task to its list row; ``presign`` (an S3 key to a URL) adds ``output_url``."""
        first = task.outputs[0] if task.outputs else None
        thumbnail = task.thumbnail_key
        return cls(
            **RequestFields.of(task),
            task_id=task.task_id,
            status=task.status.value,
            operation=task.operation.value,
            provider=task.provider,
            created_at=task.created_at,
            finished_at=task.finished_at,
            path=task.path,
            finished_by=task.finished_by,
            size_produced=task.size_produced,
            cost_estimate_usd=task.cost_estimate_usd,
            duration_ms=task.duration_ms(),
            error=task.error,
            n=task.request.n,
            output_url=None if first is None or presign is None else presign(first.key),
            thumbnail_url=None if thumbnail is None or presign is None else presign(thumbnail),
        )


class TaskBatch(BaseModel):
    """``GET /v1/tasks?ids=...``: the caller's tasks among the ids asked for, in full, in the
    order asked; the other ids (unknown, or another client's: the same to the caller)."""

    tasks: list[TaskView]
    not_found: list[str]


class TaskList(BaseModel):
    """A page of tasks, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    tasks: list[TaskSummary]
    next_cursor: str | None


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
