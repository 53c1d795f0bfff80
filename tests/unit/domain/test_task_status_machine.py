"""The task status machine (models/task.py), pinned pair by pair against a literal table."""

from __future__ import annotations

import itertools

import pytest
from image_gateway.models.task import TaskStatus, can_transition

Q, SUB, RUN, OK, FAIL, CAN, EXP = (
    TaskStatus.QUEUED,
    TaskStatus.SUBMITTED,
    TaskStatus.RUNNING,
    TaskStatus.SUCCEEDED,
    TaskStatus.FAILED,
    TaskStatus.CANCELLED,
    TaskStatus.EXPIRED,
)

# The documented machine, written out by hand: (current, target). Nothing leaves a terminal status.
ALLOWED = {
    (Q, SUB), (Q, FAIL), (Q, CAN), (Q, EXP),
    (SUB, RUN), (SUB, OK), (SUB, FAIL), (SUB, CAN), (SUB, EXP),
    (RUN, OK), (RUN, FAIL), (RUN, CAN), (RUN, EXP),
}  # fmt: skip
ALL_PAIRS = list(itertools.product(TaskStatus, repeat=2))
FORBIDDEN = [pair for pair in ALL_PAIRS if pair not in ALLOWED]


def pair_id(pair: tuple[TaskStatus, TaskStatus]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def test_the_table_covers_the_seven_statuses() -> None:
    assert len(TaskStatus) == 7
    assert len(ALL_PAIRS) == 49
    assert len(FORBIDDEN) == 36


@pytest.mark.parametrize("pair", sorted(ALLOWED), ids=pair_id)
def test_given_an_allowed_pair_when_checked_then_the_transition_is_allowed(
    pair: tuple[TaskStatus, TaskStatus],
) -> None:
    assert can_transition(*pair) is True


@pytest.mark.parametrize("pair", FORBIDDEN, ids=pair_id)
def test_given_any_other_pair_when_checked_then_the_transition_is_forbidden(
    pair: tuple[TaskStatus, TaskStatus],
) -> None:
    assert can_transition(*pair) is False


@pytest.mark.parametrize(
    ("status", "terminal"),
    [(Q, False), (SUB, False), (RUN, False), (OK, True), (FAIL, True), (CAN, True), (EXP, True)],
)
def test_given_a_status_when_asked_then_terminal_is_true_only_for_final_ones(
    status: TaskStatus, terminal: bool
) -> None:
    assert status.terminal is terminal
