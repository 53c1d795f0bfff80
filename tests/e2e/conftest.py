"""One devstack for the whole e2e session: moto server, provider simulator, local HTTP API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.demo import subscribe
from devstack.stack import DevStack, StackInfo
from tests.e2e.support import EventLog, e2e_stack_config


@pytest.fixture(scope="session")
def stack() -> Iterator[DevStack]:
    """The running local stack (``e2e_stack_config``), its state file where ``imagegw`` and
    ``make`` look for it."""
    with DevStack(e2e_stack_config()) as running:
        yield running


@pytest.fixture(scope="session")
def info(stack: DevStack) -> StackInfo:
    """Endpoints, names and the demo client's API key."""
    assert stack.info is not None
    return stack.info


@pytest.fixture(scope="session")
def events(info: StackInfo) -> Iterator[EventLog]:
    """Every task event, as a subscriber queue received it."""
    log = EventLog(subscribe(info))
    yield log
    log.close()


@pytest.fixture
def api(info: StackInfo) -> Iterator[httpx.Client]:
    """An HTTP client of the local API, authenticated as the demo client."""
    headers = {"Authorization": f"Bearer {info.api_key}"}
    with httpx.Client(base_url=info.api_url, headers=headers, timeout=60) as client:
        yield client


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e is marked ``e2e``."""
    for item in items:
        if "/tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
