"""Signed webhooks to callers: the filter a request asks for, the queued delivery, its record."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from image_gateway.models.task import DeliveryRecord, TaskStatus

__all__ = [
    "DEFAULT_CALLBACK_EVENTS",
    "WEBHOOK_FAILED_DETAIL_TYPE",
    "CallbackEvent",
    "DeliveryMessage",
    "DeliveryRecord",
    "WebhookFailedDetail",
    "callback_event_of",
    "webhook_id",
]

CallbackEvent = Literal["submitted", "running", "completed"]
"""What a request's ``callback_events`` may name (``completed`` = any terminal status)."""

DEFAULT_CALLBACK_EVENTS: tuple[CallbackEvent, ...] = ("completed",)


def callback_event_of(status: TaskStatus) -> CallbackEvent | None:
    """The filter name a status change belongs to (None: never delivered, e.g. ``queued``)."""
    if status.terminal:
        return "completed"
    if status is TaskStatus.SUBMITTED:
        return "submitted"
    if status is TaskStatus.RUNNING:
        return "running"
    return None


def webhook_id(task_id: str, status: TaskStatus) -> str:
    """The delivery's ``webhook-id``: one per task and status, stable across retries."""
    return f"msg_{task_id}_{status.value}"


class DeliveryMessage(BaseModel):
    """One attempt of one delivery, as queued for the delivery function."""

    model_config = ConfigDict(frozen=True)

    webhook_id: str
    task_id: str
    status: TaskStatus = Field(description="the status change the delivery announces")
    attempt: int = Field(ge=1, description="1 for the first try; a redelivery adds one")
    not_before: datetime | None = Field(
        default=None, description="not tried before this (waits over SQS's 15 min are chained)"
    )
    retries: bool = Field(default=True, description="False: a manual redelivery, tried once")
    batch_id: str | None = Field(
        default=None, description="a batch.completed delivery's batch (task_id is the batch's)"
    )


WEBHOOK_FAILED_DETAIL_TYPE = "Image Task Webhook Failed"


class WebhookFailedDetail(BaseModel):
    """``detail`` of the ``Image Task Webhook Failed`` event: a delivery's last attempt failed."""

    model_config = ConfigDict(frozen=True)

    version: Literal["1"] = "1"
    event_id: str = Field(description="webhook_id:failed; subscribers deduplicate on it")
    task_id: str
    client_id: str
    webhook_id: str
    event: str = Field(description="the delivery's type, e.g. image_task.succeeded")
    attempts: int
    last_error: str | None
    callback_url: str = Field(description="scheme, host and path only (no query string)")


def webhook_failed_schema() -> dict[str, object]:
    """The JSON Schema of the ``Image Task Webhook Failed`` event's ``detail``
    (published as events/schema/image-task-webhook-failed.v1.json)."""
    schema = WebhookFailedDetail.model_json_schema()
    schema["$id"] = "https://github.com/image-task-gateway/events/image-task-webhook-failed.v1.json"
    schema["title"] = f"{WEBHOOK_FAILED_DETAIL_TYPE} event detail (version 1)"
    return schema
