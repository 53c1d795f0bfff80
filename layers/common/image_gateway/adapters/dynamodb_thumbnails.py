"""DynamoDBThumbnailTasks: a task's first output and its thumbnail, on the task item itself
(adapter of ``thumbnail_ports.ThumbnailTasks``).

The thumbnail function's cold path loads no pydantic, so this reads the task's stored ``doc``
as plain JSON (``adapters.dynamodb_tasks`` documents the item) and names the thumbnail the way
every task write does: the whole doc with ``thumbnail_key`` set and the next ``version``, on
condition that the item still has the version read. A writer that read the task before
(``DynamoDBTaskStore``'s conditional writes) then finds the version moved on and writes again
from a fresh read, so neither write is lost. Only ``doc`` and ``version`` change: the index
keys and the TTL stay as the task's own writes left them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from image_gateway.images.metadata import task_object_metadata
from image_gateway.thumbnail_ports import FirstOutput

SUCCEEDED = "succeeded"


def _key(task_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"TASK#{task_id}"}, "sk": {"S": "TASK"}}  # as DynamoDBTaskStore's


def _stamp(now: datetime) -> str:
    """A time as the task model writes it (pydantic: ISO 8601, ``Z`` for UTC)."""
    return now.astimezone(UTC).isoformat().replace("+00:00", "Z")


class DynamoDBThumbnailTasks:
    """Reads a task's doc as JSON; names its thumbnail with a version-conditional write."""

    def __init__(self, dynamodb_client: Any, table_name: str, *, write_attempts: int = 5) -> None:
        self._ddb = dynamodb_client
        self._table = table_name
        self._write_attempts = write_attempts

    def _read(self, task_id: str) -> tuple[dict[str, Any], int] | None:
        item = self._ddb.get_item(
            TableName=self._table, Key=_key(task_id), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return json.loads(item["doc"]["S"]), int(item["version"]["N"])

    def first_output(self, task_id: str) -> FirstOutput | None:
        """The task's first output, if it has succeeded with one."""
        read = self._read(task_id)
        if read is None:
            return None
        doc, _ = read
        outputs = doc.get("outputs") or []
        if doc.get("status") != SUCCEEDED or not outputs:
            return None
        source = doc.get("source") or {}
        return FirstOutput(
            task_id=task_id,
            key=outputs[0]["key"],
            metadata=task_object_metadata(
                task_id,
                doc["client_id"],
                doc["provider"],
                source_bucket=source.get("bucket"),
                source_key=source.get("key"),
                source_version_id=source.get("version_id"),
            ),
            thumbnail_key=doc.get("thumbnail_key"),
        )

    def name_thumbnail(self, task_id: str, key: str) -> bool:
        """Set ``thumbnail_key`` on the task's doc (False: gone, or named already)."""
        for _ in range(self._write_attempts):
            read = self._read(task_id)
            if read is None:
                return False
            doc, version = read
            if doc.get("thumbnail_key") is not None:
                return False
            doc.update(thumbnail_key=key, version=version + 1, updated_at=_stamp(datetime.now(UTC)))
            try:
                self._ddb.update_item(
                    TableName=self._table,
                    Key=_key(task_id),
                    UpdateExpression="SET doc = :doc, version = :next",
                    ConditionExpression="version = :read",
                    ExpressionAttributeValues={
                        ":doc": {"S": json.dumps(doc, ensure_ascii=False, separators=(",", ":"))},
                        ":next": {"N": str(version + 1)},
                        ":read": {"N": str(version)},
                    },
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                continue  # someone wrote the task in between: read it again
            return True
        raise RuntimeError(f"task {task_id}: too much write contention")
