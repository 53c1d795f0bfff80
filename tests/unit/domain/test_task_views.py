"""The task's API views: the list row has what a gallery shows; the view the typical time."""

from __future__ import annotations

from image_gateway.models.task import ImageOutput, Task, TaskError, TaskStatus, utc_now
from image_gateway.models.views import TaskSummary, TaskView

from tests.unit.service.support import fox

OUTPUT = ImageOutput(
    bucket="images", key="outputs/c/1.png", content_type="image/png",
    width=1024, height=1536, bytes=10, sha256="ab",
)  # fmt: skip


def _task(**fields: object) -> Task:
    now = utc_now()
    values: dict[str, object] = dict(
        task_id="tsk_1", client_id="c", operation=fox().operation, model="gpt-image-2",
        provider="apimart", request=fox(), created_at=now, updated_at=now,
    )  # fmt: skip
    values.update(fields)
    return Task.model_validate(values)


def test_a_list_row_carries_sizes_cost_timing_error_and_a_link_to_the_image() -> None:
    task = _task(
        status=TaskStatus.SUCCEEDED, path="callback", size_requested="1024x1536",
        cost_estimate_usd=0.04, outputs=[OUTPUT], finished_at=utc_now(),
    )  # fmt: skip

    row = TaskSummary.from_task(task, presign=lambda key: f"https://signed/{key}")

    assert (row.path, row.size_requested, row.size_produced) == (
        "callback",
        "1024x1536",
        "1024x1536",
    )
    assert row.cost_estimate_usd == 0.04 and row.duration_ms is not None
    assert row.output_url == "https://signed/outputs/c/1.png"


def test_a_failed_row_has_its_error_and_no_image() -> None:
    error = TaskError(code="provider_task_failed", message="no")

    row = TaskSummary.from_task(_task(status=TaskStatus.FAILED, error=error), presign=str)

    assert row.error == error and row.output_url is None


def test_the_view_says_how_long_the_provider_typically_takes() -> None:
    view = TaskView.from_task(_task(), presign=str, base_path="", expected_seconds=0.6)

    assert view.expected_seconds == 0.6
