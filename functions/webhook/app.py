"""Provider callbacks: POST /webhooks/{provider}/{taskId}/{token}[/callback].

The body is only a hint: after the token check, the task is fetched from the provider and
finalised. A wrong token changes nothing (401); a transient failure answers 503 so the
provider retries; duplicates and late callbacks find the task finished and answer 200.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_gateway.adapters.aws import LazyDependencies
from image_gateway.ports import TaskNotFound
from image_gateway.service.refresh import RetryLater, refresh_task

logger = Logger()
DEPS = LazyDependencies()


def _answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Verify the per-task token, then refresh the task from its provider."""
    params = event.get("pathParameters") or {}
    provider = params.get("provider", "")
    task_id = params.get("taskId", "")
    token = params.get("token", "")
    deps = DEPS.get()
    if not (provider and task_id and token) or not deps.signer.verify(provider, task_id, token):
        logger.warning(
            "callback with a bad token", extra={"provider": provider, "task_id": task_id}
        )
        return _answer(401, {"error": {"code": "invalid_token", "message": "bad callback token"}})
    try:
        result = refresh_task(deps, task_id, by="callback")
    except TaskNotFound:
        return _answer(404, {"error": {"code": "task_not_found", "message": "no such task"}})
    except RetryLater as transient:
        logger.warning(
            "callback: provider not ready", extra={"task_id": task_id, "why": str(transient)}
        )
        return _answer(503, {"error": {"code": "retry_later", "message": "try again"}})
    return _answer(200, {"task_id": task_id, "status": result.task.status.value})
