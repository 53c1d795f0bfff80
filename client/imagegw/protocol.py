"""The wire: request bodies and answers of the gateway's ``/v1`` API, shared by both clients."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from imagegw.errors import RateLimited, api_error
from imagegw.inputs import LocalImage

USER_AGENT = "imagegw-python/0.1.0"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Answers a call is tried again for (with an Idempotency-Key, a submit is safe to repeat)."""
CALL_RETRIES = 2
RETRY_AFTER_CAP_SECONDS = 30.0
"""The longest Retry-After a call waits out; a longer one (a daily budget spent until midnight)
is raised at once instead of holding the caller."""


def api_headers(key: str) -> dict[str, str]:
    """Headers of every API call."""
    return {"Authorization": f"Bearer {key}", "User-Agent": USER_AGENT}


def new_idempotency_key() -> str:
    """A fresh Idempotency-Key: a submit retried after a lost answer makes no second task."""
    return f"imagegw-{uuid.uuid4().hex}"


def image_body(
    prompt: str, images: list[str], mask: str | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON of ``POST /v1/images`` (None-valued options are left out)."""
    body: dict[str, Any] = {"prompt": prompt}
    body.update({name: value for name, value in options.items() if value is not None})
    if images:
        body["images"] = images
    if mask is not None:
        body["mask"] = mask
    return body


def uploads_body(files: list[LocalImage]) -> dict[str, Any]:
    """The JSON of ``POST /v1/uploads``."""
    return {"files": [{"content_type": f.content_type, "bytes": len(f.data)} for f in files]}


def decode(response: httpx.Response) -> Any:
    """The JSON of a 2xx answer; the matching ``ApiError`` (with the gateway's code) otherwise."""
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.is_success:
        return body
    error = api_error(response.status_code, body, response.text)
    if isinstance(error, RateLimited):
        error.retry_after = retry_after(response)
    raise error


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (numeric form only)."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def worth_retrying(response: httpx.Response) -> bool:
    """Whether to try the call again: a 429 or a 502-504, unless the gateway asks for a wait
    longer than :data:`RETRY_AFTER_CAP_SECONDS`."""
    after = retry_after(response)
    return response.status_code in RETRY_STATUSES and (
        after is None or after <= RETRY_AFTER_CAP_SECONDS
    )


def retry_delay(attempt: int, response: httpx.Response | None) -> float:
    """Wait before the call's next try: Retry-After if given, else 0.5 s, 1 s, ..."""
    if response is not None and (after := retry_after(response)) is not None:
        return min(after, RETRY_AFTER_CAP_SECONDS)
    return 0.5 * 2.0**attempt
