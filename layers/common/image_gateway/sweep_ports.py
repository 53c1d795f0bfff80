"""The sweeper's first look: its ports before it knows there is work (``service/sweep_check.py``).

Apart from :mod:`image_gateway.ports` because an idle run imports only these: nothing here
names the task model or the settings. The adapter is
:class:`~image_gateway.adapters.dynamodb_due.DynamoDBDueIndex`; the fake, ``tests/fakes``'
``InMemoryDueIndex`` (contract: tests/contract/test_due_index.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from image_gateway.metrics import Metrics
    from image_gateway.timing import TimingPolicy


class DueIndex(Protocol):
    """Whether the sweep has anything to do, read without the task model."""

    def anything_due(self, now: datetime, *, holds_older_than_seconds: float) -> bool:
        """False only when :meth:`~image_gateway.ports.TaskRepository.tasks_due` would give
        nothing at ``now`` and :meth:`~image_gateway.limits.ports.UsageLedger.unclaimed_holds`
        nothing with ``older_than_seconds=holds_older_than_seconds``. (True may also mean a
        hold claimed a moment ago, which the index still lists: the sweep then finds nothing
        to do.)"""


class SweepCheckDependencies(Protocol):
    """What the sweeper uses before it knows there is work: the index, metrics and timing."""

    @property
    def due(self) -> DueIndex:
        """The check-time index."""

    @property
    def metrics(self) -> Metrics:
        """Operator metrics."""

    @property
    def timing(self) -> TimingPolicy:
        """Every wait, retry and deadline."""
