"""Test ordering: the e2e tests (one shared devstack with background threads) run last.

moto's in-process ``mock_aws`` patches every boto3 client of the process; running the e2e
session after the in-process tests means the stack's threads never talk to a test's mock.
"""

from __future__ import annotations

import pytest

BUSIEST_E2E = frozenset(
    {"test_batches.py", "test_concurrency.py", "test_contract.py", "test_many_tasks.py"}
)
"""e2e modules that keep the machine's two cores busy (hundreds of tasks, the API fuzzers): they
run late in their lane of ``make test`` (the fuzzers and the batches, on a devstack of their own,
in the lane of the checks, unit and other tests: after those)."""


README_E2E = "test_readme_commands.py"
"""Last of all: docs/deploy.md's ``aws secretsmanager put-secret-value`` puts placeholder
provider keys in the secret (the test puts the real ones back after), and a function caches the
secret for 300 s: a worker that read it meanwhile has keys the simulator refuses (a task after it
ended ``provider_rejected`` once, when the busiest modules came after it)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Stable sort: everything else first, then tests/e2e, its busiest modules, then the README's
    commands, last."""
    items.sort(
        key=lambda item: (
            "/tests/e2e/" in str(item.path),
            item.path.name == README_E2E,
            item.path.name in BUSIEST_E2E,
        )
    )


def pytest_configure(config: pytest.Config) -> None:
    """moto's transactions as devstack runs them: without a copy of the whole table
    (``devstack/moto_patches.py``), so a test holding thousands of items stays linear."""
    config.addinivalue_line(
        "markers",
        "own_devstack: an e2e test that runs a devstack of its own and uses nothing of the"
        " session's stack (make test runs it in the other lane, next to the e2e run)",
    )
    from devstack import moto_patches

    moto_patches.apply()
    moto_patches.apply_atomic_requests()  # one DynamoDB request at a time, as DynamoDB applies
