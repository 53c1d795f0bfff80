"""A batch task's status changes counted on its batch, and the batch's finish handed on.

Called by ``lifecycle.publish_pending_event`` (the winner of a change, and the sweeper when a
winner crashed), so each change is recorded at least once and the store counts it once. The
recording that makes every task ended tries the finish; the one caller that wins it queues the
results file (``service.batches.finish_batch``).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from image_gateway.models.task import Task, TaskStatus
from image_gateway.ports import Dependencies

logger = Logger(child=True)


def count_in_batch(deps: Dependencies, task: Task) -> bool:
    """Count the task's current status on its batch; False when the store or the queue failed
    (the caller leaves the event unpublished, so the sweeper comes back)."""
    if task.batch_id is None:
        return True
    try:
        if task.status is TaskStatus.SUBMITTED:
            deps.batches.store.record_started(task.batch_id, task.task_id)
        elif task.status.terminal:
            after = deps.batches.store.record_ended(
                task.batch_id,
                task.task_id,
                task.status,
                started=task.submitted_at is not None,
                cost_usd=task.cost_estimate_usd or 0.0,
            )
            # counted before (a retry): look again, in case the finish this task won was lost
            after = after or deps.batches.store.get(task.batch_id)
            if after is not None and after.counts.done and not after.status.final:
                if after.finished_by == task.task_id:  # won before, its message not sent
                    deps.batches.queue.finish(task.batch_id)
                elif after.finished_by is None:
                    finish_when_done(deps, task.batch_id, by=task.task_id)
    except Exception:
        logger.exception(
            "batch not counted; the sweeper will retry", extra={"task_id": task.task_id}
        )
        return False
    return True


def finish_when_done(deps: Dependencies, batch_id: str, *, by: str) -> bool:
    """Win the batch's finish if every task has ended, and queue its results; True if won."""
    if not deps.batches.store.claim_finish(batch_id, by):
        return False
    logger.info("batch finished", extra={"batch_id": batch_id, "by": by})
    deps.batches.queue.finish(batch_id)
    return True
