"""The metrics port (``ports.Dependencies.metrics``): operator metrics.

The adapter is :class:`image_gateway.adapters.emf_metrics.EmfMetrics`, the fake
``tests.fakes.RecordingMetrics``; both pass ``tests/contract/test_metrics.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

MetricUnit = Literal["Count", "Seconds", "None"]
"""The CloudWatch units the gateway's metrics use."""


class Metrics(Protocol):
    """Operator metrics (CloudWatch embedded metric format; names in the README, "Operations")."""

    def put(self, name: str, value: float, unit: MetricUnit, dimensions: Mapping[str, str]) -> None:
        """Record one value, also rolled up to each leading part of ``dimensions``.

        Dimensions must have few values (provider, finish path, error code): never a task or
        client id.
        """
        ...
