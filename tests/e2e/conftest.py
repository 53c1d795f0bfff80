"""One devstack for the whole e2e session: moto server, provider simulator, local HTTP API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.stack import StackInfo
from tests.e2e.support import stack_fixtures

# the running local stack, its state file where ``imagegw`` and ``make`` look for it
stack, info, events = stack_fixtures("session")


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
