"""Poll loop step (a Step Functions Task): refresh the task, say whether to stop or wait how long.

Input ``{"task_id", "attempt", "wait_seconds"}``; output the same shape plus ``done``.
``{"task_id", "action": "fail", "error": {...}}`` comes from the state machine's Catch and ends
the task as failed so that nothing is left open.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_gateway import log_context
from image_gateway.adapters.aws import lazy_dependencies
from image_gateway.models.task import TaskError
from image_gateway.service.lifecycle import fail_task
from image_gateway.service.poll import poll_step

logger = Logger()
log_context.follow(logger)  # every line names its task and the request behind it
DEPS = lazy_dependencies()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One poll, or the give-up path."""
    task_id = str(event["task_id"])
    logger.append_keys(task_id=task_id)
    if event.get("action") == "fail":
        cause = event.get("error") or {}
        error = TaskError(
            code="poll_loop_failed",
            message=str(cause.get("Cause") or cause.get("Error") or "the poll loop failed")[:500],
        )
        fail_task(DEPS.get(), task_id, error, by="poll")
        return {"task_id": task_id, "done": True}
    attempt = int(event.get("attempt", 0))
    decision = poll_step(DEPS.get(), task_id, attempt)
    return {
        "task_id": task_id,
        "done": decision.done,
        "wait_seconds": decision.wait_seconds,
        "attempt": attempt + 1,
    }
