"""A batch's lines checked like single requests, and its estimate prepaid (inline lines at
``POST /v1/batches``, a file's lines in the batch function)."""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import ValidationError

from image_gateway.batches.ports import BatchLine, line_task_id
from image_gateway.errors import GatewayError, TooManyRequests
from image_gateway.limits.ports import LimitKind, next_utc_day, seconds_until
from image_gateway.models.request import ImageRequest
from image_gateway.models.task import TaskError
from image_gateway.ports import Dependencies
from image_gateway.service.limits import client_limits, reserved_estimate
from image_gateway.service.routing import route
from image_gateway.webhooks.delivery import check_callback_url

MAX_LINE_BODY_BYTES = 300_000
"""A line's body is kept in one DynamoDB item (400 KB): images go by URL or upload."""


def _error_of(exc: Exception) -> TaskError:
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        ]
        return TaskError(code="validation_error", message="; ".join(parts)[:1000])
    if isinstance(exc, GatewayError):
        return TaskError(code=exc.code, message=str(exc)[:1000])
    raise exc


def validate_line(
    deps: Dependencies, batch_id: str, index: int, custom_id: str, body: dict[str, Any]
) -> BatchLine:
    """One line checked like a ``POST /v1/images`` body: a good line with its estimate, or an
    error row with the code and message a single request would get."""
    try:
        if len(json.dumps(body)) > MAX_LINE_BODY_BYTES:
            raise _TooLarge
        request = ImageRequest.model_validate(body)
        # which providers qualify and the dearest estimate: the order among them (the
        # client's routing policy, read per task when it is made) changes neither
        routed = route(deps, request, token=line_task_id(batch_id, index))
        check_callback_url(deps, request.callback_url)
        estimate = reserved_estimate(deps, request, routed.candidates)
        return BatchLine(
            index=index,
            custom_id=custom_id,
            body=request.model_dump(mode="json", exclude_unset=True),
            estimate_usd=estimate,
        )
    except _TooLarge:
        error = TaskError(
            code="line_too_large",
            message=f"a line's body may be at most {MAX_LINE_BODY_BYTES} bytes: send images "
            "as https URLs or uploads (POST /v1/uploads, s3://), not data URLs",
        )
        return BatchLine(index=index, custom_id=custom_id, error=error)
    except (ValidationError, GatewayError) as exc:
        return BatchLine(index=index, custom_id=custom_id, error=_error_of(exc))


def prepay(deps: Dependencies, client_id: str, estimate: float) -> str | None:
    """Reserve a batch's whole estimate in the client's daily budget: the day it is held in
    (None for nothing to hold), or 429 ``budget_exceeded`` with the estimate."""
    limits = client_limits(deps, client_id)
    day = deps.usage.prepay(client_id, limits=limits, cost_usd=estimate) if estimate else None
    if estimate and day is None:
        deps.metrics.put("RequestsThrottled", 1, "Count", {"Code": LimitKind.BUDGET.value})
        now = time.time()
        raise TooManyRequests(
            f"this batch's estimated ${estimate} would take the client past its daily budget "
            f"of ${limits.daily_budget_usd}: nothing was submitted; send fewer or cheaper "
            "requests, retry after midnight UTC (Retry-After), or ask the operator to raise it",
            code=LimitKind.BUDGET.value,
            retry_after_seconds=seconds_until(now, next_utc_day(now)),
            estimated_cost_usd=estimate,
        )
    return day


class _TooLarge(Exception):
    """A line's body over MAX_LINE_BODY_BYTES."""
