"""The request gate: the key first, then a JSON route's media type, size and bytes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from image_gateway.errors import GatewayError, TooManyRequests, Unauthorized
from image_gateway.http.gate import (
    RoutePolicy,
    admit,
    body_text,
    error_result,
    internal_error,
    route_key,
)

POLICY = RoutePolicy(public=frozenset({"GET /doc"}), json_body=frozenset({"POST /things"}))
KEY = "Bearer good"


def authenticate(authorization: str | None) -> str:
    """Client ``c`` for ``Bearer good``; 401 otherwise."""
    if authorization != KEY:
        raise Unauthorized("no")
    return "c"


def event(
    route: str = "POST /things",
    *,
    body: str | bytes | None = '{"a": 1}',
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A payload 2.0 event; bytes bodies base64-encoded as API Gateway does."""
    built: dict[str, Any] = {
        "routeKey": route,
        "headers": {"authorization": KEY, "content-type": "application/json"}
        if headers is None
        else headers,
        "requestContext": {"requestId": "rid-1"},
        "body": body,
        "isBase64Encoded": False,
    }
    if isinstance(body, bytes):
        built["body"], built["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return built


def gate(request: dict[str, Any], max_bytes: int = 1000) -> Any:
    return admit(request, POLICY, authenticate=authenticate, max_body_bytes=max_bytes)


def refusal(request: dict[str, Any], max_bytes: int = 1000) -> tuple[int, str]:
    with pytest.raises(GatewayError) as refused:
        gate(request, max_bytes)
    return refused.value.status_code, refused.value.code


def test_a_good_json_request_is_admitted_with_its_client_and_a_text_body() -> None:
    # GIVEN a base64-encoded body in an upper-case media type
    request = event(
        body=b'{"a": "\xc3\xa9"}',
        headers={"Authorization": KEY, "Content-Type": "APPLICATION/JSON"},
    )

    admitted = gate(request)

    # THEN the client, the body as text, and the canonical media type for Powertools
    assert admitted.client_id == "c"
    assert (admitted.event["body"], admitted.event["isBase64Encoded"]) == ('{"a": "é"}', False)
    assert admitted.event["headers"]["content-type"] == "application/json"


def test_the_key_is_checked_before_anything_else() -> None:
    # GIVEN no key and everything else wrong too WHEN gated THEN 401, nothing about the body
    request = event(body=b"\xff" * 5000, headers={"content-type": "text/plain"})

    assert refusal(request, max_bytes=10) == (401, "unauthorized")


def test_a_public_route_needs_no_key_and_its_body_is_not_read() -> None:
    admitted = gate(event("GET /doc", body=b"\xff", headers={}))

    assert admitted.client_id is None


def test_a_route_without_a_json_body_is_admitted_untouched() -> None:
    request = event("GET /other", body=b"\xff")

    admitted = gate(request)

    assert (admitted.client_id, admitted.event) == ("c", request)


@pytest.mark.parametrize(
    ("request_", "answer"),
    [
        (event(headers={"authorization": KEY}), (415, "unsupported_media_type")),
        (event(body=b'{"a": "\xff"}'), (400, "invalid_json")),
        (event(body="{" + " " * 2000 + "}"), (413, "body_too_large")),
        (event(body=b"{" + b" " * 2000 + b"}"), (413, "body_too_large")),
        (event(body=""), (400, "invalid_json")),
        (event(body=None), (400, "invalid_json")),
    ],
    ids=["no-media-type", "invalid-utf8", "text-too-large", "base64-too-large", "empty", "none"],
)
def test_a_json_routes_body_is_refused_with_its_code(
    request_: dict[str, Any], answer: tuple[int, str]
) -> None:
    assert refusal(request_) == answer


def test_the_body_limit_counts_bytes_not_characters() -> None:
    # GIVEN a body of 802 bytes in 402 characters WHEN the limit is 801 bytes THEN too large
    request = event(body='"' + "é" * 400 + '"')

    assert body_text(request, max_bytes=802) == '"' + "é" * 400 + '"'
    with pytest.raises(GatewayError, match="larger than 801 bytes"):
        body_text(request, max_bytes=801)


def test_a_body_that_is_not_valid_base64_is_invalid_json() -> None:
    request = {"body": "***", "isBase64Encoded": True}

    with pytest.raises(GatewayError) as refused:
        body_text(request, max_bytes=100)

    assert refused.value.code == "invalid_json"


def test_the_route_key_falls_back_to_method_and_path_on_the_default_route() -> None:
    default = {
        "routeKey": "$default",
        "rawPath": "/x",
        "requestContext": {"http": {"method": "PUT"}},
    }

    assert route_key(default) == "PUT /x"
    assert route_key({"routeKey": "GET /v1/tasks/{taskId}"}) == "GET /v1/tasks/{taskId}"


def test_an_internal_error_names_the_request_and_has_the_standard_shape() -> None:
    result = error_result(internal_error(event()))

    assert result["statusCode"] == 500
    assert result["headers"] == {"Content-Type": "application/json"}
    assert json.loads(result["body"])["error"] == {
        "code": "internal_error",
        "message": (
            "the gateway failed unexpectedly; try again, and quote request_id if it persists"
        ),
        "request_id": "rid-1",
    }


def test_a_429_result_carries_retry_after_for_any_surface() -> None:
    # GIVEN a limit's refusal WHEN any surface renders it with the gate's error_result
    result = error_result(TooManyRequests("wait", code="budget_exceeded", retry_after_seconds=3600))

    # THEN the status, the stable code and Retry-After
    assert result["statusCode"] == 429
    assert result["headers"]["Retry-After"] == "3600"
    assert json.loads(result["body"])["error"]["code"] == "budget_exceeded"
