"""What the compat surface answers: OpenAI's ``ImagesResponse`` and OpenAI's error shape.

Errors are ``{"error": {"message", "type", "param", "code"}}`` with the gateway's stable code
in ``code``, and statuses the ``openai`` SDK turns into the exception a caller expects:
``BadRequestError`` (400) for anything wrong with the request (the gateway's 400, 413, 415 and
422 refusals, a moderation refusal), ``AuthenticationError`` (401), ``NotFoundError`` (404),
``ConflictError`` (409), ``RateLimitError`` (429), and 5xx for the gateway's or the providers'
failures: 502 ``provider_*`` when the task failed at every provider it could go to, 504
``task_not_finished`` when the wait ended first (the message and ``x-task-id`` name the task,
which goes on: ``GET /v1/tasks/{id}``). Answers after a task was made say
``x-should-retry: false``, so the SDK does not retry them into a second task.

Lambda's buffered response is at most 6 MB: an image whose base64 would not fit comes back as
``url`` (a presigned S3 URL) without ``b64_json``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from image_gateway.errors import GatewayError
from image_gateway.models.task import Task, TaskStatus

LAMBDA_RESPONSE_LIMIT_BYTES = 6_000_000
"""Lambda's buffered response payload limit (6 MB), counted without rounding in our favour."""
RESPONSE_HEADROOM_BYTES = 16_384
"""Kept for the rest of the answer (headers, the other JSON fields)."""
INLINE_IMAGE_MAX_BYTES = (LAMBDA_RESPONSE_LIMIT_BYTES - RESPONSE_HEADROOM_BYTES) * 3 // 4
"""The largest image returned as ``b64_json`` (4,487,712 bytes); larger ones as ``url`` only."""

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    429: "rate_limit_error",
    502: "provider_error",
    504: "timeout_error",
}
_CALLER_STATUSES = frozenset({400, 413, 415, 422})
"""Gateway refusals of what the caller sent: all 400 here (OpenAI's status for bad input)."""
_CALLER_TASK_ERRORS = frozenset(
    {"moderation_blocked", "invalid_image", "input_download_failed", "input_not_found"}
)
"""Task error codes that are the request's fault (400); every other failure is a 502."""


def error_result(
    error: GatewayError, *, task_id: str | None = None, retry: bool | None = None
) -> dict[str, Any]:
    """The function URL result of ``error`` in OpenAI's shape (see the module)."""
    status = 400 if error.status_code in _CALLER_STATUSES else error.status_code
    details = dict(error.details)
    param = details.pop("param", None) or details.get("field")
    body = {
        "error": {
            "message": error.message,
            "type": ERROR_TYPES.get(status, "server_error"),
            "param": param,
            "code": error.code,
            **{k: v for k, v in details.items() if k not in ("provider", "field")},
        }
    }
    if "provider" in details:
        body["error"]["provider"] = details["provider"]
    headers = {"Content-Type": "application/json", **error.headers()}  # Retry-After of a 429
    if task_id is not None:
        headers["x-task-id"] = task_id
    if retry is None:
        retry = _worth_retrying(error, status) or (status >= 500 and task_id is None)
    headers["x-should-retry"] = "true" if retry else "false"
    return _result(status, body, headers)


def _worth_retrying(error: GatewayError, status: int) -> bool:
    """A 429 the SDK's own retries can outlast: it waits at most 60 s, so a spent daily budget
    (Retry-After until midnight) is not retried."""
    if status != 429:
        return False
    try:
        return int(error.headers().get("Retry-After", "0")) <= 60
    except ValueError:
        return False


def unfinished_error(task: Task, waited_seconds: float) -> GatewayError:
    """The 504 of a wait that ended with the task still open."""
    error = GatewayError(
        f"the image was not ready after {waited_seconds:.0f} s; task {task.task_id} goes on "
        f"({task.status.value}): GET /v1/tasks/{task.task_id} with the same key picks it up",
        code="task_not_finished",
        task_id=task.task_id,
        task_status=task.status.value,
    )
    error.status_code = 504
    return error


def failed_error(task: Task) -> GatewayError:
    """The error of a task that ended without an image (failed, cancelled, expired)."""
    code = task.error.code if task.error is not None else f"task_{task.status.value}"
    message = task.error.message if task.error is not None else f"the task was {task.status}"
    error = GatewayError(
        f"{message} (task {task.task_id}: GET /v1/tasks/{task.task_id})",
        code=code,
        task_id=task.task_id,
        provider=task.provider,
    )
    if code in _CALLER_TASK_ERRORS:
        error.status_code = 400
        if code == "moderation_blocked":
            error.details["param"] = "prompt"
    elif task.status is TaskStatus.CANCELLED:
        error.status_code = 409
    elif task.status is TaskStatus.EXPIRED:
        error.status_code = 504
    else:
        error.status_code = 502
    return error


def images_result(
    task: Task,
    *,
    response_format: str,
    read_image: Callable[[str], bytes],
    presign: Callable[[str], str],
) -> dict[str, Any]:
    """200 with OpenAI's ``ImagesResponse`` for a succeeded task (``x-task-id`` names it).

    ``b64_json`` when asked for and the image fits what is left of Lambda's response limit
    (shared by the n images), else ``url``. Some of n images failed: the ones made, with
    ``x-images-failed`` and the task's ``error`` (``partial_failure``) in the body.
    """
    data: list[dict[str, Any]] = []
    room = INLINE_IMAGE_MAX_BYTES  # shared by every image of the answer (n of them)
    for output in task.outputs:
        inline = response_format == "b64_json" and output.bytes <= room
        item: dict[str, Any] = {"revised_prompt": None}
        if inline:
            room -= output.bytes
            item["b64_json"] = base64.b64encode(read_image(output.key)).decode("ascii")
        else:
            item["url"] = presign(output.key)
        data.append(item)
    first = task.outputs[0] if task.outputs else None
    body: dict[str, Any] = {
        "created": int(task.created_at.timestamp()),
        "data": data,
        "background": task.request.background,
        "output_format": first.content_type.removeprefix("image/") if first else None,
        "quality": task.request.quality,
        "size": task.size_produced,
    }
    headers = {"Content-Type": "application/json", "x-task-id": task.task_id}
    if task.error is not None:  # some of n images failed: the ones made, and why the others not
        headers["x-images-failed"] = str(task.request.n - len(task.outputs))
        body["error"] = task.error.model_dump(include={"code", "message"})
    return _result(200, body, headers)


def _result(status: int, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": headers,
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }
