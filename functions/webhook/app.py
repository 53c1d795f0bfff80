"""Provider callbacks: POST /webhooks/{provider}/{taskId}/{token}[/callback].

Answered at once: the token is checked (wrong: 401, nothing queued), the task goes to the
FIFO finalize queue (202), and the finalize function re-fetches and stores it. A queue that
refuses answers 503, so the provider calls again. This is the cold start providers wait on, so
it imports only what that needs: botocore (Secrets Manager and SQS clients, built at the first
event), the callback flow, and a standard-library JSON logger (Powertools' Logger would add
about 8 ms; the lines have its keys).
"""

from __future__ import annotations

import json
from typing import Any

from image_gateway.adapters.webhook import lazy_callback_dependencies
from image_gateway.json_log import JsonLogger
from image_gateway.service.callback import CallbackOutcome, accept_callback

logger = JsonLogger()
DEPS = lazy_callback_dependencies()

_ANSWERS = {
    CallbackOutcome.REFUSED: (401, {"error": {"code": "invalid_token", "message": "bad token"}}),
    CallbackOutcome.UNAVAILABLE: (503, {"error": {"code": "retry_later", "message": "try again"}}),
}


def _answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Verify the per-task token and queue the task; the token itself is never logged."""
    logger.bind_invocation(context)
    params = event.get("pathParameters") or {}
    provider, task_id = params.get("provider", ""), params.get("taskId", "")
    logger.append_keys(task_id=task_id, provider=provider)
    outcome = accept_callback(
        DEPS.get(), provider, task_id, params.get("token", ""), event.get("body")
    )
    if outcome is CallbackOutcome.QUEUED:
        logger.info("callback queued for finalisation")
        return _answer(202, {"task_id": task_id, "queued": True})
    logger.warning("callback not queued", outcome=outcome.value)
    return _answer(*_ANSWERS[outcome])
