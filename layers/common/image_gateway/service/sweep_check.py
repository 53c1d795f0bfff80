"""Before the sweep: is there anything to do? The sweeper's cold path on an idle stack.

The sweeper runs every minute, and on most runs nothing is due. Asking the check-time index
first (one query a shard, at once: ``sweep_ports.DueIndex``) lets an idle run end there, having
published what a sweep that found nothing publishes, without importing the task model, the
settings or pydantic (functions/sweeper/app.py imports :mod:`image_gateway.service.sweep`
only when this says there is work).
"""

from __future__ import annotations

from datetime import UTC, datetime

from image_gateway.sweep_ports import SweepCheckDependencies

OVERDUE_METRIC = "OldestOpenTaskOverdueSeconds"
"""Published every sweep (0 when none): the OverdueTaskAlarm reads it, and its absence."""
HOLDS_GIVEN_BACK_METRIC = "UnclaimedHoldsGivenBack"
"""Published every sweep: places of clients that a submit took and died before using."""


def nothing_due(deps: SweepCheckDependencies) -> bool:
    """True when no task is due and no hold waits to be checked; then the run's metrics (no
    task overdue, no place given back) are published here, as the sweep would have."""
    now = datetime.now(UTC)
    holds_age = deps.timing.hold_check_seconds
    if deps.due.anything_due(now, holds_older_than_seconds=holds_age):
        return False
    deps.metrics.put(OVERDUE_METRIC, 0.0, "Seconds", {})
    deps.metrics.put(HOLDS_GIVEN_BACK_METRIC, 0.0, "Count", {})
    return True
