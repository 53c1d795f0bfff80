"""The poll step: one iteration of a task's poll loop (the Step Functions state machine)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools import Logger

from image_gateway.models.task import Task, utc_now
from image_gateway.ports import Dependencies, TaskNotFound
from image_gateway.service.lifecycle import expire_task
from image_gateway.service.refresh import RetryLater, refresh_task

logger = Logger(child=True)


@dataclass(frozen=True)
class PollDecision:
    """What the state machine does next."""

    done: bool
    wait_seconds: int


def poll_step(deps: Dependencies, task_id: str, attempt: int) -> PollDecision:
    """Refresh the task; expire it past its deadline; else say how long to wait (backoff)."""
    try:
        task = refresh_task(deps, task_id, by="poll").task
    except RetryLater as transient:
        logger.warning("poll: try again later", extra={"task_id": task_id, "why": str(transient)})
        task = deps.tasks.require(task_id)
    except TaskNotFound:
        logger.error("poll: unknown task", extra={"task_id": task_id})
        return PollDecision(done=True, wait_seconds=0)
    if task.status.terminal:
        return PollDecision(done=True, wait_seconds=0)
    now = utc_now()
    if task.deadline_at is not None and now >= task.deadline_at:
        expired = expire_task(deps, task_id, by="poll").task
        return PollDecision(done=expired.status.terminal, wait_seconds=0)
    deps.tasks.update(task_id, _count_poll, known=task)  # as refresh_task left it: no re-read
    base = deps.directory.provider(task.provider).poll_interval_seconds
    wait = deps.settings.scaled(deps.timing.poll_wait(base, attempt))
    if task.deadline_at is not None:  # wake up at the deadline at the latest
        wait = min(wait, (task.deadline_at - now).total_seconds() + 0.5)
    return PollDecision(done=False, wait_seconds=max(1, round(wait)))


def _count_poll(task: Task) -> None:
    task.polls += 1
