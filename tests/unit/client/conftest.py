"""Fixtures of the client's unit tests: a Gateway whose HTTP goes to a ScriptedGateway."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from imagegw import Gateway

from tests.unit.client.support import KEY, URL, FakeClock, ScriptedGateway


@pytest.fixture
def server() -> ScriptedGateway:
    """The scripted gateway (and storage) behind the client."""
    return ScriptedGateway()


@pytest.fixture
def clock() -> FakeClock:
    """Time that passes only when the client sleeps."""
    return FakeClock()


@pytest.fixture
def gateway(server: ScriptedGateway, clock: FakeClock) -> Iterator[Gateway]:
    """A client of the scripted gateway that never really sleeps."""
    with Gateway(
        URL, KEY, transport=httpx.MockTransport(server), sleep=clock.sleep, clock=clock
    ) as client:
        yield client
