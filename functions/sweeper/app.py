"""Sweeper (every minute): late callbacks get polled, overdue tasks expire, lost events go out."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_gateway import log_context
from image_gateway.adapters.aws import lazy_dependencies
from image_gateway.service.sweep import sweep

logger = Logger()
log_context.follow(logger)  # every line names its task and the request behind it
DEPS = lazy_dependencies()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Look at every task whose check time has passed."""
    seen = sweep(DEPS.get())
    logger.remove_keys(["task_id", "request_id"])  # the summary is no one task's line
    if seen:
        logger.info("swept", extra={"count": len(seen)})
    return {"swept": len(seen)}
