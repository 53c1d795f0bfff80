"""Sweeper (every minute): late callbacks get polled, overdue tasks expire, lost events go out.

Most runs find nothing due, so the handler asks the check-time index first
(``service/sweep_check.py``: botocore and one query a shard, at once) and an idle run ends
there, with the run's metrics published. Only a run with work imports the sweep itself, the
settings and the task model (pydantic): about half of a cold start the idle runs do not pay.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_gateway import log_context
from image_gateway.adapters.sweep_check import lazy_sweep_check_dependencies
from image_gateway.service.sweep_check import nothing_due

logger = Logger()
log_context.follow(logger)  # every line names its task and the request behind it
DEPS = lazy_sweep_check_dependencies()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Look at every task whose check time has passed."""
    check = DEPS.get()
    if nothing_due(check):
        return {"swept": 0}
    from image_gateway.service.sweep import sweep  # a run with work: see the module docstring

    seen = sweep(check.everything)
    logger.remove_keys(["task_id", "request_id"])  # the summary is no one task's line
    if seen:
        logger.info("swept", extra={"count": len(seen)})
    return {"swept": len(seen)}
