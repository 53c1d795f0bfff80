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


def test_a_list_row_says_how_many_images_were_asked() -> None:
    # GIVEN a task of three images, two made so far
    task = _task(request=fox(n=3), outputs=[OUTPUT, OUTPUT])

    # WHEN it is a row of GET /v1/tasks
    row = TaskSummary.from_task(task, presign=str)

    # THEN the row has n
    assert row.n == 3


def test_a_failed_row_has_its_error_and_no_image() -> None:
    error = TaskError(code="provider_task_failed", message="no")

    row = TaskSummary.from_task(_task(status=TaskStatus.FAILED, error=error), presign=str)

    assert row.error == error and row.output_url is None


def test_the_view_says_how_long_the_provider_typically_takes() -> None:
    view = TaskView.from_task(_task(), presign=str, base_path="", expected_seconds=0.6)

    assert view.expected_seconds == 0.6


def test_the_view_and_the_row_carry_what_was_asked() -> None:
    # GIVEN an edit of two images with a mask, asked in high quality as webp
    request = fox(
        images=["s3://images/inputs/c/tsk_1/0", "https://example.com/b.png"],
        mask="s3://images/inputs/c/tsk_1/mask",
        quality="high",
        output_format="webp",
    )
    task = _task(request=request, operation=request.operation, size_requested="1024x1024")

    # WHEN viewed THEN the prompt, quality, format, size asked and input count are there
    view = TaskView.from_task(task, presign=str, base_path="", images_bucket="images")
    row = TaskSummary.from_task(task, presign=str)
    for shown in (view, row):
        assert (shown.prompt, shown.quality, shown.output_format) == (
            "a fox in the snow",
            "high",
            "webp",
        )
        assert (shown.input_images, shown.size_requested) == (2, "1024x1024")


def test_the_view_links_an_edits_inputs_stored_ones_presigned() -> None:
    # GIVEN an edit with a stored input, a caller's URL, and an object of another bucket as mask
    request = fox(
        images=["s3://images/inputs/c/tsk_1/0", "https://example.com/b.png"],
        mask="s3://inbox/products/a.mask.png",
    )
    task = _task(request=request, operation=request.operation)

    # WHEN viewed THEN the stored one is presigned, the URL kept, the other bucket's left out
    view = TaskView.from_task(
        task, presign=lambda key: f"https://signed/{key}", base_path="", images_bucket="images"
    )
    assert [(i.role, i.url) for i in view.inputs] == [
        ("image", "https://signed/inputs/c/tsk_1/0"),
        ("image", "https://example.com/b.png"),
        ("mask", None),
    ]


def test_a_row_links_the_thumbnail_once_it_is_made() -> None:
    # GIVEN a succeeded task, first without a thumbnail, then with one
    task = _task(status=TaskStatus.SUCCEEDED, outputs=[OUTPUT], finished_at=utc_now())
    sign = "https://signed/{}".format

    # WHEN listed THEN the row's thumbnail_url follows the task's thumbnail_key
    assert TaskSummary.from_task(task, presign=sign).thumbnail_url is None
    task.thumbnail_key = "outputs/c/1.thumb.jpg"
    assert TaskSummary.from_task(task, presign=sign).thumbnail_url == sign(task.thumbnail_key)


def test_the_view_names_what_ended_the_task() -> None:
    task = _task(status=TaskStatus.SUCCEEDED, finished_by="sweeper", finished_at=utc_now())

    assert TaskView.from_task(task, presign=str, base_path="").finished_by == "sweeper"
