"""A batch's keys and its line items (``DynamoDBBatchStore``'s layout, see there)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from image_gateway.batches.ports import BatchLine
from image_gateway.models.task import TaskError


def batch_key(batch_id: str, sk: str = "BATCH") -> dict[str, Any]:
    """The key of a batch's item (``sk`` BATCH), or of another item of its partition."""
    return {"pk": {"S": f"BATCH#{batch_id}"}, "sk": {"S": sk}}


def line_sk(index: int) -> str:
    """A line's sort key: in index order."""
    return f"LINE#{index:06d}"


def line_item(batch_id: str, line: BatchLine) -> dict[str, Any]:
    """The line as an item (its body and error as JSON)."""
    item: dict[str, Any] = {
        **batch_key(batch_id, line_sk(line.index)),
        "custom_id": {"S": line.custom_id},
        "estimate_usd": {"N": str(Decimal(str(round(line.estimate_usd, 6))))},
    }
    if line.body is not None:
        item["body"] = {"S": json.dumps(line.body, separators=(",", ":"))}
    if line.task_id is not None:
        item["task_id"] = {"S": line.task_id}
    if line.error is not None:
        item["error"] = {"S": line.error.model_dump_json()}
    return item


def line_from_item(item: dict[str, Any]) -> BatchLine:
    """The line an item holds."""
    return BatchLine(
        index=int(item["sk"]["S"].removeprefix("LINE#")),
        custom_id=item["custom_id"]["S"],
        body=json.loads(item["body"]["S"]) if "body" in item else None,
        estimate_usd=float(Decimal(item.get("estimate_usd", {}).get("N", "0"))),
        task_id=item.get("task_id", {}).get("S"),
        error=TaskError.model_validate_json(item["error"]["S"]) if "error" in item else None,
        skipped="skipped" in item,
    )
