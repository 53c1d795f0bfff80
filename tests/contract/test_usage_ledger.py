"""UsageLedger contract: ``InMemoryUsageLedger`` and ``DynamoDBUsageLedger`` (moto).

A reservation counts one request, one open task and its estimate, or nothing when a limit
refuses (rate first, then open tasks, then budget), with the time to retry; the rate window
and the UTC day start afresh; a settlement frees the open task and turns the reservation
into the final cost exactly once; an entry never settled is pruned long after its deadline;
the operator's limits are read back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from image_gateway.adapters.dynamodb_limits import DynamoDBUsageLedger
from image_gateway.limits.ports import (
    ClientLimits,
    LimitKind,
    LimitOverrides,
    UsageHold,
    UsageLedger,
)

from tests.fakes.limits import START, InMemoryUsageLedger, ManualClock

PRUNE_AFTER = 3600.0
GENEROUS = ClientLimits(requests_per_minute=100, max_open_tasks=100, daily_budget_usd=None)


@dataclass
class LedgerUnderTest:
    """The port, its clock, and how the operator sets a client's limits."""

    ledger: UsageLedger
    clock: ManualClock
    set_limits: object

    def reserve(
        self,
        task_id: str,
        limits: ClientLimits = GENEROUS,
        *,
        cost: float = 0.0,
        client: str = "c1",
        deadline: datetime | None = None,
    ) -> UsageHold | LimitKind:
        """The hold, or the kind of limit that refused."""
        deadline = deadline or datetime.fromtimestamp(self.clock() + 900, UTC)
        admission = self.ledger.reserve(
            client, task_id, limits=limits, cost_usd=cost, deadline=deadline
        )
        if admission.hold is not None:
            return admission.hold
        assert admission.refused is not None
        return admission.refused


@pytest.fixture
def under_test(implementation: str, request: pytest.FixtureRequest) -> LedgerUnderTest:
    """Empty counters and a clock 10 s into a minute of 2026-12-01."""
    clock = ManualClock(START)
    if implementation == "memory":
        fake = InMemoryUsageLedger(clock=clock, prune_after_seconds=PRUNE_AFTER)
        return LedgerUnderTest(fake, clock, fake.set_limits)
    dynamodb, table = request.getfixturevalue("dynamodb"), request.getfixturevalue("tasks_table")

    def set_limits(client_id: str, **values: float) -> None:
        names = ", ".join(f"{k} = :{k}" for k in values)
        dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": f"LIMITS#{client_id}"}, "sk": {"S": "LIMITS"}},
            UpdateExpression=f"SET {names}",
            ExpressionAttributeValues={f":{k}": {"N": str(v)} for k, v in values.items()},
        )

    adapter = DynamoDBUsageLedger(dynamodb, table, prune_after_seconds=PRUNE_AFTER, clock=clock)
    return LedgerUnderTest(adapter, clock, set_limits)


def test_a_reservation_counts_a_request_an_open_task_and_its_estimate(
    under_test: LedgerUnderTest,
) -> None:
    hold = under_test.reserve("t1", cost=0.025)

    usage = under_test.ledger.usage("c1")
    assert isinstance(hold, UsageHold)
    assert (hold.day, hold.reserved_usd) == ("2026-12-01", 0.025)
    assert (usage.day, usage.spent_usd, usage.open_tasks, usage.window_requests) == (
        "2026-12-01",
        0.025,
        1,
        1,
    )
    assert usage.window_start == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert under_test.ledger.usage("another").open_tasks == 0


def test_over_the_rate_the_request_is_refused_until_the_next_window(
    under_test: LedgerUnderTest,
) -> None:
    limits = ClientLimits(requests_per_minute=2, max_open_tasks=100, daily_budget_usd=None)
    assert isinstance(under_test.reserve("t1", limits), UsageHold)
    assert isinstance(under_test.reserve("t2", limits), UsageHold)

    admission = under_test.ledger.reserve(
        "c1", "t3", limits=limits, cost_usd=0.0, deadline=datetime.now(UTC)
    )

    assert (admission.refused, admission.retry_after_seconds) == (LimitKind.RATE, 50)
    usage = under_test.ledger.usage("c1")
    assert (usage.open_tasks, usage.window_requests) == (2, 2)  # nothing of t3 was written
    under_test.clock.advance(50)
    assert isinstance(under_test.reserve("t3", limits), UsageHold)


def test_at_the_open_task_limit_a_request_waits_for_a_settlement(
    under_test: LedgerUnderTest,
) -> None:
    limits = ClientLimits(requests_per_minute=100, max_open_tasks=1, daily_budget_usd=None)
    first = under_test.reserve("t1", limits)
    assert isinstance(first, UsageHold)

    refused = under_test.ledger.reserve(
        "c1", "t2", limits=limits, cost_usd=0.0, deadline=datetime.now(UTC)
    )
    assert (refused.refused, refused.retry_after_seconds) == (LimitKind.OPEN_TASKS, None)
    assert under_test.ledger.usage("c1").window_requests == 1

    assert under_test.ledger.settle("c1", first, cost_usd=0.0) is True
    assert isinstance(under_test.reserve("t2", limits), UsageHold)


def test_a_budget_refuses_what_would_pass_it_until_the_next_utc_day(
    under_test: LedgerUnderTest,
) -> None:
    limits = ClientLimits(requests_per_minute=100, max_open_tasks=100, daily_budget_usd=0.05)
    assert isinstance(under_test.reserve("t1", limits, cost=0.025), UsageHold)
    assert isinstance(under_test.reserve("t2", limits, cost=0.025), UsageHold)  # exactly 0.05

    admission = under_test.ledger.reserve(
        "c1", "t3", limits=limits, cost_usd=0.025, deadline=datetime.now(UTC)
    )

    assert admission.refused is LimitKind.BUDGET
    assert admission.retry_after_seconds == 12 * 3600 - 10  # to midnight UTC
    assert under_test.ledger.usage("c1").spent_usd == 0.05
    under_test.clock.advance(12 * 3600)
    assert isinstance(under_test.reserve("t3", limits, cost=0.025), UsageHold)
    assert under_test.ledger.usage("c1").spent_usd == 0.025


def test_a_request_dearer_than_the_whole_budget_is_refused_without_a_write(
    under_test: LedgerUnderTest,
) -> None:
    limits = ClientLimits(requests_per_minute=100, max_open_tasks=100, daily_budget_usd=0.01)

    assert under_test.reserve("t1", limits, cost=0.02) is LimitKind.BUDGET

    assert under_test.ledger.usage("c1").window_requests == 0


def test_a_settlement_happens_once_however_often_it_is_asked(
    under_test: LedgerUnderTest,
) -> None:
    hold = under_test.reserve("t1", cost=0.04)
    assert isinstance(hold, UsageHold)
    assert isinstance(under_test.reserve("t2", cost=0.01), UsageHold)

    first = under_test.ledger.settle("c1", hold, cost_usd=0.0)  # failed: costs nothing
    again = under_test.ledger.settle("c1", hold, cost_usd=0.0)

    assert (first, again) == (True, False)
    usage = under_test.ledger.usage("c1")
    assert (usage.open_tasks, usage.spent_usd) == (1, 0.01)


def test_a_settlement_turns_the_reservation_into_the_final_estimate(
    under_test: LedgerUnderTest,
) -> None:
    hold = under_test.reserve("t1", cost=0.04)
    assert isinstance(hold, UsageHold)

    under_test.ledger.settle("c1", hold, cost_usd=0.025)  # a cheaper fallback made it

    assert under_test.ledger.usage("c1").spent_usd == 0.025


def test_an_open_entry_never_settled_is_pruned_long_after_its_deadline(
    under_test: LedgerUnderTest,
) -> None:
    limits = ClientLimits(requests_per_minute=1000, max_open_tasks=1, daily_budget_usd=None)
    deadline = datetime.fromtimestamp(START + 60, UTC)
    assert isinstance(under_test.reserve("lost", limits, deadline=deadline), UsageHold)
    under_test.clock.advance(60 + PRUNE_AFTER - 1)
    assert under_test.reserve("t2", limits) is LimitKind.OPEN_TASKS  # not yet

    under_test.clock.advance(2)

    assert isinstance(under_test.reserve("t2", limits), UsageHold)
    assert under_test.ledger.usage("c1").open_tasks == 1


def test_limits_of_zero_refuse_everything(under_test: LedgerUnderTest) -> None:
    no_rate = ClientLimits(requests_per_minute=0, max_open_tasks=10, daily_budget_usd=None)
    no_open = ClientLimits(requests_per_minute=10, max_open_tasks=0, daily_budget_usd=None)

    assert under_test.reserve("t1", no_rate) is LimitKind.RATE
    assert under_test.reserve("t2", no_open) is LimitKind.OPEN_TASKS


def test_the_operators_limits_are_read_back(under_test: LedgerUnderTest) -> None:
    assert under_test.ledger.overrides("c1") == LimitOverrides()

    under_test.set_limits("c1", requests_per_minute=5, daily_budget_usd=0.05)  # type: ignore[operator]

    assert under_test.ledger.overrides("c1") == LimitOverrides(
        requests_per_minute=5, max_open_tasks=None, daily_budget_usd=0.05
    )
    assert under_test.ledger.overrides("c2") == LimitOverrides()


def test_each_client_has_its_own_counters(under_test: LedgerUnderTest) -> None:
    limits = ClientLimits(requests_per_minute=1, max_open_tasks=1, daily_budget_usd=None)
    assert isinstance(under_test.reserve("t1", limits, client="c1"), UsageHold)

    assert isinstance(under_test.reserve("t2", limits, client="c2"), UsageHold)
    assert under_test.reserve("t3", limits, client="c1") is LimitKind.RATE


def test_a_day_later_the_spend_starts_at_zero_and_old_holds_settle_on_their_day(
    under_test: LedgerUnderTest,
) -> None:
    hold = under_test.reserve("t1", cost=0.03)
    assert isinstance(hold, UsageHold)
    under_test.clock.advance(timedelta(days=1).total_seconds())

    assert under_test.ledger.usage("c1").spent_usd == 0.0
    assert under_test.ledger.settle("c1", hold, cost_usd=0.0) is True
    assert under_test.ledger.usage("c1").open_tasks == 0
