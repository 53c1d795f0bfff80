"""The versioned EventBridge events the gateway emits (schema: events/schema/)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from image_gateway.models.task import ImageOutput, SourceObject, Task, TaskError, TaskStatus

DETAIL_TYPES: dict[TaskStatus, str] = {
    TaskStatus.SUBMITTED: "Image Task Submitted",
    TaskStatus.SUCCEEDED: "Image Task Succeeded",
    TaskStatus.FAILED: "Image Task Failed",
    TaskStatus.CANCELLED: "Image Task Cancelled",
    TaskStatus.EXPIRED: "Image Task Expired",
}


class EventTimings(BaseModel):
    """When the task moved; durations are derived by subscribers if they need them."""

    created_at: datetime
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None


class TaskEventDetail(BaseModel):
    """``detail`` of every ``Image Task *`` event (schema version 1)."""

    model_config = ConfigDict(frozen=True)

    version: Literal["1"] = "1"
    event_id: str = Field(description="task_id:status; subscribers deduplicate on it")
    task_id: str
    client_id: str
    status: TaskStatus
    operation: str
    provider: str
    model: str
    outputs: list[ImageOutput]
    error: TaskError | None
    metadata: dict[str, str]
    timings: EventTimings
    cost_estimate_usd: float | None = None
    source: SourceObject | None = Field(
        default=None, description="the S3 inbox object the task was made from (inbox tasks only)"
    )

    @classmethod
    def from_task(cls, task: Task) -> TaskEventDetail:
        """Build the event for the task's current status."""
        return cls(
            event_id=f"{task.task_id}:{task.status.value}",
            task_id=task.task_id,
            client_id=task.client_id,
            status=task.status,
            operation=task.operation.value,
            provider=task.provider,
            model=task.model,
            outputs=task.outputs,
            error=task.error,
            metadata=task.metadata,
            timings=EventTimings(
                created_at=task.created_at,
                submitted_at=task.submitted_at,
                finished_at=task.finished_at,
                duration_ms=task.duration_ms(),
            ),
            cost_estimate_usd=task.cost_estimate_usd,
            source=task.source,
        )

    @property
    def detail_type(self) -> str:
        """The EventBridge ``detail-type`` for this status."""
        return DETAIL_TYPES[self.status]


def event_detail_schema() -> dict[str, object]:
    """The JSON Schema of ``detail`` (published as events/schema/image-task-event.v1.json)."""
    schema = TaskEventDetail.model_json_schema()
    schema["$id"] = "https://github.com/image-task-gateway/events/image-task-event.v1.json"
    schema["title"] = "Image Task event detail (version 1)"
    return schema
