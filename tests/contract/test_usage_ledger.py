"""UsageLedger contract: ``InMemoryUsageLedger`` and ``DynamoDBUsageLedger`` (moto).

A reservation counts one request, its estimate and the task as running (a place is free and
nobody waits) or queued, or nothing when a limit refuses (rate first, then a full queue, then
budget), with the time to retry; the rate window and the UTC day start afresh; queued tasks
start oldest first, each exactly once, never past the running limit; a settlement frees the
task's place and turns the reservation into the final cost exactly once; the operator's limits
are read back; and no item grows with a client's open work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from image_gateway.adapters.dynamodb_limits import DynamoDBUsageLedger
from image_gateway.limits.ports import (
    Admission,
    ClientLimits,
    ClientState,
    LimitKind,
    LimitOverrides,
    Settlement,
    UsageHold,
    UsageLedger,
)

from tests.fakes.limits import START, InMemoryUsageLedger, ManualClock

GENEROUS = ClientLimits(
    requests_per_minute=100_000, max_running_tasks=100, max_queued_tasks=100, daily_budget_usd=None
)


def limits(
    rate: int = 100_000, running: int = 100, queued: int = 100, budget: float | None = None
) -> ClientLimits:
    """Client limits for one test."""
    return ClientLimits(
        requests_per_minute=rate,
        max_running_tasks=running,
        max_queued_tasks=queued,
        daily_budget_usd=budget,
    )


@dataclass
class LedgerUnderTest:
    """The port, its clock, and how the operator sets a client's limits."""

    ledger: UsageLedger
    clock: ManualClock
    set_limits: Any
    largest_item: Any  # () -> bytes of the largest item the ledger keeps (None: not measured)

    def admit(
        self, task_id: str, given: ClientLimits = GENEROUS, *, cost: float = 0.0, client: str = "c1"
    ) -> Admission:
        """Reserve ``task_id``; the admission."""
        return self.ledger.reserve(client, task_id, limits=given, cost_usd=cost)

    def reserve(
        self, task_id: str, given: ClientLimits = GENEROUS, *, cost: float = 0.0, client: str = "c1"
    ) -> UsageHold | LimitKind:
        """The hold, or the kind of limit that refused."""
        admission = self.admit(task_id, given, cost=cost, client=client)
        if admission.hold is not None:
            return admission.hold
        assert admission.refused is not None
        return admission.refused


@pytest.fixture
def under_test(implementation: str, request: pytest.FixtureRequest) -> LedgerUnderTest:
    """Empty counters and a clock 10 s into a minute of 2026-12-01."""
    clock = ManualClock(START)
    if implementation == "memory":
        fake = InMemoryUsageLedger(clock=clock)
        return LedgerUnderTest(fake, clock, fake.set_limits, lambda: None)
    dynamodb, table = request.getfixturevalue("dynamodb"), request.getfixturevalue("tasks_table")

    def set_limits(client_id: str, **values: float | str) -> None:
        names = ", ".join(f"{k} = :{k}" for k in values)
        dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": f"LIMITS#{client_id}"}, "sk": {"S": "LIMITS"}},
            UpdateExpression=f"SET {names}",
            ExpressionAttributeValues={
                f":{k}": {"S": v} if isinstance(v, str) else {"N": str(v)}
                for k, v in values.items()
            },
        )

    def largest_item() -> int:
        pages = dynamodb.get_paginator("scan").paginate(TableName=table)
        return max(len(json.dumps(item)) for page in pages for item in page["Items"])

    adapter = DynamoDBUsageLedger(dynamodb, table, clock=clock, pause=lambda _: None)
    return LedgerUnderTest(adapter, clock, set_limits, largest_item)


def test_a_reservation_counts_a_request_a_running_task_and_its_estimate(
    under_test: LedgerUnderTest,
) -> None:
    admission = under_test.admit("t1", cost=0.025)

    usage = under_test.ledger.usage("c1")
    assert admission.started is True
    assert admission.hold is not None
    assert (admission.hold.day, admission.hold.reserved_usd) == ("2026-12-01", 0.025)
    assert (usage.day, usage.spent_usd, usage.running, usage.queued, usage.window_requests) == (
        "2026-12-01",
        0.025,
        1,
        0,
        1,
    )
    assert usage.window_start == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert under_test.ledger.usage("another").running == 0


def test_over_the_running_limit_a_task_is_accepted_as_queued(
    under_test: LedgerUnderTest,
) -> None:
    given = limits(running=1)
    assert under_test.admit("t1", given).started is True

    second = under_test.admit("t2", given)

    assert second.hold is not None and second.started is False
    usage = under_test.ledger.usage("c1")
    assert (usage.running, usage.queued, usage.window_requests) == (1, 1, 2)
    assert under_test.ledger.is_running("c1", second.hold) is False


def test_while_tasks_wait_a_new_one_queues_behind_them_even_with_a_free_place(
    under_test: LedgerUnderTest,
) -> None:
    given = limits(running=1)
    first = under_test.admit("t1", given)
    under_test.admit("t2", given)  # queued
    assert first.hold is not None
    under_test.ledger.settle("c1", first.hold, cost_usd=0.0)  # a place is free, t2 still waits

    third = under_test.admit("t3", given)

    assert third.started is False  # oldest first: t2 gets the place, not the newcomer
    assert under_test.ledger.start_next("c1", limits=lambda: given) == ["t2"]


def test_a_client_with_nothing_queued_starts_nothing_without_reading_its_limits(
    under_test: LedgerUnderTest,
) -> None:
    given = limits(running=1)
    first = under_test.admit("t1", given)
    assert first.hold is not None
    under_test.ledger.settle("c1", first.hold, cost_usd=0.0)
    asked: list[int] = []

    def counted() -> ClientLimits:
        asked.append(1)
        return given

    assert under_test.ledger.start_next("c1", limits=counted) == []
    assert asked == []  # a finishing task's client usually has no queue: one read, not two
    under_test.admit("t2", limits(running=0))  # queued (no place)
    assert under_test.ledger.start_next("c1", limits=counted) == ["t2"]
    assert asked == [1]


def test_queued_tasks_start_oldest_first_as_places_free(under_test: LedgerUnderTest) -> None:
    given = limits(running=2)
    running = [under_test.admit(f"r{i}", given) for i in range(2)]
    for i in range(5):
        under_test.clock.advance(0.01)
        assert under_test.admit(f"q{i}", given).started is False
    assert under_test.ledger.start_next("c1", limits=lambda: given) == []  # no place is free

    for admission in running:
        assert admission.hold is not None
        assert under_test.ledger.settle("c1", admission.hold, cost_usd=0.0) is Settlement.RUNNING

    assert under_test.ledger.start_next("c1", limits=lambda: given) == ["q0", "q1"]
    assert under_test.ledger.start_next("c1", limits=lambda: given) == []
    usage = under_test.ledger.usage("c1")
    assert (usage.running, usage.queued) == (2, 3)


def test_a_queued_task_starts_once_however_many_ask(under_test: LedgerUnderTest) -> None:
    given = limits(running=1)
    first = under_test.admit("t1", given)
    queued = under_test.admit("t2", given)
    assert first.hold is not None and queued.hold is not None
    under_test.ledger.settle("c1", first.hold, cost_usd=0.0)

    starts = [under_test.ledger.start_next("c1", limits=lambda: given) for _ in range(3)]

    assert starts == [["t2"], [], []]
    assert under_test.ledger.is_running("c1", queued.hold) is True
    assert under_test.ledger.usage("c1").running == 1


def test_a_full_queue_refuses_and_writes_nothing(under_test: LedgerUnderTest) -> None:
    given = limits(running=1, queued=1)
    under_test.admit("t1", given)
    under_test.admit("t2", given)

    refused = under_test.admit("t3", given)

    assert (refused.refused, refused.retry_after_seconds) == (LimitKind.QUEUE_FULL, None)
    usage = under_test.ledger.usage("c1")
    assert (usage.running, usage.queued, usage.window_requests) == (1, 1, 2)


def test_a_queued_task_settled_before_it_started_leaves_the_queue(
    under_test: LedgerUnderTest,
) -> None:
    given = limits(running=1)
    first = under_test.admit("t1", given)
    cancelled = under_test.admit("t2", given)
    under_test.admit("t3", given)
    assert first.hold is not None and cancelled.hold is not None

    assert under_test.ledger.settle("c1", cancelled.hold, cost_usd=0.0) is Settlement.QUEUED
    under_test.ledger.settle("c1", first.hold, cost_usd=0.0)

    assert under_test.ledger.start_next("c1", limits=lambda: given) == ["t3"]
    usage = under_test.ledger.usage("c1")
    assert (usage.running, usage.queued) == (1, 0)


def test_over_the_rate_the_request_is_refused_until_the_next_window(
    under_test: LedgerUnderTest,
) -> None:
    given = limits(rate=2)
    assert isinstance(under_test.reserve("t1", given), UsageHold)
    assert isinstance(under_test.reserve("t2", given), UsageHold)

    admission = under_test.admit("t3", given)

    assert (admission.refused, admission.retry_after_seconds) == (LimitKind.RATE, 50)
    usage = under_test.ledger.usage("c1")
    assert (usage.running, usage.window_requests) == (2, 2)  # nothing of t3 was written
    under_test.clock.advance(50)
    assert isinstance(under_test.reserve("t3", given), UsageHold)


def test_a_budget_refuses_what_would_pass_it_until_the_next_utc_day(
    under_test: LedgerUnderTest,
) -> None:
    given = limits(budget=0.05)
    assert isinstance(under_test.reserve("t1", given, cost=0.025), UsageHold)
    assert isinstance(under_test.reserve("t2", given, cost=0.025), UsageHold)  # exactly 0.05

    admission = under_test.admit("t3", given, cost=0.025)

    assert admission.refused is LimitKind.BUDGET
    assert admission.retry_after_seconds == 12 * 3600 - 10  # to midnight UTC
    assert under_test.ledger.usage("c1").spent_usd == 0.05
    under_test.clock.advance(12 * 3600)
    assert isinstance(under_test.reserve("t3", given, cost=0.025), UsageHold)
    assert under_test.ledger.usage("c1").spent_usd == 0.025


def test_a_request_dearer_than_the_whole_budget_is_refused_without_a_write(
    under_test: LedgerUnderTest,
) -> None:
    assert under_test.reserve("t1", limits(budget=0.01), cost=0.02) is LimitKind.BUDGET

    assert under_test.ledger.usage("c1").window_requests == 0


def test_a_settlement_happens_once_however_often_it_is_asked(
    under_test: LedgerUnderTest,
) -> None:
    hold = under_test.reserve("t1", cost=0.04)
    assert isinstance(hold, UsageHold)
    assert isinstance(under_test.reserve("t2", cost=0.01), UsageHold)

    first = under_test.ledger.settle("c1", hold, cost_usd=0.0)  # failed: costs nothing
    again = under_test.ledger.settle("c1", hold, cost_usd=0.0)

    assert (first, again) == (Settlement.RUNNING, Settlement.NONE)
    usage = under_test.ledger.usage("c1")
    assert (usage.running, usage.spent_usd) == (1, 0.01)
    assert under_test.ledger.is_running("c1", hold) is None


def test_a_settlement_turns_the_reservation_into_the_final_estimate(
    under_test: LedgerUnderTest,
) -> None:
    hold = under_test.reserve("t1", cost=0.04)
    assert isinstance(hold, UsageHold)

    under_test.ledger.settle("c1", hold, cost_usd=0.025)  # a cheaper fallback made it

    assert under_test.ledger.usage("c1").spent_usd == 0.025


def test_a_reservation_made_again_for_the_same_task_counts_once(
    under_test: LedgerUnderTest,
) -> None:
    first = under_test.admit("t1", cost=0.01)

    again = under_test.admit("t1", cost=0.01)  # a retried delivery of the same upload

    assert again.hold == first.hold and again.started is True
    usage = under_test.ledger.usage("c1")
    assert (usage.running, usage.spent_usd, usage.window_requests) == (1, 0.01, 1)


def test_no_place_to_run_nor_to_wait_refuses_everything(under_test: LedgerUnderTest) -> None:
    assert under_test.reserve("t1", limits(rate=0)) is LimitKind.RATE
    assert under_test.reserve("t2", limits(running=0, queued=0)) is LimitKind.QUEUE_FULL


def test_a_running_limit_of_zero_queues_everything(under_test: LedgerUnderTest) -> None:
    paused = limits(running=0)  # the operator paused the client: its work waits

    admission = under_test.admit("t1", paused)

    assert admission.hold is not None and admission.started is False
    assert under_test.ledger.start_next("c1", limits=lambda: paused) == []
    assert under_test.ledger.start_next("c1", limits=lambda: limits(running=1)) == ["t1"]


def test_the_operators_limits_are_read_back(under_test: LedgerUnderTest) -> None:
    assert under_test.ledger.overrides("c1") == LimitOverrides()

    under_test.set_limits(
        "c1", requests_per_minute=5, max_queued_tasks=7, daily_budget_usd=0.05, routing="price"
    )

    assert under_test.ledger.overrides("c1") == LimitOverrides(
        requests_per_minute=5,
        max_running_tasks=None,
        max_queued_tasks=7,
        daily_budget_usd=0.05,
        routing="price",
    )
    assert under_test.ledger.overrides("c2") == LimitOverrides()


def test_the_limits_item_and_the_counts_are_read_together(under_test: LedgerUnderTest) -> None:
    assert under_test.ledger.client_state("c1") == ClientState(LimitOverrides(), 0, 0)
    under_test.set_limits("c1", max_running_tasks=1, routing="latency")
    under_test.admit("t1", limits(running=1))
    under_test.admit("t2", limits(running=1))

    state = under_test.ledger.client_state("c1")

    assert state == ClientState(LimitOverrides(max_running_tasks=1, routing="latency"), 1, 1)


def seen_reserve(
    under_test: LedgerUnderTest, task_id: str, given: ClientLimits, seen: ClientState
) -> Admission:
    """Reserve ``task_id`` deciding on counts read before (``seen``)."""
    return under_test.ledger.reserve("c1", task_id, limits=given, cost_usd=0.0, seen=seen)


def test_a_reservation_decided_on_counts_read_before_starts_the_task_when_they_still_hold(
    under_test: LedgerUnderTest,
) -> None:
    seen = under_test.ledger.client_state("c1")

    admission = seen_reserve(under_test, "t1", limits(running=1), seen)

    assert admission.hold is not None and admission.started is True
    assert under_test.ledger.usage("c1").running == 1


def test_counts_seen_free_but_taken_since_never_start_a_task_past_the_limit(
    under_test: LedgerUnderTest,
) -> None:
    given = limits(running=1)
    seen = under_test.ledger.client_state("c1")  # a free place...
    assert under_test.admit("t1", given).started is True  # ...taken meanwhile

    admission = seen_reserve(under_test, "t2", given, seen)

    assert admission.hold is not None and admission.started is False  # it queues instead
    usage = under_test.ledger.usage("c1")
    assert (usage.running, usage.queued) == (1, 1)


def test_counts_seen_full_but_freed_since_queue_the_task_for_the_next_start(
    under_test: LedgerUnderTest,
) -> None:
    given = limits(running=1)
    first = under_test.admit("t1", given)
    seen = under_test.ledger.client_state("c1")  # every place taken...
    assert first.hold is not None
    under_test.ledger.settle("c1", first.hold, cost_usd=0.0)  # ...one freed meanwhile

    admission = seen_reserve(under_test, "t2", given, seen)

    # the decision taken on what was seen holds (the queue has room); the submit that queued
    # a task starts its client's queue at once (service.submit), which gives it the place
    assert admission.hold is not None and admission.started is False
    assert under_test.ledger.start_next("c1", limits=lambda: given) == ["t2"]


def test_a_queue_seen_full_is_read_again_before_a_refusal(under_test: LedgerUnderTest) -> None:
    given = limits(running=1, queued=1)
    under_test.admit("t1", given)
    queued = under_test.admit("t2", given)
    seen = under_test.ledger.client_state("c1")  # running 1, queued 1: full...
    assert queued.hold is not None
    under_test.ledger.settle("c1", queued.hold, cost_usd=0.0)  # ...the queued one cancelled

    admission = seen_reserve(under_test, "t3", given, seen)

    assert admission.hold is not None and admission.started is False


def test_each_client_has_its_own_counters_and_queue(under_test: LedgerUnderTest) -> None:
    given = limits(running=1)
    under_test.admit("a1", given, client="a")
    under_test.admit("a2", given, client="a")  # a's queue

    b = under_test.admit("b1", given, client="b")

    assert b.started is True  # a's waiting task does not hold b back
    assert under_test.ledger.start_next("b", limits=lambda: given) == []


def test_a_day_later_the_spend_starts_at_zero_and_old_holds_settle_on_their_day(
    under_test: LedgerUnderTest,
) -> None:
    hold = under_test.reserve("t1", cost=0.03)
    assert isinstance(hold, UsageHold)
    under_test.clock.advance(timedelta(days=1).total_seconds())

    assert under_test.ledger.usage("c1").spent_usd == 0.0
    assert under_test.ledger.settle("c1", hold, cost_usd=0.0) is Settlement.RUNNING
    assert under_test.ledger.usage("c1").running == 0


OPEN_TASKS_HELD = {"memory": 10_000, "aws": 1_000}
"""Open tasks one client holds in the size test: moto answers about 100-150 reservations a
second in process, so its side holds 1,000 (10 s; it held 3,000, 30 s). What the test checks
is that no item grows with them: the old open-task set was 94 KB at 2,000 tasks, so ~47 KB at
1,000, over forty times the 1 KB the test allows, and it fails as surely; the fake holds the
issue's 10,000."""


def test_no_item_grows_with_a_clients_open_tasks(
    under_test: LedgerUnderTest, implementation: str
) -> None:
    # Given thousands of open tasks of one client (100 running, the rest queued)
    held = OPEN_TASKS_HELD[implementation]
    given = limits(running=100, queued=20_000)
    for i in range(held):
        under_test.admit(f"t{i:05d}", given, cost=0.001)
    usage = under_test.ledger.usage("c1")
    assert (usage.running, usage.queued) == (100, held - 100)

    # Then no item the ledger keeps is larger than a few hundred bytes
    largest = under_test.largest_item()
    if largest is not None:
        assert largest < 1024
    # and they still start in order and settle
    assert under_test.ledger.start_next("c1", limits=lambda: limits(running=101)) == ["t00100"]


def test_a_batch_prepays_its_estimate_and_its_tasks_hold_it_without_counting_it_again(
    under_test: LedgerUnderTest,
) -> None:
    # Given a client with a $1 budget that prepaid a batch of two $0.30 tasks
    given = limits(budget=1.0)
    day = under_test.ledger.prepay("c1", limits=given, cost_usd=0.6)

    # When both tasks reserve prepaid (over what the budget would still let a single task
    # reserve) and one ends at $0.20 and the other fails
    first = under_test.ledger.reserve("c1", "b1", limits=given, cost_usd=0.3, prepaid=True)
    second = under_test.ledger.reserve("c1", "b2", limits=given, cost_usd=0.3, prepaid=True)
    spent_while_open = under_test.ledger.usage("c1").spent_usd
    assert first.hold is not None and second.hold is not None
    under_test.ledger.settle("c1", first.hold, cost_usd=0.2)
    under_test.ledger.settle("c1", second.hold, cost_usd=0.0)

    # Then the day's spend was the batch's estimate while they ran and their cost after
    assert day == "2026-12-01"
    assert spent_while_open == 0.6
    assert under_test.ledger.usage("c1").spent_usd == 0.2


def test_a_prepayment_over_the_budget_is_refused_and_writes_nothing(
    under_test: LedgerUnderTest,
) -> None:
    under_test.admit("t1", limits(budget=1.0), cost=0.5)

    day = under_test.ledger.prepay("c1", limits=limits(budget=1.0), cost_usd=0.6)

    assert day is None
    assert under_test.ledger.usage("c1").spent_usd == 0.5


def test_a_refund_takes_back_part_of_a_prepayment(under_test: LedgerUnderTest) -> None:
    day = under_test.ledger.prepay("c1", limits=limits(budget=1.0), cost_usd=0.6)
    assert day is not None

    under_test.ledger.refund("c1", day, 0.25)

    assert under_test.ledger.usage("c1").spent_usd == 0.35


HOLD_CHECK = 1800.0  # the sweeper's hold_check_seconds


def _unclaimed(under_test: LedgerUnderTest) -> list[tuple[str, str]]:
    found = under_test.ledger.unclaimed_holds(older_than_seconds=HOLD_CHECK, limit=100)
    return sorted((u.client_id, u.hold.task_id) for u in found)


def test_a_hold_is_unclaimed_once_old_enough_until_claimed(under_test: LedgerUnderTest) -> None:
    # Given a running and a queued hold of two clients, reserved now
    running = under_test.reserve("t1", limits(running=1), cost=0.25)
    queued = under_test.reserve("t2", limits(running=1), cost=0.25)
    other = under_test.reserve("t3", cost=0.5, client="c2")
    assert isinstance(running, UsageHold) and isinstance(queued, UsageHold)

    # Then none is due before the check time, and each once it has passed, whole
    under_test.clock.advance(HOLD_CHECK - 5)
    assert _unclaimed(under_test) == []
    under_test.clock.advance(5)
    assert _unclaimed(under_test) == [("c1", "t1"), ("c1", "t2"), ("c2", "t3")]
    [found] = [
        u.hold
        for u in under_test.ledger.unclaimed_holds(older_than_seconds=HOLD_CHECK, limit=100)
        if u.hold.task_id == "t3"
    ]
    assert found == other

    # When one is claimed (its task exists) THEN it is never listed again, and still counts
    under_test.ledger.claim("t1")
    assert _unclaimed(under_test) == [("c1", "t2"), ("c2", "t3")]
    assert under_test.ledger.is_running("c1", running) is True
    # and a claimed hold starts and settles as any other
    assert under_test.ledger.settle("c1", running, cost_usd=0.25) is Settlement.RUNNING


def test_a_settled_hold_is_never_unclaimed_and_claiming_it_brings_nothing_back(
    under_test: LedgerUnderTest,
) -> None:
    hold = under_test.reserve("t1")
    assert isinstance(hold, UsageHold)
    under_test.ledger.settle("c1", hold, cost_usd=0.0)

    under_test.ledger.claim("t1")  # a sweeper that read the hold before it was settled
    under_test.ledger.claim("never-reserved")
    under_test.clock.advance(HOLD_CHECK + 1)

    assert _unclaimed(under_test) == []
    assert under_test.ledger.is_running("c1", hold) is None
    assert under_test.ledger.usage("c1").running == 0


def test_an_unclaimed_hold_settled_at_no_cost_gives_its_place_and_estimate_back(
    under_test: LedgerUnderTest,
) -> None:
    # Given a client at its running limit whose first hold's submit died, and one queued
    dead = under_test.reserve("t1", limits(running=1), cost=0.4)
    waiting = under_test.reserve("t2", limits(running=1), cost=0.1)
    assert isinstance(dead, UsageHold) and isinstance(waiting, UsageHold)
    under_test.clock.advance(HOLD_CHECK)

    # When the sweeper settles what it found unclaimed (t1: no task)
    [first, *_] = under_test.ledger.unclaimed_holds(older_than_seconds=HOLD_CHECK, limit=100)
    assert first.hold == dead
    assert under_test.ledger.settle(first.client_id, first.hold, cost_usd=0.0) is (
        Settlement.RUNNING
    )

    # Then its place goes to the queued task and its estimate is no longer spent
    assert under_test.ledger.start_next("c1", limits=lambda: limits(running=1)) == ["t2"]
    usage = under_test.ledger.usage("c1")
    assert (usage.running, usage.queued) == (1, 0)
    assert usage.spent_usd == pytest.approx(0.1)


def test_unclaimed_holds_come_at_most_limit_at_a_time(under_test: LedgerUnderTest) -> None:
    for i in range(5):
        under_test.reserve(f"t{i}", client=f"c{i}")  # spread over the check list's partitions
    under_test.clock.advance(HOLD_CHECK)

    first = under_test.ledger.unclaimed_holds(older_than_seconds=HOLD_CHECK, limit=2)
    for unclaimed in first:
        under_test.ledger.claim(unclaimed.hold.task_id)
    rest = under_test.ledger.unclaimed_holds(older_than_seconds=HOLD_CHECK, limit=10)

    assert len(first) == 2
    assert sorted(u.hold.task_id for u in [*first, *rest]) == [f"t{i}" for i in range(5)]
