"""Operator metrics as CloudWatch embedded metric format (EMF) lines on stdout.

Lambda sends stdout to CloudWatch Logs, which turns each EMF line into metric values: no API
call, no extra latency. Written here rather than with Powertools' ``single_metric``, which adds
a ``service`` dimension to every value: a provider's failures, finished by four different
functions, would then be four series and a per-provider alarm could not read one.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping

from image_gateway.metrics import MetricUnit

DEFAULT_NAMESPACE = "ImageTaskGateway"


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class EmfMetrics:
    """``ports.Metrics`` writing one EMF line per value (namespace from the template).

    ``enabled=False`` writes nothing: what ``POWERTOOLS_METRICS_DISABLED=true`` asks of
    Powertools' own metrics (devstack sets it, so a terminal shows logs, not metric JSON).
    """

    def __init__(
        self, namespace: str, *, write: Callable[[str], None] = _stdout, enabled: bool = True
    ) -> None:
        self._namespace = namespace
        self._write = write
        self._enabled = enabled

    @classmethod
    def from_environment(cls, namespace: str | None = None) -> EmfMetrics:
        """Enabled unless Powertools' metrics are disabled (its own rules: the
        ``POWERTOOLS_METRICS_DISABLED`` and ``POWERTOOLS_DEV`` variables); the namespace, when
        not given, the template's ``POWERTOOLS_METRICS_NAMESPACE`` (else ``ImageTaskGateway``)."""
        from aws_lambda_powertools.metrics.functions import is_metrics_disabled

        if namespace is None:
            namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE)
        return cls(namespace, enabled=not is_metrics_disabled())

    def put(self, name: str, value: float, unit: MetricUnit, dimensions: Mapping[str, str]) -> None:
        """One EMF line: the value under every leading part of ``dimensions`` (at least none)."""
        if not self._enabled:
            return
        keys = list(dimensions)
        sets = [keys[:n] for n in range(1, len(keys) + 1)] or [[]]
        document = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self._namespace,
                        "Dimensions": sets,
                        "Metrics": [{"Name": name, "Unit": unit}],
                    }
                ],
            },
            **{key: str(item) for key, item in dimensions.items()},
            name: value,
        }
        self._write(json.dumps(document, separators=(",", ":")))
