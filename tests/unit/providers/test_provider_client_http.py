"""ProviderClient over httpx.MockTransport: the network edge is the only thing faked."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from image_gateway.errors import ProviderBadResponse, ProviderRejected, ProviderUnavailable
from image_gateway.images.json_blobs import Blob
from image_gateway.models.request import ImageRequest
from image_gateway.providers.apimart import ApimartProvider
from image_gateway.providers.base import Provider, ProviderInputs, ProviderState
from image_gateway.providers.client import ProviderClient
from image_gateway.providers.mountsea_async import MountseaAsyncProvider

BASE_URL = "https://provider.example.com/"
API_KEY = "sk-test-123"
Handler = Callable[[httpx.Request], httpx.Response]
CREATED = {"code": 200, "data": [{"status": "submitted", "task_id": "task_01"}]}


class Recorder:
    """Answers every request with a fixed handler and keeps what it was sent."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.handler(request)


@pytest.fixture
def make_client() -> Iterator[Callable[[Provider, Handler], tuple[ProviderClient, Recorder]]]:
    opened: list[httpx.Client] = []

    def factory(provider: Provider, handler: Handler) -> tuple[ProviderClient, Recorder]:
        recorder = Recorder(handler)
        http = httpx.Client(transport=httpx.MockTransport(recorder))
        opened.append(http)
        client = ProviderClient(
            provider, base_url=BASE_URL, api_key=API_KEY, http=http, timeout=5.0
        )
        return client, recorder

    yield factory
    for http in opened:
        http.close()


ClientFactory = Callable[[Provider, Handler], tuple[ProviderClient, Recorder]]


def answer(status_code: int, body: Any = None, *, content: bytes | None = None) -> Handler:
    if content is None:
        content = json.dumps(body).encode()
    return lambda request: httpx.Response(status_code, content=content)


def create(client: ProviderClient) -> str:
    return client.create(ImageRequest(prompt="a fox"), ProviderInputs(), callback_url=None)


# -- what goes out -----------------------------------------------------------------------------
def test_given_a_create_when_sent_then_it_carries_the_bearer_key_and_json_body(
    make_client: ClientFactory,
) -> None:
    client, recorder = make_client(ApimartProvider(), answer(200, CREATED))

    assert create(client) == "task_01"

    (sent,) = recorder.requests
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
    assert (sent.method, str(sent.url)) == (
        "POST",
        "https://provider.example.com/v1/images/generations",
    )
    assert json.loads(sent.content)["prompt"] == "a fox"


def test_given_a_status_read_when_sent_then_query_params_and_key_go_with_it(
    make_client: ClientFactory,
) -> None:
    client, recorder = make_client(MountseaAsyncProvider(), answer(200, {"status": "processing"}))

    status = client.status("9f1c2b")

    (sent,) = recorder.requests
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
    assert (sent.method, sent.url.path, dict(sent.url.params)) == (
        "GET",
        "/openai/tasks",
        {"taskId": "9f1c2b"},
    )
    assert status.state is ProviderState.RUNNING


# -- what comes back: classification ----------------------------------------------------------
@pytest.mark.parametrize("status_code", [429, 500, 502, 503])
def test_given_a_busy_provider_when_creating_then_it_is_retryable_unavailable(
    make_client: ClientFactory, status_code: int
) -> None:
    client, _ = make_client(ApimartProvider(), answer(status_code, {"error": "busy"}))

    with pytest.raises(ProviderUnavailable) as caught:
        create(client)

    assert (caught.value.retryable, caught.value.provider_code) == (True, str(status_code))


@pytest.mark.parametrize("status_code", [429, 503])
def test_given_a_busy_provider_when_reading_status_then_it_is_retryable_unavailable(
    make_client: ClientFactory, status_code: int
) -> None:
    client, _ = make_client(ApimartProvider(), answer(status_code, content=b"<html>busy</html>"))

    with pytest.raises(ProviderUnavailable) as caught:
        client.status("task_01")

    assert caught.value.retryable is True


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.ConnectError, httpx.RemoteProtocolError],
)
def test_given_a_network_failure_when_creating_then_it_is_retryable_unavailable(
    make_client: ClientFactory, failure: type[httpx.TransportError]
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure("simulated", request=request)

    client, _ = make_client(ApimartProvider(), fail)

    with pytest.raises(ProviderUnavailable) as caught:
        create(client)

    assert caught.value.retryable is True


def test_given_a_timeout_while_reading_a_status_body_when_polling_then_it_is_unavailable(
    make_client: ClientFactory,
) -> None:
    class StallingStream(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield b'{"status": "compl'
            raise httpx.ReadTimeout("simulated stall")

    client, _ = make_client(
        MountseaAsyncProvider(), lambda request: httpx.Response(200, stream=StallingStream())
    )

    with pytest.raises(ProviderUnavailable):
        client.status("9f1c2b")


@pytest.mark.parametrize("content", [b"<html>oops</html>", b"", b'{"taskId": '])
def test_given_a_200_that_is_not_json_when_creating_then_it_is_a_bad_response(
    make_client: ClientFactory, content: bytes
) -> None:
    client, _ = make_client(MountseaAsyncProvider(), answer(200, content=content))

    with pytest.raises(ProviderBadResponse) as caught:
        create(client)

    assert caught.value.retryable is False


def test_given_a_200_that_is_not_json_when_reading_status_then_it_is_a_bad_response(
    make_client: ClientFactory,
) -> None:
    client, _ = make_client(MountseaAsyncProvider(), answer(200, content=b"<html>oops</html>"))

    with pytest.raises(ProviderBadResponse):
        client.status("9f1c2b")


def test_given_a_provider_refusal_when_creating_then_the_adapter_classifies_it(
    make_client: ClientFactory,
) -> None:
    body = {"errorCode": 40003, "errorMessage": "request rejected by moderation"}
    client, _ = make_client(MountseaAsyncProvider(), answer(400, body))

    with pytest.raises(ProviderRejected) as caught:
        create(client)

    assert caught.value.code == "moderation_blocked"


# -- large results -----------------------------------------------------------------------------
def test_given_a_200_kb_base64_image_when_reading_status_then_it_arrives_as_a_blob(
    make_client: ClientFactory,
) -> None:
    image_b64 = base64.b64encode(os.urandom(150_000)).decode()  # 200,000 characters
    body = {
        "taskId": "9f1c2b",
        "status": "completed",
        "result": {"data": [{"b64_json": image_b64}]},
    }
    client, _ = make_client(MountseaAsyncProvider(), answer(200, body))

    with client.status("9f1c2b") as status:
        (image,) = status.images
        assert isinstance(image.b64, Blob)
        assert b"".join(image.b64.iter_chunks(65_536)).decode() == image_b64
