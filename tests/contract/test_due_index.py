"""DueIndex contract: ``InMemoryDueIndex`` and ``DynamoDBDueIndex`` (moto).

The sweeper's first look (``service/sweep_check.py``): false only when the sweep would find
no task due and no hold to check, true as soon as it would find either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from image_gateway.adapters.dynamodb_due import DynamoDBDueIndex
from image_gateway.adapters.dynamodb_limits import DynamoDBUsageLedger
from image_gateway.adapters.dynamodb_tasks import DynamoDBTaskStore
from image_gateway.limits.ports import ClientLimits, UsageHold, UsageLedger
from image_gateway.models.task import TaskStatus
from image_gateway.ports import TaskRepository
from image_gateway.sweep_ports import DueIndex

from tests.contract.conftest import TaskFactory
from tests.fakes.limits import START, InMemoryUsageLedger, ManualClock
from tests.fakes.stores import InMemoryDueIndex, InMemoryTaskStore

HOLD_CHECK = 1800.0  # the sweeper's hold_check_seconds
LIMITS = ClientLimits(
    requests_per_minute=100, max_running_tasks=10, max_queued_tasks=10, daily_budget_usd=None
)


@dataclass
class DueUnderTest:
    """The index, and the task store and ledger whose items it reads."""

    due: DueIndex
    tasks: TaskRepository
    ledger: UsageLedger
    clock: ManualClock

    def anything_due(self) -> bool:
        now = datetime.fromtimestamp(self.clock(), UTC)
        return self.due.anything_due(now, holds_older_than_seconds=HOLD_CHECK)


@pytest.fixture
def under_test(implementation: str, request: pytest.FixtureRequest) -> DueUnderTest:
    """An empty tasks table (or fakes), a clock at 2026-12-01."""
    clock = ManualClock(START)
    if implementation == "memory":
        tasks, ledger = InMemoryTaskStore(), InMemoryUsageLedger(clock=clock)
        return DueUnderTest(InMemoryDueIndex(tasks, ledger), tasks, ledger, clock)
    dynamodb, table = request.getfixturevalue("dynamodb"), request.getfixturevalue("tasks_table")
    return DueUnderTest(
        DynamoDBDueIndex(dynamodb, table),
        DynamoDBTaskStore(dynamodb, table),
        DynamoDBUsageLedger(dynamodb, table, clock=clock, pause=lambda _: None),
        clock,
    )


def _now(under_test: DueUnderTest) -> datetime:
    return datetime.fromtimestamp(under_test.clock(), UTC)


def test_nothing_is_due_on_an_empty_table(under_test: DueUnderTest) -> None:
    assert under_test.anything_due() is False


def test_an_open_task_is_due_once_its_check_time_has_come(
    under_test: DueUnderTest, make_task: TaskFactory
) -> None:
    # GIVEN an open task to be checked in a minute
    check_at = _now(under_test) + timedelta(minutes=1)
    under_test.tasks.create(make_task(status=TaskStatus.SUBMITTED, check_at=check_at))

    # THEN nothing is due now, and something is a minute later
    assert under_test.anything_due() is False
    under_test.clock.advance(60)
    assert under_test.anything_due() is True


def test_a_finished_task_whose_event_is_out_is_not_due(
    under_test: DueUnderTest, make_task: TaskFactory
) -> None:
    past = _now(under_test) - timedelta(minutes=1)
    done = make_task(status=TaskStatus.FAILED, check_at=past, events_published=[TaskStatus.FAILED])
    under_test.tasks.create(done)

    assert under_test.anything_due() is False


def test_a_hold_is_due_once_old_enough_and_not_once_claimed(under_test: DueUnderTest) -> None:
    # GIVEN a hold reserved now
    hold = under_test.ledger.reserve("c1", "t1", limits=LIMITS, cost_usd=0.0).hold
    assert isinstance(hold, UsageHold)

    # THEN it is not due before the check age, and due after it
    under_test.clock.advance(HOLD_CHECK - 5)
    assert under_test.anything_due() is False
    under_test.clock.advance(5)
    assert under_test.anything_due() is True

    # WHEN its task is seen (claimed) THEN nothing is due
    under_test.ledger.claim("t1")
    assert under_test.anything_due() is False
