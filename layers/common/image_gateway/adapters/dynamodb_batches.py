"""DynamoDBBatchStore: batches in the tasks table (adapter of ``batches.ports.BatchStore``).

Item layout (one partition per batch):
- ``BATCH#<id>`` / ``BATCH``: ``status``, the counters (numbers, see ``batches.ports``) with
  ``resolved`` (lines that are a task or an error row) and ``ended``, so that "every task has
  ended" is a condition on the item itself (``resolved = total AND ended = created``);
  ``final_cost_usd``; ``finished_by``, ``completed_at``, ``results_key``; an input file's
  ``ingested``, ``estimated_cost_usd`` and ``prepaid_day`` once its lines are counted, or a
  failed batch's ``error``; ``doc`` (the rest as
  JSON); ``gsi1pk=BATCHES#<client>``, ``gsi1sk=<created iso>#<id>`` (the ByClientKeys index lists a
  client's batches apart from its tasks);
- ``BATCH#<id>`` / ``LINE#<index>``: ``custom_id``, ``body``, ``estimate_usd``, ``task_id`` (the
  creation's marker), ``error``, ``skipped``;
- ``BATCH#<id>`` / ``START#<task>`` and ``END#<task>``: the per-task markers of a start and an
  end, each put in the same transaction as its ``ADD``, only if absent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from image_gateway.adapters import dynamodb_batch_status as status_writes
from image_gateway.adapters.dynamodb_batch_lines import (
    batch_key,
    line_from_item,
    line_item,
    line_sk,
)
from image_gateway.adapters.dynamodb_tasks import (
    BY_CLIENT_INDEX,
    TASK_RETENTION,
    _decode_cursor,
    _encode_cursor,
    items_by_keys,
    table_keys,
)
from image_gateway.adapters.dynamodb_transactions import Conflict, Transactions
from image_gateway.batches.ports import (
    ENDED_COUNTERS,
    Batch,
    BatchCounters,
    BatchExists,
    BatchLine,
    BatchPage,
    BatchStatus,
)
from image_gateway.errors import InvalidRequest, ServiceBusy
from image_gateway.models.task import TaskError, TaskStatus

_COUNTERS = tuple(BatchCounters.model_fields)
_NOT_IN_DOC = {"status", "counts", "final_cost_usd", "finished_by", "completed_at", "ingested"}
_NOT_IN_DOC |= {"error"}  # attributes of their own, each written by its own change
_WRITE_BATCH = 25  # BatchWriteItem's most items per call
_NOT_MADE = "attribute_not_exists(task_id) AND attribute_not_exists(skipped)"


class DynamoDBBatchStore:
    """Reads and writes batches; the only code that knows their item layout."""

    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        *,
        write_attempts: int = 8,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ddb = dynamodb_client
        self._table = table_name
        self._tx = Transactions(
            dynamodb_client, table_name, attempts=write_attempts, backoff_seconds=0.02, pause=pause
        )

    # -- writing a batch ------------------------------------------------------------------------
    def create(self, batch: Batch, lines: list[BatchLine]) -> None:
        """The batch item (only if absent), then its lines."""
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=self._to_item(batch),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise BatchExists(batch.batch_id) from None
        self.add_lines(batch.batch_id, lines)

    def add_lines(self, batch_id: str, lines: list[BatchLine]) -> None:
        """BatchWriteItem by 25, unprocessed items written again."""
        expires = {"N": str(int(time.time() + TASK_RETENTION.total_seconds()))}
        for start in range(0, len(lines), _WRITE_BATCH):
            requests = [
                {"PutRequest": {"Item": {**line_item(batch_id, line), "expires_at": expires}}}
                for line in lines[start : start + _WRITE_BATCH]
            ]
            for attempt in range(8):
                answer = self._ddb.batch_write_item(RequestItems={self._table: requests})
                requests = answer.get("UnprocessedItems", {}).get(self._table, [])
                if not requests:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))  # back off as DynamoDB asks
            else:
                raise ServiceBusy(
                    "the batch's lines could not be written (throttled): retry",
                    retry_after_seconds=1,
                )

    def _to_item(self, batch: Batch) -> dict[str, Any]:
        counts = batch.counts
        doc = batch.model_dump(mode="json", exclude=_NOT_IN_DOC)
        item: dict[str, Any] = {
            **batch_key(batch.batch_id),
            "status": {"S": batch.status.value},
            "client_id": {"S": batch.client_id},
            "doc": {"S": json.dumps(doc)},
            "final_cost_usd": {"N": str(batch.final_cost_usd)},
            "resolved": {"N": str(counts.created + counts.invalid)},
            "ended": {"N": str(counts.ended)},
            "gsi1pk": {"S": f"BATCHES#{batch.client_id}"},
            "gsi1sk": {"S": f"{batch.created_at.isoformat()}#{batch.batch_id}"},
            "expires_at": {"N": str(int((batch.created_at + TASK_RETENTION).timestamp()))},
        }
        for name in _COUNTERS:
            item[name] = {"N": str(getattr(counts, name))}
        return item

    # -- reading --------------------------------------------------------------------------------
    def get(self, batch_id: str) -> Batch | None:
        """The batch, read consistently."""
        item = self._ddb.get_item(
            TableName=self._table, Key=batch_key(batch_id), ConsistentRead=True
        ).get("Item")
        return None if item is None else self._from_item(item)

    @staticmethod
    def _from_item(item: dict[str, Any]) -> Batch:
        doc = json.loads(item["doc"]["S"])
        doc["status"] = item["status"]["S"]
        doc["counts"] = {n: int(item.get(n, {}).get("N", "0")) for n in _COUNTERS}
        doc["final_cost_usd"] = float(Decimal(item.get("final_cost_usd", {}).get("N", "0")))
        for name in ("finished_by", "completed_at", "results_key", "prepaid_day"):
            if name in item:
                doc[name] = item[name]["S"]
        if "estimated_cost_usd" in item:  # an input file's, set when its lines were counted
            doc["estimated_cost_usd"] = float(Decimal(item["estimated_cost_usd"]["N"]))
        doc["ingested"] = "ingested" in item
        if "error" in item:
            doc["error"] = json.loads(item["error"]["S"])
        return Batch.model_validate(doc)

    def list_for_client(self, client_id: str, *, limit: int, cursor: str | None) -> BatchPage:
        """A page of the client's batches, newest first (the keys-only index, then the items)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_CLIENT_INDEX,
            "KeyConditionExpression": "gsi1pk = :c",
            "ExpressionAttributeValues": {":c": {"S": f"BATCHES#{client_id}"}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            start = _decode_cursor(cursor)
            if start.get("gsi1pk", {}).get("S") != f"BATCHES#{client_id}":
                raise InvalidRequest("cursor does not belong to this listing", code="bad_cursor")
            kwargs["ExclusiveStartKey"] = start
        answer = self._ddb.query(**kwargs)
        items = items_by_keys(self._ddb, self._table, table_keys(answer.get("Items", [])))
        last = answer.get("LastEvaluatedKey")
        return BatchPage(
            batches=[self._from_item(i) for i in items],
            next_cursor=_encode_cursor(last) if last else None,
        )

    def lines(
        self, batch_id: str, *, start: int = 0, limit: int | None = None
    ) -> Iterator[BatchLine]:
        """A query of the batch's partition from ``LINE#<start>``, in index order."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :z",
            "ExpressionAttributeValues": {
                ":p": {"S": f"BATCH#{batch_id}"},
                ":a": {"S": line_sk(start)},
                ":z": {"S": "LINE#999999"},
            },
            "ConsistentRead": True,
        }
        given = 0
        while True:
            if limit is not None:
                kwargs["Limit"] = limit - given
            answer = self._ddb.query(**kwargs)
            for item in answer.get("Items", []):
                yield line_from_item(item)
                given += 1
            last = answer.get("LastEvaluatedKey")
            if last is None or (limit is not None and given >= limit):
                return
            kwargs["ExclusiveStartKey"] = last

    # -- counters -------------------------------------------------------------------------------
    def record_created(self, batch_id: str, index: int, task_id: str) -> bool:
        """The line's ``task_id`` (only if unset) and ``ADD created, resolved``."""
        return self._once(
            self._tx.update(
                batch_key(batch_id, line_sk(index)),
                UpdateExpression="SET task_id = :t",
                ConditionExpression=_NOT_MADE,
                ExpressionAttributeValues={":t": {"S": task_id}},
            ),
            self._add(batch_id, created=1, resolved=1),
        )

    def record_skipped(self, batch_id: str, index: int) -> bool:
        """A line the cancelled batch never made into a task: counted as created and
        cancelled at once (it never started)."""
        return self._once(
            self._tx.update(
                batch_key(batch_id, line_sk(index)),
                UpdateExpression="SET skipped = :y",
                ConditionExpression=_NOT_MADE,
                ExpressionAttributeValues={":y": {"BOOL": True}},
            ),
            self._add(batch_id, created=1, resolved=1, ended=1, cancelled=1),
        )

    def record_started(self, batch_id: str, task_id: str) -> bool:
        """The START marker and ``ADD started``."""
        return self._once(self._marker(batch_id, "START", task_id), self._add(batch_id, started=1))

    def record_ended(
        self, batch_id: str, task_id: str, status: TaskStatus, *, started: bool, cost_usd: float
    ) -> Batch | None:
        """The END marker and the ``ADD``s in one transaction; when the task started but its
        start was never counted (a crash before), the START marker and ``started`` ride along."""

        def attempt() -> Batch | None:
            adds: dict[str, int] = {ENDED_COUNTERS[status]: 1, "ended": 1}
            items = [self._marker(batch_id, "END", task_id)]
            if started:
                adds["ended_started"] = 1
                if not self._exists(batch_key(batch_id, f"START#{task_id}")):
                    items.append(self._marker(batch_id, "START", task_id))
                    adds["started"] = 1
            items.insert(1, self._add(batch_id, cost_usd=cost_usd, **adds))
            failed = self._tx.write(items)
            if failed in (0, 1):
                return None  # counted before (or no such batch)
            if failed is not None:
                raise Conflict  # its start was counted meanwhile: count without it
            return self.get(batch_id)

        return self._tx.retrying(attempt, _busy)

    def claim_finish(self, batch_id: str, by: str) -> bool:
        """``finished_by`` if absent and every task ended."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=batch_key(batch_id),
                UpdateExpression="SET finished_by = :by",
                ConditionExpression="attribute_not_exists(finished_by) AND resolved = #total"
                " AND ended = created",
                ExpressionAttributeNames={"#total": "total"},
                ExpressionAttributeValues={":by": {"S": by}},
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def set_status(
        self,
        batch_id: str,
        target: BatchStatus,
        *,
        allowed_from: frozenset[BatchStatus],
        completed_at: datetime | None = None,
        results_key: str | None = None,
    ) -> bool:
        """A conditional update of ``status`` (and the completion's fields)."""
        return status_writes.set_status(
            self._ddb,
            self._table,
            batch_id,
            target,
            allowed_from=allowed_from,
            completed_at=completed_at,
            results_key=results_key,
        )

    def commit_input(
        self,
        batch_id: str,
        *,
        total: int,
        invalid: int,
        estimate_usd: float,
        prepaid_day: str | None,
    ) -> bool:
        """The input file's counts and estimate, if not set before."""
        return status_writes.commit_input(
            self._ddb,
            self._table,
            batch_id,
            total=total,
            invalid=invalid,
            estimate_usd=estimate_usd,
            prepaid_day=prepaid_day,
        )

    def fail(self, batch_id: str, error: TaskError, *, completed_at: datetime) -> bool:
        """``failed`` with ``error``, if the input is not counted yet."""
        return status_writes.fail(
            self._ddb, self._table, batch_id, error, completed_at=completed_at
        )

    # -- pieces ---------------------------------------------------------------------------------
    def _once(self, *items: dict[str, Any]) -> bool:
        def attempt() -> bool:
            return self._tx.write(list(items)) is None  # item 0's condition: done before

        return self._tx.retrying(attempt, _busy)

    def _marker(self, batch_id: str, kind: str, task_id: str) -> dict[str, Any]:
        expires = int(time.time() + TASK_RETENTION.total_seconds())
        return self._tx.put(
            {**batch_key(batch_id, f"{kind}#{task_id}"), "expires_at": {"N": str(expires)}},
            ConditionExpression="attribute_not_exists(pk)",
        )

    def _add(self, batch_id: str, *, cost_usd: float = 0.0, **counters: int) -> dict[str, Any]:
        values: dict[str, Any] = {f":{n}": {"N": str(v)} for n, v in counters.items()}
        terms = [f"{n} :{n}" for n in counters]
        if cost_usd:
            terms.append("final_cost_usd :cost")
            values[":cost"] = {"N": str(Decimal(str(round(cost_usd, 6))))}
        return self._tx.update(
            batch_key(batch_id),
            UpdateExpression="ADD " + ", ".join(terms),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=values,
        )

    def _exists(self, key: dict[str, Any]) -> bool:
        item = self._ddb.get_item(
            TableName=self._table, Key=key, ConsistentRead=True, ProjectionExpression="pk"
        ).get("Item")
        return item is not None


def _busy(attempts: int) -> Exception:
    return ServiceBusy(
        f"the batch's counters met other writes {attempts} times: retry", retry_after_seconds=1
    )
