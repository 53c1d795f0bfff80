"""Fixtures of the provider simulator tests: one simulator, one HTTP client and one webhook
receiver per module."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.simulator import ProviderSimulator
from tests.devstack.support import API_KEY, TIME_SCALE, WebhookReceiver


@pytest.fixture(scope="module")
def sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator(time_scale=TIME_SCALE, api_key=API_KEY) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, trust_env=False) as client:
        yield client


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.stop()
