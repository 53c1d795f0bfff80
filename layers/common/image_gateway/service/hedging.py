"""Hedging in the flows: schedule a task's hedge when its provider takes it, and what a hedge's
end, or its first provider's failure, does to the task. The rules are ``health.hedging``'s.

The hedge is started by the dispatch function (``service.dispatch.dispatch_hedge``) from one
delayed dispatch-queue message (``{"task_id", "provider", "hedge": true}``): no extra state
machine, no extra sweep. A stale message (the task ended, or moved on) does nothing.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from image_gateway.errors import ProviderError
from image_gateway.health.hedging import hedge_delay, hedge_target, promote
from image_gateway.models.task import Task, TaskError, utc_now
from image_gateway.ports import Dependencies, QueueUnavailable
from image_gateway.service.health import measured
from image_gateway.service.routing import qualify

logger = Logger(child=True)


def schedule_hedge(deps: Dependencies, task: Task) -> bool:
    """The task's provider just took it: if it hedges, queue the hedge at the next provider of
    its ranking, delayed by the provider's measured p90 (``health.hedging.hedge_delay``).
    True when a hedge was queued; a queue that refuses only costs the hedge (logged)."""
    if task.routing is None or not task.routing.hedge:
        return False
    usable = [c.provider.name for c in qualify(deps, task.fallbacks, task.request)[0]]
    target = hedge_target(task, usable)
    if target is None:
        return False
    figures = measured(deps, task.provider, operation=task.operation, tier=task.request.tier())
    expected = deps.directory.provider(task.provider).expected_latency_seconds(task.request)
    delay = hedge_delay(figures, expected, deps.settings.scaled)
    try:
        deps.dispatch_queue.send(task.task_id, target, delay_seconds=delay.seconds, hedge=True)
    except QueueUnavailable:
        logger.warning("hedge not queued", extra={"task_id": task.task_id}, exc_info=True)
        return False
    logger.info(
        "hedge queued",
        extra={
            "task_id": task.task_id,
            "provider": task.provider,
            "hedge": target,
            "after_seconds": delay.seconds,
            "basis": delay.basis,
        },
    )
    return True


def promote_hedge(deps: Dependencies, task_id: str, error: TaskError) -> Task | None:
    """The task's provider failed with ``error`` while a hedge runs: the hedge becomes the
    task's attempt (``health.hedging.promote``). The task, or None when no hedge was open (the
    failure then takes its ordinary course)."""
    promoted = False

    def change(t: Task) -> None:
        nonlocal promoted
        promoted = promote(t, utc_now(), error)

    task = deps.tasks.update(task_id, change)
    if not promoted:
        return None
    logger.info(
        "first provider failed: the hedge carries the task",
        extra={"task_id": task_id, "provider": task.provider, "code": error.code},
    )
    return task


def end_hedge(deps: Dependencies, task_id: str, provider: str, error: ProviderError) -> Task:
    """The hedge at ``provider`` failed: its attempt is closed as failed; the task goes on with
    its own provider (a hedge never fails a task)."""
    failure = TaskError.from_provider_error(error)
    now = utc_now()

    def close(t: Task) -> None:
        for index, attempt in enumerate(t.attempts):
            if attempt.hedge and attempt.provider == provider and attempt.outcome == "submitted":
                t.attempts[index] = attempt.model_copy(
                    update={"outcome": "failed", "finished_at": now, "error": failure}
                )

    logger.warning(
        "hedge failed", extra={"task_id": task_id, "provider": provider, "code": error.code}
    )
    return deps.tasks.update(task_id, close)
