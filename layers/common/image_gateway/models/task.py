"""The task: the single source of truth for one generation or edit, and its status machine."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from image_gateway.images.thumbnail import THUMBNAIL_EDGE
from image_gateway.limits.ports import UsageHold
from image_gateway.models.attempts import AttemptOutcome as AttemptOutcome
from image_gateway.models.attempts import FinishPath as FinishPath
from image_gateway.models.attempts import ProviderAttempt as ProviderAttempt
from image_gateway.models.attempts import TaskError as TaskError
from image_gateway.models.request import ImageRequest, Operation
from image_gateway.models.routing import RoutingDecision


class TaskStatus(StrEnum):
    """Where a task is in its life. Terminal statuses never change again."""

    QUEUED = "queued"
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        """True for succeeded, failed, cancelled and expired."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.EXPIRED}
)


class ForbiddenTransition(Exception):
    """The status machine does not allow this change (or the task is already terminal)."""

    def __init__(self, task: Task, target: TaskStatus) -> None:
        super().__init__(f"task {task.task_id}: {task.status} -> {target} is not allowed")
        self.task = task
        self.target = target


# to-status -> the statuses it may come from. Everything else is forbidden.
ALLOWED_PREVIOUS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.QUEUED: frozenset(),
    TaskStatus.SUBMITTED: frozenset({TaskStatus.QUEUED}),
    TaskStatus.RUNNING: frozenset({TaskStatus.SUBMITTED}),
    TaskStatus.SUCCEEDED: frozenset({TaskStatus.SUBMITTED, TaskStatus.RUNNING}),
    TaskStatus.FAILED: frozenset({TaskStatus.QUEUED, TaskStatus.SUBMITTED, TaskStatus.RUNNING}),
    TaskStatus.CANCELLED: frozenset({TaskStatus.QUEUED, TaskStatus.SUBMITTED, TaskStatus.RUNNING}),
    # queued too: a task whose hand-off died before any provider took it
    TaskStatus.EXPIRED: frozenset({TaskStatus.QUEUED, TaskStatus.SUBMITTED, TaskStatus.RUNNING}),
}


def move_task(
    task: Task, target: TaskStatus, *, by: str, change: Callable[[Task], None] | None
) -> Task:
    """The status change every task repository makes inside its conditional write: check the
    transition, record it (history, finish time, the sweeper's next look), apply ``change``.

    Raises ForbiddenTransition when the status machine does not allow it.
    """
    if task.status not in ALLOWED_PREVIOUS[target]:
        raise ForbiddenTransition(task, target)
    now = utc_now()
    task.status = target
    task.history.append(StatusChange(status=target, at=now, by=by))
    if target in TERMINAL_STATUSES:
        task.finished_at = now
        task.check_at = now  # until its event is out, the sweeper may re-emit it
    if change is not None:
        change(task)
    if target in TERMINAL_STATUSES:
        task.finished_by = by
        close_open_attempt(task, now)
    return task


ATTEMPT_OUTCOMES: dict[TaskStatus, AttemptOutcome] = {
    TaskStatus.SUCCEEDED: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "cancelled",
    TaskStatus.EXPIRED: "expired",
}
"""The outcome an open attempt is closed with when its task ends in each terminal status."""


OTHER_ATTEMPT_OUTCOMES: dict[TaskStatus, AttemptOutcome] = {
    TaskStatus.SUCCEEDED: "superseded",
    TaskStatus.FAILED: "superseded",
    TaskStatus.CANCELLED: "cancelled",
    TaskStatus.EXPIRED: "expired",
}
"""The outcome of an attempt still open at another provider (a hedge, or the attempt a hedge
outran) when the task ends in each terminal status."""


def close_open_attempt(task: Task, now: datetime) -> None:
    """Close the attempts still ``submitted`` with the task's own end: the one at the task's
    provider with its status, another one (hedging: at most one) as ``OTHER_ATTEMPT_OUTCOMES``
    says (every path ends a task through ``move_task``, so none is left open)."""
    for index, attempt in enumerate(task.attempts):
        if attempt.outcome != "submitted":
            continue
        own = attempt.provider == task.provider
        failed = own and task.status is not TaskStatus.SUCCEEDED
        task.attempts[index] = attempt.model_copy(
            update={
                "outcome": (ATTEMPT_OUTCOMES if own else OTHER_ATTEMPT_OUTCOMES)[task.status],
                "finished_at": now,
                "error": task.error if failed else None,
            }
        )


def change_task(task: Task, change: Callable[[Task], None]) -> Task:
    """Apply a change that must leave the status alone (``update`` of a task repository)."""
    before = task.status
    change(task)
    if task.status != before:
        raise ValueError("use transition() to change a task's status")
    return task


def write_optimistically(
    task_id: str,
    mutate: Callable[[Task], Task],
    *,
    read: Callable[[str], Task],
    write: Callable[[Task, int, TaskStatus], bool],
    known: Task | None,
    attempts: int,
) -> Task:
    """Read, change, write on condition that nobody wrote in between; again if someone did:
    every task repository's ``transition`` and ``update`` (``mutate`` is :func:`move_task` or
    :func:`change_task` on a copy; ``write(updated, read_version, read_status)`` is the store's
    conditional write, False when the stored task is no longer as read).

    With ``known`` (the task as the caller last read or wrote it) the first round skips the
    read. The write's condition is the same, so a stale copy only costs a refused write, and a
    change that refuses the copy (a stale status) is decided again on a fresh read.
    """
    if known is not None and known.task_id == task_id:
        try:
            updated: Task | None = mutate(known.model_copy(deep=True))
        except Exception:  # decided on a copy that may be stale: decide on a fresh read
            updated = None
        if updated is not None and write(updated, known.version, known.status):
            return updated
    for _ in range(attempts):
        current = read(task_id)
        updated = mutate(current.model_copy(deep=True))
        if write(updated, current.version, current.status):
            return updated
        # Someone else wrote in between: read again and re-check the change.
    raise RuntimeError(f"task {task_id}: too much write contention")


def can_transition(current: TaskStatus, target: TaskStatus) -> bool:
    """Whether the status machine allows ``current -> target``."""
    return current in ALLOWED_PREVIOUS[target]


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class ImageOutput(BaseModel):
    """One finished image as stored in S3 (never the bytes themselves)."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    content_type: str
    width: int
    height: int
    bytes: int
    sha256: str


class SourceObject(BaseModel):
    """The S3 object a task was made from (S3 inbox uploads; None for API tasks)."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    version_id: str | None = Field(default=None, description="None when the bucket is unversioned")
    etag: str | None = None


class StatusChange(BaseModel):
    """One entry of a task's status history."""

    model_config = ConfigDict(frozen=True)

    status: TaskStatus
    at: datetime
    by: str = Field(description="what caused it: api, callback, poll, sweeper, cancel")


class DeliveryRecord(BaseModel):
    """One attempt as listed on the task (``GET /v1/tasks/{id}``)."""

    webhook_id: str
    event: str = Field(description="the Standard Webhooks type, e.g. image_task.succeeded")
    attempt: int
    at: datetime
    http_status: int | None = None
    error: str | None = Field(default=None, description="why it failed, when it did")
    next_attempt_at: datetime | None = Field(default=None, description="the next try, if any")
    outcome: Literal["delivered", "retrying", "gone", "failed", "refused"]


class PartRecord(BaseModel):
    """One ended part of a task of ``n`` images, as recorded on it once (``models.parts``)."""

    model_config = ConfigDict(frozen=True)

    index: int
    task_id: str
    status: TaskStatus
    provider: str
    outputs: list[ImageOutput] = Field(default_factory=list)
    error: TaskError | None = None
    cost_estimate_usd: float | None = None


class Task(BaseModel):
    """A generation or edit task, as stored (mapped to a DynamoDB item by ``TaskStore``)."""

    task_id: str
    client_id: str
    status: TaskStatus = TaskStatus.QUEUED
    operation: Operation
    model: str
    provider: str
    provider_task_id: str | None = None
    path: FinishPath | None = Field(default=None, description="set once a provider took it")
    size_requested: str | None = Field(
        default=None, description="canonical size asked for: auto, WxH or ratio@tier"
    )
    size_sent: str | None = Field(
        default=None, description="what the provider was asked for, in its own words"
    )
    cost_estimate_usd: float | None = Field(
        default=None,
        description="from the provider's configured price table; 0 for failed tasks, "
        "None when no price is configured",
    )
    fallbacks: list[str] = Field(
        default_factory=list, description="providers still to try after a retryable failure"
    )
    routing: RoutingDecision | None = Field(
        default=None, description="which policy ranked its providers, and the ranking it saw"
    )
    callback_base_url: str | None = Field(
        default=None, description="where providers call back (the URL the API was called on)"
    )
    request: ImageRequest = Field(description="normalised: client data URLs replaced by s3://")
    created_at: datetime
    updated_at: datetime
    admitted_at: datetime | None = Field(
        default=None,
        description="when it got one of its client's running places (None: it waits in its "
        "client's queue)",
    )
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    deadline_at: datetime | None = Field(
        default=None,
        description="expired after this: the queue's bound until its first provider attempt, "
        "then the provider deadline counted from that attempt",
    )
    check_at: datetime | None = Field(
        default=None, description="when the sweeper should look at it if nothing else has"
    )
    outputs: list[ImageOutput] = Field(default_factory=list)
    thumbnail_key: str | None = Field(
        default=None,
        description=f"the first output's JPEG preview (at most {THUMBNAIL_EDGE} px a side), "
        "stored next to it by the thumbnail function from the task's succeeded event",
    )
    error: TaskError | None = None
    history: list[StatusChange] = Field(default_factory=list)
    attempts: list[ProviderAttempt] = Field(default_factory=list)
    polls: int = 0
    bad_responses: int = 0
    download_failures: int = 0
    finalized_by: str | None = None
    finished_by: str | None = Field(
        default=None,
        description="what ended it (the terminal status's ``by``): callback, poll, dispatch "
        "(a sync call, or a hand-off that failed), sweeper, cancel, compat, submit",
    )
    idempotency_key: str | None = None
    request_id: str | None = Field(
        default=None,
        description="the caller's request that created it (API Gateway's or the inbox "
        "notification's id): every log line of the task carries it",
    )
    source: SourceObject | None = Field(default=None, description="the inbox upload, if any")
    output_key_stem: str | None = Field(
        default=None,
        description="where finalize stores output 0 (no extension); None = outputs/{client}/...",
    )
    events_published: list[TaskStatus] = Field(default_factory=list)
    usage_hold: UsageHold | None = Field(
        default=None, description="what the task holds in its client's limits until it ends"
    )
    deliveries: list[DeliveryRecord] = Field(
        default_factory=list, description="webhook attempts to the caller's callback_url"
    )
    batch_id: str | None = Field(default=None, description="the batch it is a line of")
    custom_id: str | None = Field(default=None, description="its line's id in that batch")
    parent_id: str | None = Field(default=None, description="a part's task of n images")
    part_index: int | None = None
    parts: list[PartRecord] = Field(default_factory=list, description="n>1: ended parts")
    version: int = 0

    @property
    def is_parent(self) -> bool:
        """True for a task of n > 1 images, made by n part tasks."""
        return self.request.n > 1 and self.parent_id is None

    @property
    def metadata(self) -> dict[str, str]:
        """The caller's metadata, echoed in every event."""
        return self.request.metadata

    @property
    def size_produced(self) -> str | None:
        """``WxH`` of the first output, read from the image itself."""
        if not self.outputs:
            return None
        return f"{self.outputs[0].width}x{self.outputs[0].height}"

    def duration_ms(self) -> int | None:
        """Milliseconds from creation to the terminal status, once terminal."""
        if self.finished_at is None:
            return None
        return int((self.finished_at - self.created_at).total_seconds() * 1000)
