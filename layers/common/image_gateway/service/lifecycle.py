"""Status changes with their events: the only way a task reaches a new status.

Each change is a conditional write (``TaskRepository.transition``); the writer that wins emits
the event, then records that it did. A crash between the two leaves the task on the sweeper's
index, which emits the missing event later (``timing.event_recheck_seconds`` after the change,
so it does not race the winner; at least once: subscribers deduplicate on ``event_id``).
Writers that lose never emit. The caller's webhook (``webhooks.delivery``) is queued with the
event, so a crash before it is made good by the same sweep (same ``webhook-id``). An ended task
settles its client's limits (``service.limits``) just before its event, so that sweep also
settles what a crash left unsettled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from aws_lambda_powertools import Logger

from image_gateway.errors import Conflict
from image_gateway.models.events import DETAIL_TYPES
from image_gateway.models.parts import AlreadyRecorded, parent_outcome, part_ids, record_part
from image_gateway.models.task import ForbiddenTransition, Task, TaskError, TaskStatus, utc_now
from image_gateway.ports import Dependencies, EventPublishError, TaskNotFound
from image_gateway.service.batch_counts import count_in_batch
from image_gateway.service.health import record_measurements
from image_gateway.service.limits import settle_usage
from image_gateway.webhooks import delivery as webhooks

logger = Logger(child=True)


@dataclass(frozen=True)
class Transition:
    """What a status change did: the task as it now stands, and whether this call changed it."""

    task: Task
    changed: bool


def change_status(
    deps: Dependencies,
    task_id: str,
    target: TaskStatus,
    *,
    by: str,
    change: Callable[[Task], None] | None = None,
    known: Task | None = None,
) -> Transition:
    """Move a task and announce it; ``changed`` is False when someone else was first.

    A failed task costs nothing (providers do not bill failures): its estimate becomes 0.
    ``known``: the task as the caller just read it, unchanged (the store's write starts from
    it instead of reading it again; a stale one is read again).
    """
    if target is TaskStatus.FAILED:
        change = _free(change)
    if target.terminal:  # the sweeper re-emits the event only if the winner never could
        recheck = max(
            deps.timing.event_recheck_floor_seconds,
            deps.settings.scaled(deps.timing.event_recheck_seconds),
        )
        change = _recheck_after(change, recheck)
    try:
        task = deps.tasks.transition(task_id, target, by=by, change=change, known=known)
    except ForbiddenTransition as refused:
        logger.info(
            "transition refused",
            extra={"task_id": task_id, "from": refused.task.status, "to": target, "by": by},
        )
        return Transition(refused.task, changed=False)
    logger.info("task status", extra={"task_id": task_id, "status": target, "by": by})
    if task.parent_id is not None and task.status not in DETAIL_TYPES:  # running: to its parent
        report_to_parent(deps, task)
    elif task.status not in DETAIL_TYPES:  # no event to ride on (running): its webhook alone
        webhooks.announce(deps, task)
    task = publish_pending_event(deps, task)
    _measure(deps, task)
    return Transition(task, changed=True)


TERMINAL_METRICS = {
    TaskStatus.SUCCEEDED: "TasksSucceeded",
    TaskStatus.FAILED: "TasksFailed",
    TaskStatus.EXPIRED: "TasksExpired",
    TaskStatus.CANCELLED: "TasksCancelled",
}
"""The metric counted when a task ends in each terminal status (README, "Operations")."""


def _measure(deps: Dependencies, task: Task) -> None:
    """The operator's metrics of a task that a provider just took or that just ended (only the
    winning writer gets here). A task of n images is counted by its parts (provider calls)."""
    if task.is_parent:
        return
    if task.status is TaskStatus.SUBMITTED:  # a provider accepted it (its first, or a fallback)
        dimensions = {"Provider": task.provider, "Path": task.path or "none"}
        deps.metrics.put("TasksSubmitted", 1, "Count", dimensions)
        return
    name = TERMINAL_METRICS.get(task.status)
    if name is None:
        return
    record_measurements(deps, task)  # routing's figures: each attempt once, by this winner
    provider = {"Provider": task.provider}
    deps.metrics.put(name, 1, "Count", {**provider, "Path": task.path or "none"})
    tried_before = sum(1 for attempt in task.attempts if attempt.outcome == "failed")
    if tried_before:  # providers that failed before this one ended the task
        deps.metrics.put("Fallbacks", tried_before, "Count", provider)
    if task.error is not None:  # gateway error codes: a small fixed set
        deps.metrics.put("TaskErrors", 1, "Count", {**provider, "Code": task.error.code})
    if task.status is not TaskStatus.SUCCEEDED:
        return
    if task.cost_estimate_usd:
        deps.metrics.put("CostEstimateUsd", task.cost_estimate_usd, "None", provider)
    if task.submitted_at is not None and task.finished_at is not None:
        seconds = (task.finished_at - task.submitted_at).total_seconds()
        deps.metrics.put("ProviderLatencySeconds", seconds, "Seconds", provider)


def _free(change: Callable[[Task], None] | None) -> Callable[[Task], None]:
    def apply(task: Task) -> None:
        if change is not None:
            change(task)
        task.cost_estimate_usd = 0.0

    return apply


def _recheck_after(change: Callable[[Task], None] | None, seconds: float) -> Callable[[Task], None]:
    def apply(task: Task) -> None:
        if change is not None:
            change(task)
        task.check_at = utc_now() + timedelta(seconds=seconds)

    return apply


def publish_pending_event(deps: Dependencies, task: Task) -> Task:
    """Emit the event of the task's current status unless it was already emitted."""
    if task.status not in DETAIL_TYPES or task.status in task.events_published:
        return task
    if not settle_usage(deps, task):  # an ended task frees its client's limits first
        return task
    if task.parent_id is not None:  # a part: no event of its own; its parent hears of it
        if not report_to_parent(deps, task):
            return task
        return _mark_published(deps, task)
    if not count_in_batch(deps, task):  # its batch's counters, once (same retry by the sweeper)
        return task
    try:
        deps.events.publish(task)
    except EventPublishError:
        logger.exception(
            "event not published; the sweeper will retry", extra={"task_id": task.task_id}
        )
        return task
    # the caller's webhook rides on the event: re-emitted with it, same webhook-id
    webhooks.announce(deps, task)
    return _mark_published(deps, task)


def _mark_published(deps: Dependencies, task: Task) -> Task:
    status = task.status

    def mark(t: Task) -> None:
        if status not in t.events_published:
            t.events_published.append(status)

    return deps.tasks.update(task.task_id, mark, known=task)  # as just written or read


def fail_task(deps: Dependencies, task_id: str, error: TaskError, *, by: str) -> Transition:
    """End the task as failed with ``error``."""

    def set_error(task: Task) -> None:
        task.error = error

    return change_status(deps, task_id, TaskStatus.FAILED, by=by, change=set_error)


def expire_task(deps: Dependencies, task_id: str, *, by: str) -> Transition:
    """End the task as expired: its deadline passed without a result."""

    def set_error(task: Task) -> None:
        if task.submitted_at is None:  # it waited its turn the whole time
            task.error = TaskError(
                code="queue_timeout",
                message="the task never reached a provider: it waited in the gateway's queue "
                "(its client's running limit, or busy providers) until the queue's bound "
                "(QueueTimeoutSeconds) passed",
            )
            return
        task.error = TaskError(
            code="deadline_exceeded",
            message="the provider did not finish before the task's deadline (counted from its "
            "first provider attempt)",
            provider=task.provider,
        )

    return change_status(deps, task_id, TaskStatus.EXPIRED, by=by, change=set_error)


def cancel_task(deps: Dependencies, task: Task) -> Task:
    """Cancel a task that has not finished; 409 when it already has."""
    outcome = change_status(deps, task.task_id, TaskStatus.CANCELLED, by="cancel")
    if not outcome.changed:
        raise Conflict(
            f"task is already {outcome.task.status.value} and cannot be cancelled",
            code="task_not_cancellable",
            status=outcome.task.status.value,
        )
    if outcome.task.is_parent:  # its open parts too; images already made stay on it
        for part in part_ids(outcome.task):
            try:
                change_status(deps, part, TaskStatus.CANCELLED, by="cancel")
            except TaskNotFound:  # never made (the sweeper records it as failed)
                continue
        return deps.tasks.require(task.task_id)
    return outcome.task


def report_to_parent(deps: Dependencies, part: Task) -> bool:
    """Tell a part's parent of its new status: a part taken or running moves the parent along
    (once: the transition's loser does nothing); an ended part is recorded on it exactly once
    (``models.parts``) and the writer that records the last one ends the parent. False when
    the parent could not be written (the sweeper comes back: the part stays on its index)."""
    parent_id = part.parent_id
    assert parent_id is not None
    try:
        if not part.status.terminal:
            if part.status in (TaskStatus.SUBMITTED, TaskStatus.RUNNING):
                change_status(deps, parent_id, part.status, by="parts", change=_taken)
            return True
        parent = _record_on(deps, parent_id, part)
    except Exception:  # a status it only follows is not worth a retry; an end is
        logger.exception("parent not told of its part", extra={"task_id": part.task_id})
        return not part.status.terminal
    try:
        finish_parent(deps, parent)
    except Exception:  # recorded: the sweeper's look at the parent ends it
        logger.exception("parent not ended now", extra={"task_id": parent_id})
    return True


_PARENT_WRITE_ROUNDS = 3
"""Rounds of the repository's write attempts: up to 10 parts may write their parent at once,
and each round of contention lets at least one through."""


def _record_on(deps: Dependencies, parent_id: str, part: Task) -> Task:
    for round_ in range(_PARENT_WRITE_ROUNDS):
        try:
            return deps.tasks.update(parent_id, lambda t: record_part(t, part))
        except AlreadyRecorded:
            return deps.tasks.require(parent_id)
        except RuntimeError:  # "too much write contention": the other parts got there first
            if round_ == _PARENT_WRITE_ROUNDS - 1:
                raise
    raise AssertionError("unreachable")


def _taken(task: Task) -> None:
    task.submitted_at = task.submitted_at or utc_now()


def finish_parent(deps: Dependencies, parent: Task) -> Task:
    """End a parent whose every part is recorded (``models.parts.parent_outcome``), with its
    one event and webhook; a parent still waiting for parts, or already ended, is left as is."""
    outcome = parent_outcome(parent)
    if outcome is None or parent.status.terminal:
        return parent
    status, error = outcome
    if status is TaskStatus.SUCCEEDED and parent.status is TaskStatus.QUEUED:
        change_status(deps, parent.task_id, TaskStatus.SUBMITTED, by="parts", change=_taken)

    def record(t: Task) -> None:
        t.error = error
        if status is TaskStatus.SUCCEEDED:
            t.finalized_by = "parts"

    return change_status(deps, parent.task_id, status, by="parts", change=record).task
