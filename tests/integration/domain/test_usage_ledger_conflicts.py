"""DynamoDBUsageLedger under contention, which moto never produces: DynamoDB cancels a
transaction that meets another on the same items (``TransactionConflict``); the reservation is
tried again, and a conflict that never ends is an error, not a refusal. DynamoDB's answers are
stubbed at the wire (botocore's Stubber)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from image_gateway.adapters.dynamodb_limits import DynamoDBUsageLedger
from image_gateway.limits.ports import ClientLimits, LimitKind

from tests.fakes.limits import START

LIMITS = ClientLimits(requests_per_minute=10, max_open_tasks=10, daily_budget_usd=None)
DEADLINE = datetime.fromtimestamp(START + 900, UTC)


def _cancelled(stubber: Stubber, *codes: str) -> None:
    reasons: list[dict[str, Any]] = [{"Code": code} for code in codes]
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        service_message="Transaction cancelled",
        http_status_code=400,
        modeled_fields={"CancellationReasons": reasons},
    )


@pytest.fixture
def wired() -> tuple[DynamoDBUsageLedger, Stubber]:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    ledger = DynamoDBUsageLedger(
        client, "tasks", prune_after_seconds=3600, write_attempts=3, clock=lambda: START
    )
    return ledger, Stubber(client)


def test_a_reservation_that_met_another_transaction_is_tried_again(
    wired: tuple[DynamoDBUsageLedger, Stubber],
) -> None:
    ledger, stubber = wired
    _cancelled(stubber, "TransactionConflict", "None", "None")
    stubber.add_response("transact_write_items", {})

    with stubber:
        admission = ledger.reserve("c", "t1", limits=LIMITS, cost_usd=0.0, deadline=DEADLINE)

    assert admission.hold is not None and admission.refused is None
    stubber.assert_no_pending_responses()


def test_a_limit_is_told_apart_from_a_conflict(
    wired: tuple[DynamoDBUsageLedger, Stubber],
) -> None:
    ledger, stubber = wired
    _cancelled(stubber, "ConditionalCheckFailed", "TransactionConflict", "None")

    with stubber:
        admission = ledger.reserve("c", "t1", limits=LIMITS, cost_usd=0.0, deadline=DEADLINE)

    assert admission.refused is LimitKind.RATE


def test_a_conflict_that_never_ends_is_an_error(
    wired: tuple[DynamoDBUsageLedger, Stubber],
) -> None:
    ledger, stubber = wired
    for _ in range(3):
        _cancelled(stubber, "None", "TransactionConflict", "None")

    with stubber, pytest.raises(RuntimeError, match="kept conflicting"):
        ledger.reserve("c", "t1", limits=LIMITS, cost_usd=0.0, deadline=DEADLINE)
