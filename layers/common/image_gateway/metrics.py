"""The metrics port (``ports.Dependencies.metrics``): operator metrics.

The adapter is :class:`image_gateway.adapters.emf_metrics.EmfMetrics`, the fake
``tests.fakes.RecordingMetrics``; both pass ``tests/contract/test_metrics.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal, Protocol

MetricUnit = Literal["Count", "Seconds", "None"]
"""The CloudWatch units the gateway's metrics use."""


class Metrics(Protocol):
    """Operator metrics (CloudWatch embedded metric format; names in docs/operations.md)."""

    def put(self, name: str, value: float, unit: MetricUnit, dimensions: Mapping[str, str]) -> None:
        """Record one value, also rolled up to each leading part of ``dimensions``.

        Dimensions must have few values (provider, finish path, error code): never a task or
        client id.
        """
        ...


def expect_invocations_without_metrics(metrics: Any = None) -> None:
    """Silence Powertools' "No application metrics to publish" warning of ``log_metrics``, and
    make ``metrics`` (a Powertools ``Metrics``) drop its values while metrics are disabled.

    A handler that counts something on some invocations only (the API: a submit, not a read)
    publishes nothing on the others, which is normal; the warning would print on each of them
    (and on every invocation once ``POWERTOOLS_METRICS_DISABLED`` is true). The filter is the one
    Powertools' documentation gives. With metrics disabled, Powertools 3.x skips its flush but
    never clears what was added, so a warm function keeps every value and prints the set each
    time it reaches 100 (the raw lines devstack showed): values are dropped as they come instead.
    """
    warnings.filterwarnings("ignore", "No application metrics to publish*")
    if metrics is None:
        return
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    if is_metrics_disabled():
        metrics.add_metric = _drop


def _drop(*_args: Any, **_kwargs: Any) -> None:
    """What ``add_metric`` does while metrics are disabled: nothing."""
