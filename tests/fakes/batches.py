"""In-memory batch store and batch queue (pass ``tests/contract/test_batch_store``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from image_gateway.batches.events import BatchEventDetail
from image_gateway.batches.ports import (
    ENDED_COUNTERS,
    Batch,
    BatchExists,
    BatchLine,
    BatchPage,
    BatchStatus,
    IngestProgress,
)
from image_gateway.errors import InvalidRequest
from image_gateway.models.task import TaskError, TaskStatus
from image_gateway.ports import EventPublishError


class InMemoryBatchStore:
    """``BatchStore`` under one lock: the same markers and counters as the DynamoDB items."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: dict[str, Batch] = {}
        self._lines: dict[str, dict[int, BatchLine]] = {}
        self._markers: set[tuple[str, str, str]] = set()

    def create(self, batch: Batch, lines: list[BatchLine]) -> None:
        """A new batch and its lines."""
        with self._lock:
            if batch.batch_id in self._batches:
                raise BatchExists(batch.batch_id)
            self._batches[batch.batch_id] = batch.model_copy(deep=True)
            self._lines[batch.batch_id] = {}
        self.add_lines(batch.batch_id, lines)

    def add_lines(self, batch_id: str, lines: list[BatchLine]) -> None:
        """More lines (same index: overwritten)."""
        with self._lock:
            for line in lines:
                self._lines[batch_id][line.index] = line.model_copy(deep=True)

    def get(self, batch_id: str) -> Batch | None:
        """A copy of the batch."""
        with self._lock:
            batch = self._batches.get(batch_id)
            return None if batch is None else batch.model_copy(deep=True)

    def list_for_client(self, client_id: str, *, limit: int, cursor: str | None) -> BatchPage:
        """Newest first; the cursor is the last batch id given."""
        with self._lock:
            mine = sorted(
                (b for b in self._batches.values() if b.client_id == client_id),
                key=lambda b: (b.created_at, b.batch_id),
                reverse=True,
            )
        start = 0
        if cursor:
            ids = [b.batch_id for b in mine]
            if cursor not in ids:
                raise InvalidRequest("cursor does not belong to this listing", code="bad_cursor")
            start = ids.index(cursor) + 1
        page = mine[start : start + limit]
        more = start + limit < len(mine)
        return BatchPage(
            batches=[b.model_copy(deep=True) for b in page],
            next_cursor=page[-1].batch_id if more and page else None,
        )

    def lines(
        self, batch_id: str, *, start: int = 0, limit: int | None = None
    ) -> Iterator[BatchLine]:
        """Lines in index order from ``start``."""
        with self._lock:
            chosen = sorted(i for i in self._lines.get(batch_id, {}) if i >= start)
            if limit is not None:
                chosen = chosen[:limit]
            copies = [self._lines[batch_id][i].model_copy(deep=True) for i in chosen]
        yield from copies

    def record_created(self, batch_id: str, index: int, task_id: str) -> bool:
        """The line's task, once."""
        with self._lock:
            line = self._lines[batch_id][index]
            if line.task_id is not None or line.skipped:
                return False
            line.task_id = task_id
            self._batches[batch_id].counts.created += 1
        return True

    def record_skipped(self, batch_id: str, index: int) -> bool:
        """A line never made into a task: created and cancelled, once."""
        with self._lock:
            line = self._lines[batch_id][index]
            if line.task_id is not None or line.skipped:
                return False
            line.skipped = True
            counts = self._batches[batch_id].counts
            counts.created += 1
            counts.cancelled += 1
        return True

    def record_started(self, batch_id: str, task_id: str) -> bool:
        """The start marker, once."""
        with self._lock:
            return self._start(batch_id, task_id)

    def _start(self, batch_id: str, task_id: str) -> bool:
        marker = (batch_id, "START", task_id)
        if marker in self._markers or batch_id not in self._batches:
            return False
        self._markers.add(marker)
        self._batches[batch_id].counts.started += 1
        return True

    def record_ended(
        self, batch_id: str, task_id: str, status: TaskStatus, *, started: bool, cost_usd: float
    ) -> Batch | None:
        """The end marker and its counters, once."""
        with self._lock:
            marker = (batch_id, "END", task_id)
            batch = self._batches.get(batch_id)
            if batch is None or marker in self._markers:
                return None
            self._markers.add(marker)
            if started:
                self._start(batch_id, task_id)
                batch.counts.ended_started += 1
            name = ENDED_COUNTERS[status]
            setattr(batch.counts, name, getattr(batch.counts, name) + 1)
            batch.final_cost_usd = float(
                Decimal(str(batch.final_cost_usd)) + Decimal(str(round(cost_usd, 6)))
            )
            return batch.model_copy(deep=True)

    def claim_finish(self, batch_id: str, by: str) -> bool:
        """``finished_by`` once, when every task ended."""
        with self._lock:
            batch = self._batches[batch_id]
            if batch.finished_by is not None or not batch.counts.done:
                return False
            batch.finished_by = by
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
        """A conditional status change."""
        with self._lock:
            batch = self._batches[batch_id]
            if batch.status not in allowed_from:
                return False
            batch.status = target
            if completed_at is not None:
                batch.completed_at = completed_at
            if results_key is not None:
                batch.results_key = results_key
        return True

    def commit_input(
        self,
        batch_id: str,
        *,
        total: int,
        invalid: int,
        estimate_usd: float,
        prepaid_day: str | None,
    ) -> bool:
        """The input file's counts, once."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None or batch.ingested:
                return False
            batch.ingested = True
            batch.counts.total = total
            batch.counts.invalid = invalid
            batch.estimated_cost_usd = round(estimate_usd, 6)
            if prepaid_day is not None:
                batch.prepaid_day = prepaid_day
        return True

    def fail(self, batch_id: str, error: TaskError, *, completed_at: datetime) -> bool:
        """Failed with its error, if validating or cancelling and not ingested."""
        with self._lock:
            batch = self._batches.get(batch_id)
            open_ = (BatchStatus.VALIDATING, BatchStatus.CANCELLING)
            if batch is None or batch.ingested or batch.status not in open_:
                return False
            batch.status = BatchStatus.FAILED
            batch.error = error
            batch.completed_at = completed_at
        return True


@dataclass
class InMemoryBatchQueue:
    """``BatchQueue`` as a list of the messages sent."""

    sent: list[dict[str, object]] = field(default_factory=list)

    def create_lines(self, batch_id: str, start: int, *, delay_seconds: int = 0) -> None:
        """Record a creation message."""
        self.sent.append({"kind": "create", "batch_id": batch_id, "start": start})

    def finish(self, batch_id: str) -> None:
        """Record a finish message."""
        self.sent.append({"kind": "finish", "batch_id": batch_id})

    def cancel(self, batch_id: str) -> None:
        """Record a cancel message."""
        self.sent.append({"kind": "cancel", "batch_id": batch_id})

    def ingest(self, batch_id: str, progress: IngestProgress) -> None:
        """Record an ingest message."""
        self.sent.append({"kind": "ingest", "batch_id": batch_id, **progress.model_dump()})


@dataclass
class RecordingBatchEvents:
    """Keeps every batch event; refuses the next ``refuse_next`` like PutEvents."""

    published: list[BatchEventDetail] = field(default_factory=list)
    refuse_next: int = 0

    def publish(self, detail: BatchEventDetail) -> None:
        """Record the event (EventPublishError when refusing)."""
        if self.refuse_next > 0:
            self.refuse_next -= 1
            raise EventPublishError(f"refused {detail.event_id}")
        self.published.append(detail)


class InMemoryManifestFiles:
    """Files written next to inbox manifests, by (bucket, key)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put(self, bucket: str, key: str, body: bytes) -> None:
        """Store (or replace) the file."""
        self.objects[(bucket, key)] = body


@dataclass(frozen=True)
class FakeBatches:
    """The batch ports in memory (satisfies ``batches.events.BatchPorts``)."""

    store: InMemoryBatchStore
    queue: InMemoryBatchQueue
    events: RecordingBatchEvents = field(default_factory=RecordingBatchEvents)
    files: InMemoryManifestFiles = field(default_factory=InMemoryManifestFiles)
