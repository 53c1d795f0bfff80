"""DynamoDBTaskStore: tasks in DynamoDB (adapter of ``ports.TaskRepository``).

Item layout (one table, see template.yaml):
- ``pk=TASK#<id>, sk=TASK``: ``status``, ``client_id``, ``version``, ``doc`` (the Task as JSON);
  ``gsi1pk=CLIENT#<client>``, ``gsi1sk=<created iso>#<id>`` for listing a client's tasks
  (the keys-only ``ByClientKeys`` index; not on the parts of a task of n images: sparse);
  ``open_pk=OPEN#<shard>``, ``check_ts`` only while the task is open or its terminal event
  is not yet published (sparse GSI: what the sweeper looks at, and when);
  ``expires_at`` (TTL).
Every status change is a conditional update from an allowed previous status *and* the version
read, so two finalisers racing cannot both win, and forbidden transitions never happen.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from image_gateway.adapters.dynamodb_due import OPEN_SHARDS, TASK_SHARD, due_keys_of_shards
from image_gateway.errors import InvalidRequest
from image_gateway.models.task import (
    Task,
    TaskStatus,
    change_task,
    move_task,
    utc_now,
    write_optimistically,
)
from image_gateway.ports import TaskExists, TaskNotFound, TaskPage

BATCH_GET_KEYS = 100  # BatchGetItem's most keys per call
TASK_RETENTION = timedelta(days=90)
BY_CLIENT_INDEX = "ByClientKeys"
"""A client's tasks, batches, and every API key, newest first; keys only (docs/capacity.md)."""


def _task_key(task_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"TASK#{task_id}"}, "sk": {"S": "TASK"}}


def _open_shard(task_id: str) -> str:
    digest = hashlib.sha256(task_id.encode()).digest()
    return f"{TASK_SHARD}{digest[0] % OPEN_SHARDS}"


def table_keys(index_items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table keys (``pk``, ``sk``) of items read from a keys-only index."""
    return [{"pk": i["pk"], "sk": i["sk"]} for i in index_items]


def items_by_keys(
    dynamodb_client: Any, table: str, keys: Sequence[dict[str, Any]], *, attempts: int = 5
) -> list[dict[str, Any]]:
    """The items of ``keys`` that exist, in the order of ``keys``: BatchGetItem in chunks of 100
    keys (its limit), read consistently; unprocessed keys (throttling) are asked for again."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(keys), BATCH_GET_KEYS):
        ask = list(keys[start : start + BATCH_GET_KEYS])
        for attempt in range(attempts):
            answer = dynamodb_client.batch_get_item(
                RequestItems={table: {"Keys": ask, "ConsistentRead": True}}
            )
            for item in answer.get("Responses", {}).get(table, []):
                found[(item["pk"]["S"], item["sk"]["S"])] = item
            ask = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            if not ask:
                break
            time.sleep(min(0.05 * 2**attempt, 1.0))  # back off as DynamoDB asks
        else:
            raise RuntimeError(f"{len(ask)} keys of {table} stayed unprocessed (throttled)")
    ordered = (found.get((k["pk"]["S"], k["sk"]["S"])) for k in keys)
    return [item for item in ordered if item is not None]


class DynamoDBTaskStore:
    """Reads and writes tasks; the only code that knows the table's item layout."""

    def __init__(self, dynamodb_client: Any, table_name: str, *, write_attempts: int = 5) -> None:
        self._ddb = dynamodb_client
        self._table = table_name
        self._write_attempts = write_attempts

    # -- reading -----------------------------------------------------------------------------
    def get(self, task_id: str) -> Task | None:
        """The task, read consistently, or None."""
        item = self._ddb.get_item(
            TableName=self._table, Key=_task_key(task_id), ConsistentRead=True
        ).get("Item")
        return self._from_item(item) if item else None

    def require(self, task_id: str) -> Task:
        """The task, or raise :class:`TaskNotFound`."""
        task = self.get(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    def get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        """The tasks that exist, by id (:func:`items_by_keys`: read consistently like
        :meth:`get`)."""
        keys = [_task_key(i) for i in dict.fromkeys(task_ids)]
        items = items_by_keys(self._ddb, self._table, keys, attempts=self._write_attempts)
        return {(task := self._from_item(item)).task_id: task for item in items}

    def list_for_client(self, client_id: str, *, limit: int, cursor: str | None) -> TaskPage:
        """A page of the client's tasks, newest first; ``cursor`` comes from the previous page.

        The index holds keys only (a task's many writes do not copy it there); the page's tasks
        are read from the table. A task gone between the two reads is left out."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_CLIENT_INDEX,
            "KeyConditionExpression": "gsi1pk = :c",
            "ExpressionAttributeValues": {":c": {"S": f"CLIENT#{client_id}"}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            start = _decode_cursor(cursor)
            if start.get("gsi1pk", {}).get("S") != f"CLIENT#{client_id}":
                raise InvalidRequest("cursor does not belong to this listing", code="bad_cursor")
            kwargs["ExclusiveStartKey"] = start
        answer = self._ddb.query(**kwargs)
        items = items_by_keys(self._ddb, self._table, table_keys(answer.get("Items", [])))
        last = answer.get("LastEvaluatedKey")
        return TaskPage(
            tasks=[self._from_item(i) for i in items],
            next_cursor=_encode_cursor(last) if last else None,
        )

    def tasks_due(self, now: datetime, *, limit: int = 100) -> Iterator[str]:
        """Ids of tasks the sweeper should look at now (check_at passed), across all shards
        (up to ``limit`` of each, shard after shard; the shards are queried at once)."""
        (shards,) = due_keys_of_shards(
            self._ddb, self._table, (TASK_SHARD,), (now.timestamp(),), limit
        )
        for keys in shards:
            for key in keys:
                yield key["pk"]["S"].removeprefix("TASK#")

    # -- writing -----------------------------------------------------------------------------
    def create(self, task: Task) -> None:
        """Store a new task; a second create with the same id raises TaskExists."""
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=self._to_item(task),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise TaskExists(task.task_id) from None
            raise

    def transition(
        self,
        task_id: str,
        target: TaskStatus,
        *,
        by: str,
        change: Callable[[Task], None] | None = None,
        known: Task | None = None,
    ) -> Task:
        """Move the task to ``target`` (applying ``change`` to it first) or raise.

        Raises :class:`ForbiddenTransition` when the current status does not allow it, which is
        how a duplicate callback or a second poller learns that someone else already finished.
        ``known``: the task as this caller last read or wrote it; the first write starts from
        it instead of a GetItem (see :meth:`_update`).
        """
        return self._update(
            task_id, lambda task: move_task(task, target, by=by, change=change), known
        )

    def update(
        self, task_id: str, change: Callable[[Task], None], *, known: Task | None = None
    ) -> Task:
        """Change fields of a task without changing its status (optimistic concurrency)."""

        return self._update(task_id, lambda task: change_task(task, change), known)

    def _update(
        self, task_id: str, mutate: Callable[[Task], Task], known: Task | None = None
    ) -> Task:
        """:func:`write_optimistically` with this table's consistent read and conditional put
        (the finaliser passes ``known``: it re-read a task it had just read or written twice
        per finalisation)."""
        return write_optimistically(
            task_id,
            mutate,
            read=self.require,
            write=self._write,
            known=known,
            attempts=self._write_attempts,
        )

    def _write(self, updated: Task, read_version: int, read_status: TaskStatus) -> bool:
        """Put ``updated`` as the next version if the item is still as read; False if not."""
        updated.version = read_version + 1
        updated.updated_at = utc_now()
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=self._to_item(updated),
                ConditionExpression="version = :v AND #s = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":v": {"N": str(read_version)},
                    ":s": {"S": read_status.value},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    # -- mapping -----------------------------------------------------------------------------
    def _to_item(self, task: Task) -> dict[str, Any]:
        item: dict[str, Any] = {
            **_task_key(task.task_id),
            "task_id": {"S": task.task_id},
            "client_id": {"S": task.client_id},
            "status": {"S": task.status.value},
            "version": {"N": str(task.version)},
            "doc": {"S": task.model_dump_json()},
            "expires_at": {"N": str(int((task.created_at + TASK_RETENTION).timestamp()))},
        }
        if task.parent_id is None:  # a part of a task of n images is not listed on its own
            item["gsi1pk"] = {"S": f"CLIENT#{task.client_id}"}
            item["gsi1sk"] = {"S": f"{task.created_at.isoformat()}#{task.task_id}"}
        needs_sweeper = not task.status.terminal or task.status not in task.events_published
        if needs_sweeper and task.check_at is not None:
            item["open_pk"] = {"S": _open_shard(task.task_id)}
            item["check_ts"] = {"N": str(int(task.check_at.timestamp()))}
        return item

    @staticmethod
    def _from_item(item: dict[str, Any]) -> Task:
        task = Task.model_validate_json(item["doc"]["S"])
        task.version = int(item["version"]["N"])
        return task


def _encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def _decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidRequest(
            "cursor is not valid: pass next_cursor from the previous page", code="bad_cursor"
        ) from None
    valid = (
        isinstance(value, dict)
        and set(value) == {"pk", "sk", "gsi1pk", "gsi1sk"}
        and all(isinstance(v, dict) and isinstance(v.get("S"), str) for v in value.values())
    )
    if not valid:
        raise InvalidRequest(
            "cursor is not valid: pass next_cursor from the previous page", code="bad_cursor"
        )
    return dict(value)
