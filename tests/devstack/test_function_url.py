"""devstack's Lambda function URL: every path to one function, events as Lambda sends them."""

from __future__ import annotations

import base64
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.router import LAMBDA_PAYLOAD_LIMIT, LocalFunctionUrl, LocalHttpApi, Route
from devstack.runtime import FunctionError


class EchoRuntime:
    """Keeps each event and answers 201 with a header (what a handler's result looks like)."""

    concurrency = 1

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, name: str, event: Any) -> Any:
        self.events.append({"function": name, **event})
        return {"statusCode": 201, "headers": {"x-task-id": "tsk_1"}, "body": "{}"}


@pytest.fixture
def served() -> Iterator[tuple[EchoRuntime, str]]:
    runtime = EchoRuntime()
    url = LocalFunctionUrl(runtime, "imagegw-dev-OpenAiCompatFunction")  # type: ignore[arg-type]
    url.start()
    try:
        yield runtime, url.base_url
    finally:
        url.stop()


def test_any_path_reaches_the_function_as_a_default_route_event(
    served: tuple[EchoRuntime, str],
) -> None:
    runtime, base = served

    answer = httpx.post(f"{base}/openai/v1/images/generations", json={"prompt": "x"})

    assert answer.status_code == 201 and answer.headers["x-task-id"] == "tsk_1"
    (event,) = runtime.events
    assert event["function"] == "imagegw-dev-OpenAiCompatFunction"
    assert (event["routeKey"], event["rawPath"]) == ("$default", "/openai/v1/images/generations")
    assert event["isBase64Encoded"] is False and event["body"] == '{"prompt":"x"}'


def test_a_multipart_body_arrives_base64_encoded_byte_for_byte(
    served: tuple[EchoRuntime, str],
) -> None:
    runtime, base = served
    request = httpx.Request(
        "POST", f"{base}/x", files={"image": ("a.png", b"\x89PNG\r\n", "image/png")}
    )
    sent = request.read()

    httpx.Client().send(request)

    (event,) = runtime.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == sent


def test_a_body_over_lambdas_limit_gets_413_without_an_invocation(
    served: tuple[EchoRuntime, str],
) -> None:
    runtime, base = served

    answer = httpx.post(f"{base}/x", content=b"a" * (LAMBDA_PAYLOAD_LIMIT + 1))

    assert answer.status_code == 413 and runtime.events == []


def test_a_multipart_body_over_the_limit_once_base64_encoded_gets_413_without_an_invocation(
    served: tuple[EchoRuntime, str],
) -> None:
    # GIVEN a 4.8 MB multipart upload: under 6 MiB as sent, over it base64-encoded (as on AWS)
    runtime, base = served
    request = httpx.Request(
        "POST", f"{base}/x", files={"image": ("a.png", b"\0" * 4_800_000, "image/png")}
    )

    # WHEN sent THEN Lambda's 413, and the function never runs
    answer = httpx.Client().send(request)

    assert answer.status_code == 413 and runtime.events == []


def test_a_json_body_is_not_encoded_so_five_megabytes_reach_the_function(
    served: tuple[EchoRuntime, str],
) -> None:
    runtime, base = served

    answer = httpx.post(f"{base}/x", json={"prompt": "a" * 5_000_000})

    assert answer.status_code == 201 and len(runtime.events) == 1


class FailingRuntime:
    """Every invocation fails, as a handler that raised does."""

    concurrency = 1

    def invoke(self, name: str, event: Any) -> Any:
        raise FunctionError(name, "RuntimeError", "boom")


def test_a_failed_callback_invocation_is_logged_without_its_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN the router serving the provider callback route, whose function fails
    route = Route("POST", "/webhooks/{provider}/{taskId}/{token}", "imagegw-dev-WebhookFunction")
    api = LocalHttpApi(FailingRuntime(), routes=[route])  # type: ignore[arg-type]
    api.start()
    token = "tok_secret_1234567890"
    try:
        # WHEN a provider calls back THEN 500, and no log line carries the token
        with caplog.at_level(logging.DEBUG):
            answer = httpx.post(f"{api.base_url}/webhooks/apimart/tsk_1/{token}", json={})
    finally:
        api.stop()

    assert answer.status_code == 500
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("devstack")]
    assert logged, "the failure is logged"
    assert all(token not in line for line in logged)


class SlowRuntime(EchoRuntime):
    """Answers a large body once its caller has hung up."""

    def __init__(self) -> None:
        super().__init__()
        self.hung_up = threading.Event()

    def invoke(self, name: str, event: Any) -> Any:
        self.hung_up.wait(10)
        return {"statusCode": 200, "body": "x" * 4_000_000}


def test_a_caller_that_hangs_up_is_a_warning_and_the_next_request_is_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a function that answers after its caller has gone
    runtime = SlowRuntime()
    url = LocalFunctionUrl(runtime, "imagegw-dev-OpenAiCompatFunction")  # type: ignore[arg-type]
    url.start()
    try:
        host, port = url.base_url.removeprefix("http://").split(":")
        caller = socket.create_connection((host, int(port)))
        caller.sendall(b"GET /openai/v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        # When the caller hangs up (a reset, as a timed-out client's socket) before the answer
        caller.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        caller.close()
        with caplog.at_level(logging.WARNING, logger="devstack"):
            runtime.hung_up.set()
            # Then the next caller is answered, and the hang-up was one warning line
            answer = httpx.get(f"{url.base_url}/again", timeout=30)
    finally:
        url.stop()
    assert answer.status_code == 200
    assert any("hung up before the answer" in r.getMessage() for r in caplog.records)
