"""The e2e modules here run on a devstack of their own each (module-scoped ``stack``, ``info``
and ``events``, which stand in for the session's): the API fuzzers and the batches, the two
heaviest. Marked ``own_devstack``, ``make test`` runs them in the lane that is not the e2e
run's, after that lane's other tests, so their ~4.5 minutes are off the e2e run's path (the
longer of the two lanes). The stack has the e2e settings and no state file: the session's stack
keeps ``.devstack/stack.json``, where ``imagegw`` and ``make`` look for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.demo import subscribe
from devstack.stack import DevStack, StackInfo
from tests.e2e.support import EventLog, e2e_stack_config


@pytest.fixture(scope="module")
def stack() -> Iterator[DevStack]:
    """The module's own devstack."""
    with DevStack(e2e_stack_config(state_file=None)) as running:
        yield running


@pytest.fixture(scope="module")
def info(stack: DevStack) -> StackInfo:
    """Endpoints, names and the demo client's API key of the module's stack."""
    assert stack.info is not None
    return stack.info


@pytest.fixture(scope="module")
def events(info: StackInfo) -> Iterator[EventLog]:
    """Every event of the module's stack, as a subscriber queue received it."""
    log = EventLog(subscribe(info))
    yield log
    log.close()
