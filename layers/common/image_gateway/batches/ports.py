"""The batch store port: a batch, its lines, and counters that each task's winning writer
changes exactly once.

Adapter :class:`image_gateway.adapters.dynamodb_batches.DynamoDBBatchStore` (items in the tasks
table), fake ``tests.fakes.batches.InMemoryBatchStore``; both pass
``tests/contract/test_batch_store``.

A batch's counts are numbers on the batch item, never a read of its tasks. Each change is one
transaction of a per-task marker put only if absent and an ``ADD`` on the batch item, so a
retried or duplicate recording (two finalisers, a sweep after a crash) counts nothing twice:

- ``created``: a line became a task (the line's ``task_id`` is the marker);
- ``started``: a task left its client's queue for a provider;
- ``succeeded`` / ``failed`` / ``cancelled`` / ``expired``: a task ended (with ``ended_started``
  when it had started, so that running and queued are differences of counters).

The recording whose ``ADD`` makes every task ended wins the batch's finish (a conditional
``finished_by``): it alone hands the batch to the results writer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, Field

from image_gateway.models.task import TaskError, TaskStatus

MAX_BATCH_LINES = 50_000
"""The most lines a batch may have (OpenAI's Batch API has the same)."""


class BatchStatus(StrEnum):
    """Where a batch is in its life."""

    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        """True once its results file is written (or, failed, once its input was refused)."""
        return self in (
            BatchStatus.COMPLETED,
            BatchStatus.CANCELLED,
            BatchStatus.EXPIRED,
            BatchStatus.FAILED,
        )


ENDED_COUNTERS: dict[TaskStatus, str] = {
    TaskStatus.SUCCEEDED: "succeeded",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "cancelled",
    TaskStatus.EXPIRED: "expired",
}
"""The counter each terminal task status adds one to."""


class BatchCounters(BaseModel):
    """The numbers kept on the batch item (see the module)."""

    total: int = 0
    invalid: int = 0
    created: int = 0
    started: int = 0
    ended_started: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    expired: int = 0

    @property
    def ended(self) -> int:
        """Tasks that reached a terminal status."""
        return self.succeeded + self.failed + self.cancelled + self.expired

    @property
    def running(self) -> int:
        """Tasks that left the queue and have not ended."""
        return self.started - self.ended_started

    @property
    def queued(self) -> int:
        """Tasks created that have neither started nor ended (the lines not yet made into
        tasks are counted here too: they wait their turn as well)."""
        not_started_ended = self.ended - self.ended_started
        return self.total - self.invalid - self.started - not_started_ended

    @property
    def done(self) -> bool:
        """Every line is a task or an error row, and every task has ended."""
        return self.created + self.invalid == self.total and self.ended == self.created


class BatchInput(BaseModel):
    """A JSONL file of lines in the images bucket, read by the batch function (``input_file``
    of ``POST /v1/batches``, or an inbox manifest copied there)."""

    key: str
    ref: str = Field(description="how the caller named it (s3://bucket/key)")


class InboxManifest(BaseModel):
    """The inbox manifest a batch was made from: its results and errors files are written
    next to it (``<path>.results.jsonl``, ``<path>.errors.jsonl``)."""

    bucket: str
    key: str = Field(description="batches/<path>.jsonl")

    @property
    def results_key(self) -> str:
        """``batches/<path>.results.jsonl``, beside the manifest."""
        return f"{self._stem}.results.jsonl"

    @property
    def errors_key(self) -> str:
        """``batches/<path>.errors.jsonl``: its lines that did not succeed."""
        return f"{self._stem}.errors.jsonl"

    @property
    def _stem(self) -> str:
        return self.key[: -len(".jsonl")] if self.key.lower().endswith(".jsonl") else self.key


class Batch(BaseModel):
    """A batch as stored."""

    batch_id: str
    client_id: str
    status: BatchStatus = BatchStatus.VALIDATING
    counts: BatchCounters = Field(default_factory=BatchCounters)
    metadata: dict[str, str] = Field(default_factory=dict)
    callback_url: str | None = None
    estimated_cost_usd: float = 0.0
    final_cost_usd: float = Field(default=0.0, description="the sum of its ended tasks' costs")
    prepaid_day: str | None = Field(
        default=None, description="the UTC day whose spend holds the batch's estimate"
    )
    idempotency_key: str | None = None
    request_id: str | None = None
    created_at: datetime
    completed_at: datetime | None = None
    finished_by: str | None = None
    results_key: str | None = None
    input_file: BatchInput | None = Field(
        default=None, description="its lines are in this file (read after the batch is made)"
    )
    ingested: bool = Field(
        default=False, description="its input file's lines are stored and counted"
    )
    results_to: str | None = Field(
        default=None, description="where its results file goes (an inbox manifest's batch)"
    )
    inbox_manifest: InboxManifest | None = Field(
        default=None, description="made from this inbox manifest: its files go next to it"
    )
    error: TaskError | None = Field(default=None, description="why a failed batch failed")

    @property
    def lines_counted(self) -> bool:
        """Its lines are stored and ``total`` is known (inline: from the start)."""
        return self.input_file is None or self.ingested


class BatchLine(BaseModel):
    """One request of a batch: valid (a request body, later its task) or an error row."""

    index: int
    custom_id: str
    body: dict[str, Any] | None = Field(default=None, description="the validated request")
    estimate_usd: float = Field(default=0.0, description="what its task may cost at most")
    task_id: str | None = None
    error: TaskError | None = None
    skipped: bool = Field(default=False, description="cancelled before it became a task")


@dataclass(frozen=True)
class BatchPage:
    """One page of a client's batches, newest first."""

    batches: list[Batch]
    next_cursor: str | None


class BatchExists(Exception):
    """A batch with that id was created before."""


def new_batch_id() -> str:
    """A random, URL-safe batch id."""
    return "batch_" + uuid.uuid4().hex


def line_task_id(batch_id: str, index: int) -> str:
    """The task id of a batch's line: fixed, so a retried creation finds the task it made."""
    return f"tsk_{batch_id.removeprefix('batch_')}{index:05d}"


class IngestProgress(BaseModel):
    """How far the batch function has read a batch's input file: the next line's index and
    byte offset, and the sums of the lines before it (carried from segment to segment)."""

    line: int = 0
    offset: int = 0
    invalid: int = 0
    estimate_usd: float = 0.0


class BatchStore(Protocol):
    """Batches and their lines; counters changed once per task by conditional writes."""

    def create(self, batch: Batch, lines: list[BatchLine]) -> None:
        """Store a new batch and its first lines; raises :class:`BatchExists`."""

    def add_lines(self, batch_id: str, lines: list[BatchLine]) -> None:
        """Store more lines (overwriting lines of the same index, for a retried writer)."""

    def get(self, batch_id: str) -> Batch | None:
        """The batch, read consistently, or None."""

    def list_for_client(self, client_id: str, *, limit: int, cursor: str | None) -> BatchPage:
        """A page of the client's batches, newest first; a foreign or bad cursor is a 400."""

    def lines(
        self, batch_id: str, *, start: int = 0, limit: int | None = None
    ) -> Iterator[BatchLine]:
        """The batch's lines in order, from index ``start`` (at most ``limit``)."""

    def record_created(self, batch_id: str, index: int, task_id: str) -> bool:
        """Line ``index`` became task ``task_id``: counted once (False: recorded before)."""

    def record_skipped(self, batch_id: str, index: int) -> bool:
        """Line ``index`` will never be a task (its batch was cancelled first): counted as a
        task created and cancelled, once (False: recorded or created before)."""

    def record_started(self, batch_id: str, task_id: str) -> bool:
        """The task left its client's queue: counted once (False: recorded before)."""

    def record_ended(
        self, batch_id: str, task_id: str, status: TaskStatus, *, started: bool, cost_usd: float
    ) -> Batch | None:
        """The task ended in ``status`` (a terminal one; ``started``: it had reached a
        provider): counted once, with its cost added to the final cost; the batch after the
        count, or None when it was recorded before."""

    def claim_finish(self, batch_id: str, by: str) -> bool:
        """Set ``finished_by`` if every task has ended and nobody set it: True for the one
        caller that did."""

    def set_status(
        self,
        batch_id: str,
        target: BatchStatus,
        *,
        allowed_from: frozenset[BatchStatus],
        completed_at: datetime | None = None,
        results_key: str | None = None,
    ) -> bool:
        """Move the batch to ``target`` if it is in one of ``allowed_from``; True when this
        call moved it."""

    def commit_input(
        self,
        batch_id: str,
        *,
        total: int,
        invalid: int,
        estimate_usd: float,
        prepaid_day: str | None,
    ) -> bool:
        """The input file's lines are all stored: set ``total``, ``invalid``, the estimate and
        the day it is prepaid in, once (True for the one caller that did)."""

    def fail(self, batch_id: str, error: TaskError, *, completed_at: datetime) -> bool:
        """Move a batch whose input was refused to ``failed`` with ``error``, if it is still
        validating or cancelling and its input is not committed (True when this call did)."""


class BatchQueue(Protocol):
    """Work of the batch function: make a chunk of lines into tasks, or write the results."""

    def create_lines(self, batch_id: str, start: int, *, delay_seconds: int = 0) -> None:
        """Make the lines from ``start`` on into tasks (a chunk; the worker queues the next)."""

    def cancel(self, batch_id: str) -> None:
        """Cancel the queued tasks of a cancelling batch (running ones finish)."""

    def ingest(self, batch_id: str, progress: IngestProgress) -> None:
        """Read the batch's input file on from ``progress`` (a segment; the worker queues the
        next)."""

    def finish(self, batch_id: str) -> None:
        """Write the results file of a batch whose tasks have all ended, and announce it."""
