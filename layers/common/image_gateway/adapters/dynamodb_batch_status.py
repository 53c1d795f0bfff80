"""A batch's status writes: conditional updates of its item (``DynamoDBBatchStore``'s, whose
module holds the layout)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from image_gateway.adapters.dynamodb_batch_lines import batch_key
from image_gateway.batches.ports import BatchStatus
from image_gateway.models.task import TaskError


def set_status(
    ddb: Any,
    table: str,
    batch_id: str,
    target: BatchStatus,
    *,
    allowed_from: frozenset[BatchStatus],
    completed_at: datetime | None = None,
    results_key: str | None = None,
) -> bool:
    """A conditional update of ``status`` (and the completion's fields)."""
    values: dict[str, Any] = {":t": {"S": target.value}}
    sets = ["#s = :t"]
    for n, (name, value) in enumerate(
        (
            ("completed_at", completed_at and completed_at.isoformat()),
            ("results_key", results_key),
        )
    ):
        if value is not None:
            sets.append(f"{name} = :v{n}")
            values[f":v{n}"] = {"S": value}
    allowed = []
    for n, status in enumerate(sorted(allowed_from)):
        allowed.append(f":f{n}")
        values[f":f{n}"] = {"S": status.value}
    try:
        ddb.update_item(
            TableName=table,
            Key=batch_key(batch_id),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=f"#s IN ({', '.join(allowed)})",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values,
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def commit_input(
    ddb: Any,
    table: str,
    batch_id: str,
    *,
    total: int,
    invalid: int,
    estimate_usd: float,
    prepaid_day: str | None,
) -> bool:
    """``total``, ``invalid`` (and ``resolved``), the estimate and its day, and
    ``ingested``, if ``ingested`` is absent."""
    values: dict[str, Any] = {
        ":total": {"N": str(total)},
        ":invalid": {"N": str(invalid)},
        ":estimate": {"N": str(Decimal(str(round(estimate_usd, 6))))},
        ":yes": {"BOOL": True},
    }
    sets = "#total = :total, invalid = :invalid, estimated_cost_usd = :estimate, ingested = :yes"
    if prepaid_day is not None:
        sets += ", prepaid_day = :day"
        values[":day"] = {"S": prepaid_day}
    try:
        ddb.update_item(
            TableName=table,
            Key=batch_key(batch_id),
            UpdateExpression=f"SET {sets} ADD resolved :invalid",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(ingested)",
            ExpressionAttributeNames={"#total": "total"},
            ExpressionAttributeValues=values,
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def fail(ddb: Any, table: str, batch_id: str, error: TaskError, *, completed_at: datetime) -> bool:
    """``status = failed`` with ``error`` and ``completed_at``, if validating or cancelling
    and not ingested."""
    try:
        ddb.update_item(
            TableName=table,
            Key=batch_key(batch_id),
            UpdateExpression="SET #s = :failed, #e = :error, completed_at = :at",
            ConditionExpression="#s IN (:v, :c) AND attribute_not_exists(ingested)",
            ExpressionAttributeNames={"#s": "status", "#e": "error"},
            ExpressionAttributeValues={
                ":failed": {"S": BatchStatus.FAILED.value},
                ":error": {"S": error.model_dump_json(exclude_none=True)},
                ":at": {"S": completed_at.isoformat()},
                ":v": {"S": BatchStatus.VALIDATING.value},
                ":c": {"S": BatchStatus.CANCELLING.value},
            },
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
    return True
