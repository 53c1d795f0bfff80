"""The request gate of the client API: what every request passes before any route sees it.

The API function runs :func:`admit` in its ``lambda_handler``, before the router
(:mod:`image_gateway.http.router`) looks at the route. In order:

1. **Authentication**, on every route but the public ones (the OpenAPI document): no key or an
   unknown one is a 401 ``unauthorized`` before the body is looked at, so a caller without a
   key learns nothing about the request's fields.
2. For routes with a JSON body: the **media type** (:func:`~.json_body.require_json`, 415
   ``unsupported_media_type``), the **size** (413 ``body_too_large``) and the **bytes** (UTF-8,
   400 ``invalid_json``). The admitted event carries the body as text and the canonical
   ``content-type``; the route parses the text once with
   :func:`~.json_body.decode_json_object`.

Pure functions of the API Gateway (HTTP API, payload 2.0) event: no AWS, no Powertools, so the
OpenAI-compatible routes reuse them.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from image_gateway.errors import GatewayError, InvalidRequest, PayloadTooLarge
from image_gateway.http.json_body import JSON_MEDIA_TYPE, require_content, require_json

Authenticate = Callable[[str | None], str]
"""The client id behind an ``Authorization`` header, or raise ``Unauthorized``."""


@dataclass(frozen=True)
class RoutePolicy:
    """Which routes (API Gateway route keys, ``"POST /v1/images"``) are public or take JSON."""

    public: frozenset[str]
    json_body: frozenset[str]


@dataclass(frozen=True)
class Admitted:
    """A request that passed the gate: the event to resolve and the caller (None: public)."""

    event: dict[str, Any]
    client_id: str | None


def admit(
    event: Mapping[str, Any],
    policy: RoutePolicy,
    *,
    authenticate: Authenticate,
    max_body_bytes: int,
) -> Admitted:
    """Authenticate the caller, then read a JSON route's body as text (see the module).

    Raises:
        GatewayError: ``unauthorized``, ``unsupported_media_type``, ``body_too_large`` or
            ``invalid_json`` (whatever ``authenticate`` raises goes through unchanged).
    """
    route = route_key(event)
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    client_id = None if route in policy.public else authenticate(headers.get("authorization"))
    if route not in policy.json_body:
        return Admitted(dict(event), client_id)
    require_json(headers.get("content-type"))
    text = body_text(event, max_bytes=max_body_bytes)
    require_content(text)  # an empty body is a 400 saying so, not a validation error
    headers["content-type"] = JSON_MEDIA_TYPE
    return Admitted(
        {**event, "headers": headers, "body": text, "isBase64Encoded": False}, client_id
    )


def route_key(event: Mapping[str, Any]) -> str:
    """``METHOD /path`` as API Gateway matched it (the raw method and path for ``$default``)."""
    key = event.get("routeKey")
    if isinstance(key, str) and key and key != "$default":
        return key
    http = (event.get("requestContext") or {}).get("http") or {}
    return f"{http.get('method', '')} {event.get('rawPath', '')}"


def body_text(event: Mapping[str, Any], *, max_bytes: int) -> str:
    """The body as text: base64-decoded if API Gateway encoded it, at most ``max_bytes``, UTF-8.

    Raises:
        PayloadTooLarge: ``body_too_large``.
        InvalidRequest: ``invalid_json``, for bytes that are not UTF-8.
    """
    data = body_bytes(event, max_bytes=max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"the body is not UTF-8 text (byte {exc.start} is invalid): JSON must be UTF-8",
            code="invalid_json",
        ) from None


def body_bytes(event: Mapping[str, Any], *, max_bytes: int) -> bytes:
    """The body's bytes (base64-decoded if it came encoded), at most ``max_bytes``.

    Raises:
        PayloadTooLarge: ``body_too_large``.
        InvalidRequest: ``invalid_json``, for a body that cannot be read.
    """
    raw = event.get("body") or ""
    if not isinstance(raw, str):
        raise InvalidRequest("the body could not be read", code="invalid_json")
    if event.get("isBase64Encoded"):
        if len(raw) // 4 * 3 - 2 > max_bytes:  # too large whatever the padding: do not decode
            raise _too_large(max_bytes)
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("the body could not be read", code="invalid_json") from None
    else:
        data = raw.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data


def request_id(event: Mapping[str, Any]) -> str | None:
    """API Gateway's id of the request (what callers see as ``apigw-requestid``)."""
    value = (event.get("requestContext") or {}).get("requestId")
    return value if isinstance(value, str) else None


def internal_error(event: Mapping[str, Any]) -> GatewayError:
    """The 500 ``internal_error`` of an unexpected failure, with the request id to quote."""
    rid = request_id(event)
    return GatewayError(
        "the gateway failed unexpectedly; try again, and quote request_id if it persists",
        request_id=rid,
    )


def error_result(error: GatewayError) -> dict[str, Any]:
    """The API Gateway result of an error: its status and ``{"error": {"code", ...}}``."""
    return {
        "statusCode": error.status_code,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(error.to_body()),
        "isBase64Encoded": False,
    }


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body is larger than {max_bytes:,} bytes: send large images as https URLs "
        "instead of data URLs",
        code="body_too_large",
        limit_bytes=max_bytes,
    )
