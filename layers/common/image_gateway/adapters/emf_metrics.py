"""Operator metrics as CloudWatch embedded metric format (EMF) lines on stdout.

Lambda sends stdout to CloudWatch Logs, which turns each EMF line into metric values: no API
call, no extra latency. Written here rather than with Powertools' ``single_metric``, which adds
a ``service`` dimension to every value: a provider's failures, finished by four different
functions, would then be four series and a per-provider alarm could not read one.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping

from image_gateway.metrics import MetricUnit


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class EmfMetrics:
    """``ports.Metrics`` writing one EMF line per value (namespace from the template)."""

    def __init__(self, namespace: str, *, write: Callable[[str], None] = _stdout) -> None:
        self._namespace = namespace
        self._write = write

    def put(self, name: str, value: float, unit: MetricUnit, dimensions: Mapping[str, str]) -> None:
        """One EMF line: the value under every leading part of ``dimensions`` (at least none)."""
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
