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
from image_gateway.models.task import ForbiddenTransition, Task, TaskError, TaskStatus, utc_now
from image_gateway.ports import Dependencies, EventPublishError
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
) -> Transition:
    """Move a task and announce it; ``changed`` is False when someone else was first.

    A failed task costs nothing (providers do not bill failures): its estimate becomes 0.
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
        task = deps.tasks.transition(task_id, target, by=by, change=change)
    except ForbiddenTransition as refused:
        logger.info(
            "transition refused",
            extra={"task_id": task_id, "from": refused.task.status, "to": target, "by": by},
        )
        return Transition(refused.task, changed=False)
    logger.info("task status", extra={"task_id": task_id, "status": target, "by": by})
    if task.status not in DETAIL_TYPES:  # no event to ride on (running): its webhook alone
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
    winning writer gets here)."""
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
    status = task.status

    def mark(t: Task) -> None:
        if status not in t.events_published:
            t.events_published.append(status)

    return deps.tasks.update(task.task_id, mark)


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
    return outcome.task
