"""DynamoDBUsageLedger under contention, which moto never produces: DynamoDB cancels a
transaction that meets another on the same items (``TransactionConflict``); it is tried again
after a jittered pause that grows, and a conflict that never ends is ``LedgerBusy`` (the API's
503 with Retry-After), never a refusal nor a 500. DynamoDB's answers are stubbed at the wire
(botocore's Stubber)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from image_gateway.adapters.dynamodb_limits import DynamoDBUsageLedger
from image_gateway.limits.ports import (
    ClientLimits,
    ClientState,
    LedgerBusy,
    LimitKind,
    LimitOverrides,
    Settlement,
    UsageHold,
)

from tests.fakes.limits import START

LIMITS = ClientLimits(
    requests_per_minute=10, max_running_tasks=10, max_queued_tasks=10, daily_budget_usd=None
)
NO_COUNTS: dict[str, Any] = {}  # a client with no counts item yet


def _cancelled(stubber: Stubber, *codes: str) -> None:
    reasons: list[dict[str, Any]] = [{"Code": code} for code in codes]
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        service_message="Transaction cancelled",
        http_status_code=400,
        modeled_fields={"CancellationReasons": reasons},
    )


def _counts(stubber: Stubber, running: int = 0) -> None:
    item = {"running": {"N": str(running)}} if running else {}
    stubber.add_response("get_item", {"Item": item} if item else {})


@pytest.fixture
def wired() -> tuple[DynamoDBUsageLedger, Stubber, list[float]]:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    pauses: list[float] = []
    ledger = DynamoDBUsageLedger(
        client,
        "tasks",
        write_attempts=3,
        backoff_seconds=0.02,
        clock=lambda: START,
        pause=pauses.append,
    )
    return ledger, Stubber(client), pauses


def test_a_reservation_that_met_another_transaction_is_tried_again_after_a_pause(
    wired: tuple[DynamoDBUsageLedger, Stubber, list[float]],
) -> None:
    ledger, stubber, pauses = wired
    _counts(stubber)
    _cancelled(stubber, "None", "TransactionConflict", "None", "None")
    _counts(stubber)
    stubber.add_response("transact_write_items", {})

    with stubber:
        admission = ledger.reserve("c", "t1", limits=LIMITS, cost_usd=0.0)

    assert admission.hold is not None and admission.started is True
    assert len(pauses) == 1 and 0 <= pauses[0] <= 0.02
    stubber.assert_no_pending_responses()


def test_a_limit_is_told_apart_from_a_conflict(
    wired: tuple[DynamoDBUsageLedger, Stubber, list[float]],
) -> None:
    ledger, stubber, _ = wired
    _counts(stubber)
    _cancelled(stubber, "ConditionalCheckFailed", "TransactionConflict", "None", "None")

    with stubber:
        admission = ledger.reserve("c", "t1", limits=LIMITS, cost_usd=0.0)

    assert admission.refused is LimitKind.RATE


def test_counts_that_moved_since_they_were_read_are_read_again(
    wired: tuple[DynamoDBUsageLedger, Stubber, list[float]],
) -> None:
    ledger, stubber, _ = wired
    _counts(stubber, running=9)
    _cancelled(stubber, "None", "ConditionalCheckFailed", "None", "None")  # the 10th place went
    _counts(stubber, running=10)
    stubber.add_response("transact_write_items", {})

    with stubber:
        admission = ledger.reserve("c", "t1", limits=LIMITS, cost_usd=0.0)

    assert admission.hold is not None and admission.started is False  # it queues instead


def test_counts_seen_by_the_caller_save_the_read(
    wired: tuple[DynamoDBUsageLedger, Stubber, list[float]],
) -> None:
    ledger, stubber, pauses = wired
    stubber.add_response("transact_write_items", {})  # no get_item before it

    with stubber:
        admission = ledger.reserve(
            "c", "t1", limits=LIMITS, cost_usd=0.0, seen=ClientState(LimitOverrides(), 0, 0)
        )

    assert admission.hold is not None and admission.started is True
    assert pauses == []
    stubber.assert_no_pending_responses()


def test_counts_that_moved_since_they_were_seen_are_read_without_a_pause(
    wired: tuple[DynamoDBUsageLedger, Stubber, list[float]],
) -> None:
    ledger, stubber, pauses = wired
    _cancelled(stubber, "None", "ConditionalCheckFailed", "None", "None")  # the place went
    _counts(stubber, running=10)
    stubber.add_response("transact_write_items", {})

    with stubber:
        admission = ledger.reserve(
            "c", "t1", limits=LIMITS, cost_usd=0.0, seen=ClientState(LimitOverrides(), 9, 0)
        )

    assert admission.hold is not None and admission.started is False  # it queues instead
    assert pauses == []
    stubber.assert_no_pending_responses()


def test_a_conflict_that_never_ends_is_ledger_busy_with_growing_pauses(
    wired: tuple[DynamoDBUsageLedger, Stubber, list[float]],
) -> None:
    ledger, stubber, pauses = wired
    for _ in range(3):
        _counts(stubber)
        _cancelled(stubber, "None", "TransactionConflict", "None", "None")

    with stubber, pytest.raises(LedgerBusy, match="kept changing"):
        ledger.reserve("c", "t1", limits=LIMITS, cost_usd=0.0)

    assert len(pauses) == 2
    assert pauses[0] <= 0.02 and pauses[1] <= 0.04


def test_a_settlement_that_met_another_is_tried_again(
    wired: tuple[DynamoDBUsageLedger, Stubber, list[float]],
) -> None:
    ledger, stubber, _ = wired
    hold = UsageHold(day="2026-12-01", reserved_usd=0.0, ticket="000000000000001#t1")
    held = {"Item": {"state": {"S": "running"}}}
    _cancelled(stubber, "None", "TransactionConflict", "None")  # the first try: no read
    stubber.add_response("get_item", held)
    stubber.add_response("transact_write_items", {})

    with stubber:
        settled = ledger.settle("c", hold, cost_usd=0.0)

    assert settled is Settlement.RUNNING
    stubber.assert_no_pending_responses()


def test_a_running_hold_is_settled_without_reading_it(
    wired: tuple[DynamoDBUsageLedger, Stubber, list[float]],
) -> None:
    # Given a hold that is running (a task that ended at its provider)
    ledger, stubber, pauses = wired
    hold = UsageHold(day="2026-12-01", reserved_usd=0.0, ticket="000000000000001#t1")
    stubber.add_response("transact_write_items", {})  # one call: no GetItem before it
    # When it is settled
    with stubber:
        settled = ledger.settle("c", hold, cost_usd=0.0)
    # Then the one transaction did it
    assert settled is Settlement.RUNNING
    assert pauses == []
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("stored", "expected"),
    [({"Item": {"state": {"S": "queued"}}}, Settlement.QUEUED), ({}, Settlement.NONE)],
)
def test_a_hold_that_is_not_running_is_read_and_settled_as_it_is(
    wired: tuple[DynamoDBUsageLedger, Stubber, list[float]],
    stored: dict[str, Any],
    expected: Settlement,
) -> None:
    # Given a hold still queued (its task cancelled while it waited), or already settled
    ledger, stubber, pauses = wired
    hold = UsageHold(day="2026-12-01", reserved_usd=0.0, ticket="000000000000001#t1")
    _cancelled(stubber, "ConditionalCheckFailed", "None", "None")  # not running: refused
    stubber.add_response("get_item", stored)
    if expected is Settlement.QUEUED:
        stubber.add_response("transact_write_items", {})
    # When it is settled
    with stubber:
        settled = ledger.settle("c", hold, cost_usd=0.0)
    # Then its state was read and settled at once (a wrong guess is not a conflict: no pause)
    assert settled is expected
    assert pauses == []
    stubber.assert_no_pending_responses()


def test_a_key_the_batch_read_left_unprocessed_is_read_on_its_own(
    wired: tuple[DynamoDBUsageLedger, Stubber, list[float]],
) -> None:
    # DynamoDB may leave keys of a BatchGetItem unread (throttling): the client's counts come
    # from a GetItem of their own, never taken as absent
    ledger, stubber, _ = wired
    counts_key = {"pk": {"S": "LIMITS#c"}, "sk": {"S": "COUNTS"}}
    limits_item = {"pk": {"S": "LIMITS#c"}, "sk": {"S": "LIMITS"}, "routing": {"S": "price"}}
    stubber.add_response(
        "batch_get_item",
        {
            "Responses": {"tasks": [limits_item]},
            "UnprocessedKeys": {"tasks": {"Keys": [counts_key], "ConsistentRead": True}},
        },
    )
    stubber.add_response(
        "get_item",
        {"Item": {**counts_key, "running": {"N": "3"}, "queued": {"N": "1"}}},
        {"TableName": "tasks", "Key": counts_key, "ConsistentRead": True},
    )

    with stubber:
        state = ledger.client_state("c")

    assert state == ClientState(LimitOverrides(routing="price"), running=3, queued=1)
    stubber.assert_no_pending_responses()
