"""Status changes with their events: the winner of each conditional write announces it, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from image_gateway.errors import Conflict
from image_gateway.models.task import Task, TaskError, TaskStatus, utc_now
from image_gateway.service.lifecycle import (
    cancel_task,
    change_status,
    expire_task,
    fail_task,
    publish_pending_event,
)
from image_gateway.service.refresh import refresh_task

from tests.fakes import FakeDependencies
from tests.unit.service.support import fox, submit_and_dispatch

BROKEN = TaskError(code="provider_task_failed", message="the provider gave up")


@pytest.fixture
def task(deps: FakeDependencies) -> Task:
    """A task mountsea-async has taken (submitted, Submitted event out)."""
    return submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task


def test_a_winning_change_says_changed_and_is_announced(deps: FakeDependencies, task: Task) -> None:
    # GIVEN a submitted task WHEN it is cancelled THEN changed=True and one Cancelled event
    outcome = change_status(deps, task.task_id, TaskStatus.CANCELLED, by="cancel")

    assert outcome.changed is True
    assert outcome.task.status is TaskStatus.CANCELLED
    assert outcome.task.events_published == [TaskStatus.SUBMITTED, TaskStatus.CANCELLED]
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted", "Image Task Cancelled"]


def test_a_losing_change_says_unchanged_and_returns_the_task_as_it_stands(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN a cancelled task WHEN a finaliser tries to mark it succeeded
    # THEN changed=False, the task is still cancelled, and no event is added
    change_status(deps, task.task_id, TaskStatus.CANCELLED, by="cancel")

    outcome = change_status(deps, task.task_id, TaskStatus.SUCCEEDED, by="callback")

    assert outcome.changed is False
    assert outcome.task.status is TaskStatus.CANCELLED
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted", "Image Task Cancelled"]


def test_running_is_recorded_without_an_event(deps: FakeDependencies, task: Task) -> None:
    # GIVEN a submitted task WHEN the provider starts it THEN running, and no event for that
    outcome = change_status(deps, task.task_id, TaskStatus.RUNNING, by="poll")

    assert (outcome.changed, outcome.task.status) == (True, TaskStatus.RUNNING)
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted"]


def test_a_failed_task_costs_nothing(deps: FakeDependencies) -> None:
    # GIVEN a priced task WHEN it fails THEN its estimate becomes 0 and the error is kept
    deps.configure(prices={"mountsea-async": {"per_image": {"1K": {"medium": 0.04}}}})
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task
    assert task.cost_estimate_usd == 0.04

    failed = fail_task(deps, task.task_id, BROKEN, by="poll").task

    assert (failed.status, failed.error, failed.cost_estimate_usd) == (
        TaskStatus.FAILED,
        BROKEN,
        0.0,
    )


def test_an_expired_task_says_its_deadline_passed(deps: FakeDependencies, task: Task) -> None:
    # GIVEN a submitted task WHEN it expires THEN deadline_exceeded naming its provider
    expired = expire_task(deps, task.task_id, by="sweeper").task

    assert expired.status is TaskStatus.EXPIRED
    assert expired.error is not None
    assert (expired.error.code, expired.error.provider) == ("deadline_exceeded", "mountsea-async")
    assert deps.events.for_task(task.task_id)[-1] == "Image Task Expired"


def test_an_event_the_bus_refuses_is_left_for_the_sweeper(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN EventBridge refusing the next event WHEN the task fails
    # THEN the status change stands, the event is not marked published, and the sweeper looks
    # at the task once the event recheck time has passed (not at once: it would race the winner)
    deps.events.refuse_next = 1

    outcome = fail_task(deps, task.task_id, BROKEN, by="poll")

    assert (outcome.changed, outcome.task.status) == (True, TaskStatus.FAILED)
    assert TaskStatus.FAILED not in deps.tasks.require(task.task_id).events_published
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted"]
    recheck = timedelta(seconds=deps.timing.event_recheck_seconds + 1)
    assert task.task_id not in list(deps.tasks.tasks_due(utc_now()))
    assert task.task_id in list(deps.tasks.tasks_due(utc_now() + recheck))


def test_a_pending_event_is_published_once_however_often_it_is_retried(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN a failed task whose event the bus refused
    deps.events.refuse_next = 1
    fail_task(deps, task.task_id, BROKEN, by="poll")

    # WHEN the pending event is published twice (sweeper runs, retries)
    publish_pending_event(deps, deps.tasks.require(task.task_id))
    publish_pending_event(deps, deps.tasks.require(task.task_id))

    # THEN exactly one Failed event went out, and it is marked published
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted", "Image Task Failed"]
    assert deps.tasks.require(task.task_id).events_published[-1] is TaskStatus.FAILED


# -- cancel --------------------------------------------------------------------------------------
def test_cancelling_an_open_task_announces_it(deps: FakeDependencies, task: Task) -> None:
    # GIVEN a submitted task WHEN the client cancels THEN cancelled with one Cancelled event
    cancelled = cancel_task(deps, task)

    assert cancelled.status is TaskStatus.CANCELLED
    assert deps.events.for_task(task.task_id).count("Image Task Cancelled") == 1


def test_cancelling_a_finished_task_is_a_409(deps: FakeDependencies, task: Task) -> None:
    # GIVEN a succeeded task WHEN the client cancels
    # THEN 409 task_not_cancellable naming its status, and no Cancelled event
    refresh_task(deps, task.task_id, by="poll")

    with pytest.raises(Conflict) as refused:
        cancel_task(deps, deps.tasks.require(task.task_id))

    assert refused.value.status_code == 409
    assert refused.value.code == "task_not_cancellable"
    assert refused.value.details == {"status": "succeeded"}
    assert "Image Task Cancelled" not in deps.events.for_task(task.task_id)


def test_a_cancel_based_on_a_stale_read_loses_to_the_finished_task(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN the client read the task while it was open, and it then succeeded
    stale = deps.tasks.require(task.task_id)
    refresh_task(deps, task.task_id, by="poll")

    # WHEN the cancel arrives THEN the write is refused on the stored status: 409, succeeded kept
    with pytest.raises(Conflict):
        cancel_task(deps, stale)

    assert deps.tasks.require(task.task_id).status is TaskStatus.SUCCEEDED
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted", "Image Task Succeeded"]


def test_a_cancel_landing_while_the_result_is_stored_wins_alone(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN the provider done and the finaliser storing the image
    # WHEN the client's cancel is written just before the finaliser's own write
    deps.tasks.before_next_transition(lambda: cancel_task(deps, deps.tasks.require(task.task_id)))

    result = refresh_task(deps, task.task_id, by="callback").task

    # THEN the task stays cancelled, with exactly one terminal event: Cancelled
    assert result.status is TaskStatus.CANCELLED
    assert result.outputs == []
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted", "Image Task Cancelled"]
