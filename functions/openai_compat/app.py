"""OpenAI-compatible images API, behind a Lambda function URL (no 30 s API Gateway limit).

``POST /openai/v1/images/generations`` and ``POST /openai/v1/images/edits``: each call is an
ordinary task (``service.compat``: submitted storage-first, then waited for on the provider's
latency schedule), answered in OpenAI's shape (``http.openai_routes``) with the task id in
``x-task-id``. The function URL has no auth of its own (``AuthType: NONE``): the gateway's API
key is checked in code, first, as on the HTTP API.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_gateway import log_context
from image_gateway.adapters.aws import lazy_dependencies
from image_gateway.http.openai_routes import serve
from image_gateway.service.compat import SYSTEM_CLOCK

logger = Logger()
log_context.follow(logger)  # every line names its task and the request behind it
DEPS = lazy_dependencies()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One OpenAI-compatible request: the key, the body, the task, the wait, the answer."""
    remaining = context.get_remaining_time_in_millis() / 1000
    return serve(DEPS.get(), event, remaining_seconds=remaining, clock=SYSTEM_CLOCK)
