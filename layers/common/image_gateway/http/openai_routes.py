"""The compat surface's two routes, from a Lambda function URL event to its result.

``POST /openai/v1/images/generations`` and ``POST /openai/v1/images/edits``: the API key first
(401 before the body is read), then the body (JSON or multipart, at most 6 MiB: one Lambda
invocation), then an ordinary task (``service.compat``) waited for in the request, then
OpenAI's answer (``http.openai_answer``). Function URL events are API Gateway payload 2.0
events with the ``$default`` route, so :mod:`image_gateway.http.gate` reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger

from image_gateway.errors import GatewayError, InvalidRequest, NotFound
from image_gateway.http.gate import body_bytes, body_text, internal_error, request_id, route_key
from image_gateway.http.json_body import decode_json_object, parse_media_type
from image_gateway.http.multipart import boundary_of, parse_multipart
from image_gateway.http.openai_answer import (
    error_result,
    failed_error,
    images_result,
    unfinished_error,
)
from image_gateway.http.openai_request import (
    CompatRequest,
    edit_from_parts,
    generation_from_json,
)
from image_gateway.ports import Dependencies
from image_gateway.service.compat import SYSTEM_CLOCK, Clock, create_and_wait, wait_budget

logger = Logger(child=True)

PREFIX = "/openai/v1"
ROUTES = {
    f"POST {PREFIX}/images/generations": "generations",
    f"POST {PREFIX}/images/edits": "edits",
}


def serve(
    deps: Dependencies,
    event: Mapping[str, Any],
    *,
    remaining_seconds: float | None,
    clock: Clock = SYSTEM_CLOCK,
) -> dict[str, Any]:
    """Answer one function URL request (every failure in OpenAI's error shape)."""
    try:
        return _serve(deps, event, remaining_seconds=remaining_seconds, clock=clock)
    except GatewayError as refused:
        return error_result(refused)
    except Exception:  # a bug or an outage: maybe after a task was made, so no SDK retry
        logger.exception("compat request failed unexpectedly")
        return error_result(internal_error(event), retry=False)


def _serve(
    deps: Dependencies,
    event: Mapping[str, Any],
    *,
    remaining_seconds: float | None,
    clock: Clock,
) -> dict[str, Any]:
    route = ROUTES.get(route_key(event))
    if route is None:
        raise NotFound(
            f"no such route: the OpenAI-compatible routes are POST {PREFIX}/images/generations "
            f"and POST {PREFIX}/images/edits",
            code="route_not_found",
        )
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    client_id = deps.api_keys.client_for(headers.get("authorization"))
    compat = read_request(route, event, headers, max_bytes=deps.settings.max_request_body_bytes)
    settings = deps.settings
    budget = wait_budget(deps, remaining_seconds)
    result = create_and_wait(
        deps,
        compat.request,
        client_id=client_id,
        budget_seconds=budget,
        idempotency_key=headers.get("idempotency-key"),
        callback_base_url=settings.callback_base_url,
        request_id=request_id(event),
        clock=clock,
    )
    task = result.outcome.task
    if not result.outcome.finished:
        return error_result(unfinished_error(task, budget), task_id=task.task_id, retry=False)
    if task.outputs:
        return images_result(
            task,
            response_format=compat.response_format,
            read_image=lambda key: b"".join(deps.images.open_stream(key)),
            presign=lambda key: deps.images.presigned_get_url(key, settings.output_url_ttl_seconds),
        )
    return error_result(failed_error(task), task_id=task.task_id, retry=False)


def read_request(
    route: str, event: Mapping[str, Any], headers: Mapping[str, str], *, max_bytes: int
) -> CompatRequest:
    """The route's body as a compat request: JSON for generations, multipart for edits."""
    content_type = headers.get("content-type")
    media = parse_media_type(content_type).essence if content_type else ""
    if route == "generations":
        if media != "application/json":
            raise InvalidRequest(
                "images/generations takes a JSON body (Content-Type: application/json)",
                code="unsupported_media_type",
            )
        return generation_from_json(decode_json_object(body_text(event, max_bytes=max_bytes)))
    boundary = boundary_of(content_type)
    if boundary is None:
        raise InvalidRequest(
            "images/edits takes multipart/form-data: the image file(s) in 'image' or "
            "'image[]', an optional 'mask' file, and the fields",
            code="unsupported_media_type",
        )
    return edit_from_parts(parse_multipart(body_bytes(event, max_bytes=max_bytes), boundary))
