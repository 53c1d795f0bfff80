"""A request for n images: a parent task and n parts of one image each (service.parts), on fakes."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from image_gateway.errors import ProviderError, TooManyRequests
from image_gateway.models.parts import part_id, record_part
from image_gateway.models.request import Operation
from image_gateway.models.task import ImageOutput, Task, TaskStatus, utc_now
from image_gateway.ports import TaskExists
from image_gateway.service.dispatch import dispatch
from image_gateway.service.lifecycle import cancel_task, publish_pending_event
from image_gateway.service.parts import PART_MISSING_AFTER
from image_gateway.service.refresh import refresh_task
from image_gateway.service.submit import submit_task
from image_gateway.service.sweep import sweep

from tests.fakes import FakeDependencies
from tests.unit.service.conftest import DepsFactory
from tests.unit.service.support import data_url, drain, fox, png

PRICES = {"mountsea-compat": {"per_image": {"1K": {"medium": 0.01}}}}
SYNC = {"provider": "mountsea-compat"}


def refused(error: str = "the prompt was refused") -> ProviderError:
    return ProviderError(
        error, provider="mountsea-compat", retryable=False, code="moderation_blocked"
    )


def test_n_images_become_n_parts_whose_outputs_end_on_the_parent_in_order(
    deps: FakeDependencies,
) -> None:
    # GIVEN a request for 3 images at a sync provider
    parent = submit_task(deps, fox(n=3, **SYNC), client_id="c").task

    # WHEN the dispatch function makes every queued attempt
    drain(deps)

    # THEN the parent succeeded with 3 outputs, one per part, stored under its own id
    done = deps.tasks.require(parent.task_id)
    assert (done.status, done.error) == (TaskStatus.SUCCEEDED, None)
    stem = f"{parent.task_id}/"
    assert [o.key.split(stem)[1] for o in done.outputs] == ["0.png", "1.png", "2.png"]
    assert [e.task_id for e in done.parts] == [part_id(parent.task_id, i) for i in range(3)]
    assert all(deps.images.exists(o.key) for o in done.outputs)
    # AND three provider calls were made, one per part
    assert len(deps.providers.calls_to("mountsea-compat", "sync")) == 3


def test_only_the_parent_is_announced_and_listed(deps: FakeDependencies) -> None:
    # GIVEN a request for 2 images, finished
    parent = submit_task(deps, fox(n=2, **SYNC), client_id="c").task
    drain(deps)

    # THEN the bus saw the parent's events only, once each
    assert deps.events.for_task(parent.task_id) == ["Image Task Submitted", "Image Task Succeeded"]
    assert deps.events.for_task(part_id(parent.task_id, 0)) == []
    # AND the client's listing names the parent alone
    listed = deps.tasks.list_for_client("c", limit=10, cursor=None).tasks
    assert [t.task_id for t in listed] == [parent.task_id]


def test_the_cost_is_per_image(deps: FakeDependencies) -> None:
    # GIVEN a price of $0.01 an image
    deps.configure(prices=PRICES)

    # WHEN 4 images are made
    parent = submit_task(deps, fox(n=4, size="1024x1024", quality="medium", **SYNC), client_id="c")
    drain(deps)

    # THEN the task costs 4 x $0.01, and the client's spend says the same
    assert deps.tasks.require(parent.task.task_id).cost_estimate_usd == 0.04
    assert deps.usage.usage("c").spent_usd == 0.04


def test_a_part_failed_at_every_provider_leaves_the_others_images_and_says_k_of_n(
    deps: FakeDependencies,
) -> None:
    # GIVEN 3 images, the first two made by the provider
    parent = submit_task(deps, fox(n=3, **SYNC), client_id="c").task
    queued = deps.dispatch_queue.take()
    for task_id, provider in queued[:2]:
        dispatch(deps, task_id, provider)

    # WHEN the third fails at the provider (not retryable: no fallback)
    deps.providers.script("mountsea-compat").sync_error = refused()
    dispatch(deps, *queued[2])

    # THEN the task succeeded with the 2 images made, and its error says 1 of 3 failed and why
    done = deps.tasks.require(parent.task_id)
    assert done.status is TaskStatus.SUCCEEDED and len(done.outputs) == 2
    assert done.error is not None and done.error.code == "partial_failure"
    assert done.error.message.startswith("1 of 3 images failed (2 made): image 2: moderation")
    assert [e.status for e in done.parts][2] is TaskStatus.FAILED


def test_every_part_failing_fails_the_task_with_the_providers_code(
    deps: FakeDependencies,
) -> None:
    # GIVEN a provider that refuses every call
    deps.providers.script("mountsea-compat").sync_error = refused()

    # WHEN 2 images are asked for
    parent = submit_task(deps, fox(n=2, **SYNC), client_id="c").task
    drain(deps)

    # THEN the task failed once, with the provider's code, naming both images
    done = deps.tasks.require(parent.task_id)
    assert done.status is TaskStatus.FAILED and done.outputs == []
    assert done.error is not None and done.error.code == "moderation_blocked"
    assert done.error.message.startswith("all 2 images failed (image 0: moderation_blocked")
    assert deps.events.for_task(parent.task_id) == ["Image Task Submitted", "Image Task Failed"]


def test_concurrent_part_completions_record_each_part_once_and_end_the_parent_once(
    deps: FakeDependencies,
) -> None:
    # GIVEN 10 parts held by a callback provider
    parent = submit_task(deps, fox(n=10, provider="apimart"), client_id="c").task
    drain(deps)
    parts = [part_id(parent.task_id, i) for i in range(10)]
    assert {deps.tasks.require(p).status for p in parts} == {TaskStatus.SUBMITTED}

    # WHEN every part's callback is finalised at the same moment, each twice
    start = threading.Barrier(20)

    def finalise(task_id: str) -> None:
        start.wait()
        refresh_task(deps, task_id, by="callback")

    threads = [threading.Thread(target=finalise, args=(p,)) for p in parts + parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN each part is on the parent once, in order, and the parent ended once
    done = deps.tasks.require(parent.task_id)
    assert [e.index for e in done.parts] == list(range(10))
    assert len(done.outputs) == 10 and done.status is TaskStatus.SUCCEEDED
    assert deps.events.for_task(parent.task_id).count("Image Task Succeeded") == 1


def test_a_part_reported_again_changes_nothing(deps: FakeDependencies) -> None:
    # GIVEN a finished task of 2 images
    parent = submit_task(deps, fox(n=2, **SYNC), client_id="c").task
    drain(deps)
    before = deps.tasks.require(parent.task_id)

    # WHEN a part's terminal change is reported again (a sweeper retry)
    part = deps.tasks.require(part_id(parent.task_id, 1))
    part.events_published.clear()
    publish_pending_event(deps, part)

    # THEN the parent is as it was, with its one event
    after = deps.tasks.require(parent.task_id)
    assert (after.parts, after.outputs, after.version) == (
        before.parts,
        before.outputs,
        before.version,
    )
    assert deps.events.for_task(parent.task_id).count("Image Task Succeeded") == 1


def test_cancelling_the_parent_cancels_its_open_parts_and_keeps_the_images_made(
    deps: FakeDependencies,
) -> None:
    # GIVEN 3 images, one already made
    parent = submit_task(deps, fox(n=3, **SYNC), client_id="c").task
    dispatch(deps, *deps.dispatch_queue.take()[0])

    # WHEN the client cancels the task
    cancelled = cancel_task(deps, deps.tasks.require(parent.task_id))

    # THEN it is cancelled with the image made, its other parts are cancelled, no call is made
    assert cancelled.status is TaskStatus.CANCELLED and len(cancelled.outputs) == 1
    statuses = [deps.tasks.require(part_id(parent.task_id, i)).status for i in range(3)]
    assert statuses == [TaskStatus.SUCCEEDED, TaskStatus.CANCELLED, TaskStatus.CANCELLED]
    drain(deps)
    assert len(deps.providers.calls_to("mountsea-compat", "sync")) == 1
    assert deps.events.for_task(parent.task_id) == ["Image Task Submitted", "Image Task Cancelled"]


def test_each_part_takes_a_running_place_and_the_rest_wait_their_turn(
    make_deps: DepsFactory,
) -> None:
    # GIVEN a client with 2 running places
    deps = make_deps(client_max_running_tasks=2)

    # WHEN 4 images are asked for
    parent = submit_task(deps, fox(n=4, **SYNC), client_id="c").task

    # THEN 2 parts run and 2 wait; all 4 are made as places free up
    assert (deps.usage.usage("c").running, deps.usage.usage("c").queued) == (2, 2)
    drain(deps)
    done = deps.tasks.require(parent.task_id)
    assert done.status is TaskStatus.SUCCEEDED and len(done.outputs) == 4


@pytest.mark.parametrize(
    ("limits", "code"),
    [
        ({"client_requests_per_minute": 3}, "rate_limited"),
        ({"client_max_running_tasks": 2, "client_max_queued_tasks": 1}, "queue_full"),
        ({"client_daily_budget_usd": 0.03}, "budget_exceeded"),
    ],
)
def test_a_request_whose_n_parts_do_not_fit_the_limits_is_refused_and_writes_nothing(
    make_deps: DepsFactory, limits: dict[str, float], code: str
) -> None:
    # GIVEN limits that take 3 images at $0.01 but not 4
    deps = make_deps(**limits)
    deps.configure(prices=PRICES)

    # WHEN 4 images are asked for
    with pytest.raises(TooManyRequests) as caught:
        submit_task(deps, fox(n=4, size="1024x1024", quality="medium", **SYNC), client_id="c")

    # THEN a 429 with the limit's code and advice, and no task, hold or call
    assert caught.value.code == code and "fewer images (n)" in caught.value.message
    assert deps.tasks.all() == [] and deps.dispatch_queue.take() == []


def test_the_same_idempotency_key_finds_the_same_parent(deps: FakeDependencies) -> None:
    first = submit_task(deps, fox(n=2, **SYNC), client_id="c", idempotency_key="k1")

    again = submit_task(deps, fox(n=2, **SYNC), client_id="c", idempotency_key="k1")

    assert again.replayed and again.task.task_id == first.task.task_id
    assert len(deps.tasks.all()) == 3  # the parent and its 2 parts, once


def open_parent(deps: FakeDependencies, *, recorded: int, age: timedelta) -> Task:
    """A parent of 2 images as a crash leaves it: open, ``recorded`` parts made and recorded,
    created ``age`` ago, due for the sweeper."""
    now = utc_now()
    parent = Task(
        task_id="tsk_p",
        client_id="c",
        operation=Operation.GENERATE,
        model="gpt-image-2",
        provider="mountsea-compat",
        status=TaskStatus.RUNNING,
        request=fox(n=2, **SYNC),
        created_at=now - age,
        updated_at=now - age,
        check_at=now - timedelta(seconds=1),
    )
    for index in range(recorded):
        output = ImageOutput(
            bucket="images",
            key=f"outputs/c/tsk_p/{index}.png",
            content_type="image/png",
            width=1024,
            height=1024,
            bytes=100,
            sha256="0" * 64,
        )
        part = parent.model_copy(
            update={
                "task_id": part_id("tsk_p", index),
                "status": TaskStatus.SUCCEEDED,
                "parent_id": "tsk_p",
                "part_index": index,
                "outputs": [output],
            }
        )
        record_part(parent, part)
    deps.tasks.create(parent)
    return parent


def test_the_sweeper_ends_a_parent_whose_last_recorder_died_before_ending_it(
    deps: FakeDependencies,
) -> None:
    # GIVEN a parent with both parts recorded, still open (a crash after the last record)
    open_parent(deps, recorded=2, age=timedelta(seconds=30))

    # WHEN the sweeper runs
    sweep(deps)

    # THEN the parent ended with both images and its one event
    done = deps.tasks.require("tsk_p")
    assert done.status is TaskStatus.SUCCEEDED and len(done.outputs) == 2
    assert deps.events.for_task("tsk_p") == ["Image Task Succeeded"]


def test_the_sweeper_waits_for_parts_still_at_work(deps: FakeDependencies) -> None:
    # GIVEN a young parent with one part recorded and the other not made yet
    open_parent(deps, recorded=1, age=timedelta(seconds=30))

    # WHEN the sweeper runs THEN the parent stays open (it never expires on its own)
    sweep(deps)

    assert deps.tasks.require("tsk_p").status is TaskStatus.RUNNING


def test_the_sweeper_records_a_part_never_made_as_failed(deps: FakeDependencies) -> None:
    # GIVEN a parent whose second part was never made (a crash mid-submit), long ago
    open_parent(deps, recorded=1, age=PART_MISSING_AFTER + timedelta(seconds=1))

    # WHEN the sweeper runs
    sweep(deps)

    # THEN the parent succeeded with the one image, saying the other was never submitted
    done = deps.tasks.require("tsk_p")
    assert done.status is TaskStatus.SUCCEEDED and len(done.outputs) == 1
    assert done.error is not None and done.error.code == "partial_failure"
    assert "image 1: dispatch_failed" in done.error.message


def test_a_part_refused_after_the_check_cancels_the_parts_made_and_fails_the_parent(
    deps: FakeDependencies,
) -> None:
    # GIVEN a task id whose second part's id is already taken (a part refused mid-submit)
    deps.tasks.create(
        open_parent(deps, recorded=0, age=timedelta(0)).model_copy(
            update={"task_id": "tsk_x_1", "parent_id": None, "parts": []}
        )
    )

    # WHEN 3 images are asked for under that id
    with pytest.raises(TaskExists):
        submit_task(deps, fox(n=3, **SYNC), client_id="c", task_id="tsk_x")

    # THEN the part made is cancelled and never called, and the parent failed saying why
    assert deps.tasks.require("tsk_x_0").status is TaskStatus.CANCELLED
    parent = deps.tasks.require("tsk_x")
    assert parent.status is TaskStatus.FAILED and parent.error is not None
    assert parent.error.message.startswith("image 1 of 3 was refused")
    drain(deps)
    assert deps.providers.calls_to("mountsea-compat", "sync") == []


def test_an_edit_of_n_images_stores_its_inputs_once(deps: FakeDependencies) -> None:
    # WHEN an edit of 2 images is asked for with an inline image
    parent = submit_task(deps, fox(n=2, images=[data_url(png(64, 64))], **SYNC), client_id="c").task
    drain(deps)

    # THEN the input was stored once, under the parent, and both parts were made from it
    assert [k for k in deps.images.objects if k.startswith("inputs/")] == [
        f"inputs/c/{parent.task_id}/0.png"
    ]
    done = deps.tasks.require(parent.task_id)
    assert done.status is TaskStatus.SUCCEEDED and len(done.outputs) == 2
