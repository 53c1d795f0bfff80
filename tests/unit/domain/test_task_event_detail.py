"""TaskEventDetail.from_task: the versioned detail of every ``Image Task *`` event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from image_gateway.models.events import TaskEventDetail
from image_gateway.models.request import ImageRequest, Operation
from image_gateway.models.task import ImageOutput, Task, TaskError, TaskStatus

CREATED = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def finished_task(status: TaskStatus, **fields: object) -> Task:
    return Task(
        task_id="task-42",
        client_id="client-a",
        status=status,
        operation=Operation.EDIT,
        model="gpt-image-2",
        provider="apimart",
        request=ImageRequest(
            prompt="x", images=["https://images.example.com/a.png"], metadata={"order": "7"}
        ),
        created_at=CREATED,
        updated_at=CREATED,
        submitted_at=CREATED + timedelta(seconds=1),
        finished_at=CREATED + timedelta(seconds=42, milliseconds=500),
        **fields,
    )


@pytest.mark.parametrize(
    ("status", "detail_type"),
    [
        (TaskStatus.SUBMITTED, "Image Task Submitted"),
        (TaskStatus.SUCCEEDED, "Image Task Succeeded"),
        (TaskStatus.FAILED, "Image Task Failed"),
        (TaskStatus.CANCELLED, "Image Task Cancelled"),
        (TaskStatus.EXPIRED, "Image Task Expired"),
    ],
)
def test_given_a_status_when_building_the_event_then_detail_type_and_event_id_follow_it(
    status: TaskStatus, detail_type: str
) -> None:
    detail = TaskEventDetail.from_task(finished_task(status))

    assert (detail.detail_type, detail.event_id) == (detail_type, f"task-42:{status.value}")


def test_given_a_succeeded_task_when_building_the_event_then_it_carries_outputs_and_timings() -> (
    None
):
    output = ImageOutput(
        bucket="images",
        key="outputs/client-a/2025/05/01/task-42/0.png",
        content_type="image/png",
        width=1024,
        height=1024,
        bytes=1234,
        sha256="ab" * 32,
    )

    detail = TaskEventDetail.from_task(finished_task(TaskStatus.SUCCEEDED, outputs=[output]))

    assert detail.version == "1"
    assert (detail.operation, detail.metadata) == ("edit", {"order": "7"})
    assert detail.outputs == [output]
    assert detail.timings.duration_ms == 42_500


def test_given_a_failed_task_when_building_the_event_then_it_carries_the_error() -> None:
    error = TaskError(code="moderation_blocked", message="refused", provider="apimart")

    detail = TaskEventDetail.from_task(finished_task(TaskStatus.FAILED, error=error))

    assert detail.error == error
