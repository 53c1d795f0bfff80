"""The bookkeeping of a task of n images (models.parts): each part once, and how the parent ends."""

from __future__ import annotations

import pytest
from image_gateway.models.parts import (
    AlreadyRecorded,
    parent_outcome,
    part_id,
    record_part,
)
from image_gateway.models.request import ImageRequest, Operation
from image_gateway.models.task import Task, TaskError, TaskStatus, utc_now

S, F, X = TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.EXPIRED


def parent(n: int) -> Task:
    now = utc_now()
    return Task(
        task_id="tsk_p",
        client_id="c",
        operation=Operation.GENERATE,
        model="gpt-image-2",
        provider="apimart",
        request=ImageRequest(prompt="a fox", n=n),
        created_at=now,
        updated_at=now,
    )


def part(of: Task, index: int, status: TaskStatus, cost: float | None = None) -> Task:
    error = None if status is S else TaskError(code=f"{status.value}_code", message="why")
    return of.model_copy(
        update={
            "task_id": part_id(of.task_id, index),
            "parent_id": of.task_id,
            "part_index": index,
            "status": status,
            "request": of.request.model_copy(update={"n": 1}),
            "error": error,
            "cost_estimate_usd": cost,
        }
    )


def ended(statuses: list[TaskStatus]) -> Task:
    task = parent(len(statuses))
    for index, status in enumerate(statuses):
        record_part(task, part(task, index, status))
    return task


def test_a_part_recorded_twice_is_refused_the_second_time() -> None:
    task = parent(2)
    record_part(task, part(task, 1, S))

    with pytest.raises(AlreadyRecorded):
        record_part(task, part(task, 1, S))

    assert [e.index for e in task.parts] == [1]


def test_parts_recorded_out_of_order_are_kept_in_order_with_their_cost_summed() -> None:
    task = parent(3)
    for index in (2, 0, 1):
        record_part(task, part(task, index, S, cost=0.01))

    assert [e.index for e in task.parts] == [0, 1, 2]
    assert task.cost_estimate_usd == 0.03


def test_a_parent_waiting_for_a_part_has_no_outcome_yet() -> None:
    task = parent(2)
    record_part(task, part(task, 0, S))

    assert parent_outcome(task) is None


@pytest.mark.parametrize(
    ("statuses", "status", "code"),
    [
        ([S, S], S, None),
        ([S, F, X], S, "partial_failure"),
        ([X, X], X, "expired_code"),
        ([F, X], F, "failed_code"),
    ],
)
def test_the_parent_ends_by_its_parts(
    statuses: list[TaskStatus], status: TaskStatus, code: str | None
) -> None:
    outcome = parent_outcome(ended(statuses))

    assert outcome is not None
    assert (outcome[0], outcome[1].code if outcome[1] else None) == (status, code)


def test_a_partial_failure_says_how_many_and_which() -> None:
    outcome = parent_outcome(ended([S, F, X]))

    assert outcome is not None and outcome[1] is not None
    assert outcome[1].message == (
        "2 of 3 images failed (1 made): image 1: failed_code; image 2: expired_code"
    )
