"""ProviderClients / ProviderCalls contract: ``ScriptedProviders`` and ``HttpProviderClients``.

The real side talks HTTP to the in-process provider simulator on 127.0.0.1 (devstack), so the
adapters, ``ProviderClient`` and the wire formats are the real ones. The contract: an async
provider's task can be created and read until it succeeds; a sync provider answers with the
image; disabled or keyless providers are retryable errors; a request the provider cannot
honour is refused before anything is sent; a 503 is a retryable ProviderUnavailable.
Simulator faults are prompt markers, the fake's are scripts: each side makes its own 503.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from image_gateway.adapters.http_providers import HttpProviderClients
from image_gateway.config import Settings
from image_gateway.errors import InvalidRequest, ProviderError, ProviderUnavailable, Unprocessable
from image_gateway.models.request import ImageRequest
from image_gateway.ports import ProviderCalls, ProviderClients
from image_gateway.providers.base import (
    InputFile,
    InputRef,
    ProviderInputs,
    ProviderState,
    ProviderStatus,
)
from image_gateway.providers.directory import ProviderDirectory
from PIL import Image

from devstack.simulator import ProviderSimulator
from tests.fakes import ScriptedProviders, fake_settings, unavailable

SIM_KEY = "contract-key"
TIME_SCALE = 0.01
INSTANT = "[sim:latency=0]"
STACK_DISABLED = "openai"
"""Switched off by the stack (``DISABLED_PROVIDERS``) on both sides."""
FINISHED = {ProviderState.SUCCEEDED, ProviderState.FAILED}
POLL_TIMEOUT_S = 10.0


@dataclass
class ProvidersUnderTest:
    """The provider clients, plus what each side does to make a provider misbehave."""

    clients: ProviderClients
    document: dict[str, Any]
    """The providers parameter (``disabled``, ``order``, ...), read on every call."""
    remove_key: Callable[[str], None]
    fail_create_with_503: Callable[[str, ImageRequest], ImageRequest]
    """Make the provider's next create answer 503; returns the request to send."""
    requests_to: Callable[[str], int]
    """How many requests the provider has received."""


def _settings(**overrides: Any) -> Settings:
    return fake_settings(disabled_providers=frozenset({STACK_DISABLED}), **overrides)


def _scripted_under_test(image: bytes) -> ProvidersUnderTest:
    document: dict[str, Any] = {"version": 1}
    directory = ProviderDirectory(_settings(), lambda: json.dumps(document), ttl_seconds=0)
    fake = ScriptedProviders(directory, image)

    def fail_create_with_503(name: str, request: ImageRequest) -> ImageRequest:
        fake.script(name).create_error = unavailable(name)
        return request

    return ProvidersUnderTest(
        clients=fake,
        document=document,
        remove_key=fake.keyless.add,
        fail_create_with_503=fail_create_with_503,
        requests_to=lambda name: len(fake.calls_to(name)),
    )


def _http_under_test(sim: ProviderSimulator, http: httpx.Client) -> ProvidersUnderTest:
    document: dict[str, Any] = {"version": 1}
    urls = {name: sim.provider_base_url(name) for name in sim.providers}
    settings = _settings(provider_base_urls=urls)
    directory = ProviderDirectory(settings, lambda: json.dumps(document), ttl_seconds=0)
    keys = dict.fromkeys(sim.providers, SIM_KEY)  # the provider keys secret
    http.post(f"{sim.base_url}/_sim/reset").raise_for_status()

    def remove_key(name: str) -> None:
        del keys[name]

    def fail_create_with_503(name: str, request: ImageRequest) -> ImageRequest:
        return request.model_copy(update={"prompt": f"{request.prompt} [sim:create-503={name}]"})

    def requests_to(name: str) -> int:
        journal = http.get(f"{sim.base_url}/_sim/requests").json()
        return sum(1 for entry in journal if entry["provider"] == name)

    return ProvidersUnderTest(
        clients=HttpProviderClients(settings, directory, lambda: json.dumps(keys), http),
        document=document,
        remove_key=remove_key,
        fail_create_with_503=fail_create_with_503,
        requests_to=requests_to,
    )


@pytest.fixture(scope="module")
def simulator() -> Iterator[ProviderSimulator]:
    """Every provider dialect on 127.0.0.1, latencies scaled down."""
    with ProviderSimulator(time_scale=TIME_SCALE, api_key=SIM_KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """The pooled client the adapter shares between providers (no proxies from the env)."""
    with httpx.Client(follow_redirects=False, trust_env=False) as client:
        yield client


@pytest.fixture(scope="module")
def result_png() -> bytes:
    """What the fake providers hand back."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(params=["memory", "http"])
def providers(request: pytest.FixtureRequest, result_png: bytes) -> ProvidersUnderTest:
    """The scripted fake, or the HTTP adapters against the provider simulator."""
    if request.param == "memory":
        return _scripted_under_test(result_png)
    return _http_under_test(request.getfixturevalue("simulator"), request.getfixturevalue("http"))


def finished_status(calls: ProviderCalls, provider_task_id: str) -> ProviderStatus:
    """Poll (bounded) until the provider task is finished; its last status."""
    deadline = time.monotonic() + POLL_TIMEOUT_S
    while True:
        status = calls.status(provider_task_id)
        if status.state in FINISHED:
            return status
        status.close()
        if time.monotonic() > deadline:
            raise AssertionError(f"{provider_task_id} not finished within {POLL_TIMEOUT_S} s")
        time.sleep(0.02)


def masked_edit() -> ImageRequest:
    """An edit with a mask (apimart makes no masked edits)."""
    return ImageRequest(
        prompt="replace the sky",
        images=["https://example.com/photo.png"],
        mask="https://example.com/mask.png",
    )


def no_inputs(ref: InputRef) -> AbstractContextManager[InputFile]:
    """The input opener of a generation: there is nothing to open."""
    raise AssertionError(f"a generation has no input {ref!r} to open")


# -- async and sync calls ------------------------------------------------------------------------
def test_given_an_async_provider_when_a_task_is_created_then_it_has_an_id(
    providers: ProvidersUnderTest,
) -> None:
    calls = providers.clients.client("mountsea-async")

    provider_task_id = calls.create(ImageRequest(prompt=f"a fox {INSTANT}"), ProviderInputs(), None)

    assert provider_task_id


def test_given_a_created_task_when_polled_then_it_succeeds_with_one_image(
    providers: ProvidersUnderTest,
) -> None:
    calls = providers.clients.client("mountsea-async")
    provider_task_id = calls.create(ImageRequest(prompt=f"a fox {INSTANT}"), ProviderInputs(), None)

    with finished_status(calls, provider_task_id) as status:
        assert status.state is ProviderState.SUCCEEDED
        assert len(status.images) == 1


def test_given_an_id_the_provider_never_issued_when_polled_then_task_missing_for_good(
    providers: ProvidersUnderTest,
) -> None:
    calls = providers.clients.client("mountsea-async")

    with pytest.raises(ProviderError) as caught:
        calls.status("never-issued")

    assert (caught.value.code, caught.value.retryable) == ("provider_task_missing", False)


def test_given_a_sync_provider_when_called_then_it_answers_with_one_finished_image(
    providers: ProvidersUnderTest,
) -> None:
    calls = providers.clients.client("mountsea-compat")

    with calls.run_sync(
        ImageRequest(prompt=f"a fox {INSTANT}"), ProviderInputs(), no_inputs
    ) as status:
        assert status.state is ProviderState.SUCCEEDED
        assert len(status.images) == 1


# -- providers that cannot be used ------------------------------------------------------------
def test_given_a_provider_the_stack_disabled_when_asked_for_then_retryable_provider_disabled(
    providers: ProvidersUnderTest,
) -> None:
    with pytest.raises(ProviderError) as caught:
        providers.clients.client(STACK_DISABLED)

    assert (caught.value.code, caught.value.retryable) == ("provider_disabled", True)


def test_given_a_provider_the_parameter_disabled_when_asked_for_then_retryable_disabled(
    providers: ProvidersUnderTest,
) -> None:
    providers.document["disabled"] = ["pmock"]

    with pytest.raises(ProviderError) as caught:
        providers.clients.client("pmock")

    assert (caught.value.code, caught.value.retryable) == ("provider_disabled", True)


def test_given_a_provider_without_a_key_when_asked_for_then_retryable_key_missing(
    providers: ProvidersUnderTest,
) -> None:
    providers.remove_key("apimart")

    with pytest.raises(ProviderError) as caught:
        providers.clients.client("apimart")

    assert (caught.value.code, caught.value.retryable) == ("provider_key_missing", True)


def test_given_an_unknown_provider_when_asked_for_then_it_is_an_invalid_request(
    providers: ProvidersUnderTest,
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        providers.clients.client("no-such-provider")

    assert caught.value.code == "unknown_provider"


# -- refusals and failures -----------------------------------------------------------------------
def test_given_a_mask_for_a_provider_without_masks_when_creating_then_unprocessable(
    providers: ProvidersUnderTest,
) -> None:
    request = masked_edit()
    calls = providers.clients.client("apimart")

    with pytest.raises(Unprocessable) as caught:
        calls.create(request, ProviderInputs(images=request.images, mask=request.mask), None)

    assert caught.value.details["field"] == "mask"


def test_given_a_request_the_provider_cannot_honour_when_refused_then_nothing_was_sent(
    providers: ProvidersUnderTest,
) -> None:
    request = masked_edit()
    calls = providers.clients.client("apimart")
    with pytest.raises(Unprocessable):
        calls.create(request, ProviderInputs(images=request.images, mask=request.mask), None)

    assert providers.requests_to("apimart") == 0


def test_given_a_provider_answering_503_when_creating_then_retryable_provider_unavailable(
    providers: ProvidersUnderTest,
) -> None:
    request = providers.fail_create_with_503("mountsea-async", ImageRequest(prompt="a fox"))
    calls = providers.clients.client("mountsea-async")

    with pytest.raises(ProviderUnavailable) as caught:
        calls.create(request, ProviderInputs(), None)

    assert (caught.value.retryable, caught.value.provider_code) == (True, "503")


def test_given_a_provider_answering_503_when_creating_then_the_create_was_sent_once(
    providers: ProvidersUnderTest,
) -> None:
    request = providers.fail_create_with_503("mountsea-async", ImageRequest(prompt="a fox"))
    calls = providers.clients.client("mountsea-async")
    with pytest.raises(ProviderUnavailable):
        calls.create(request, ProviderInputs(), None)

    assert providers.requests_to("mountsea-async") == 1  # retrying is the caller's decision
