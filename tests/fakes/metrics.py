"""In-memory fake of the metrics port: keeps every value it is given."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from image_gateway.metrics import MetricUnit


@dataclass(frozen=True)
class MetricPoint:
    """One recorded value with its full dimensions."""

    name: str
    value: float
    unit: str
    dimensions: dict[str, str]


class RecordingMetrics:
    """``ports.Metrics`` in memory; ``values`` reads back what a flow recorded."""

    def __init__(self) -> None:
        self.points: list[MetricPoint] = []
        self._lock = threading.Lock()

    def put(self, name: str, value: float, unit: MetricUnit, dimensions: Mapping[str, str]) -> None:
        """Record the value."""
        with self._lock:
            self.points.append(MetricPoint(name, float(value), unit, dict(dimensions)))

    def values(self, name: str, **dimensions: str) -> list[float]:
        """Every value of ``name`` whose dimensions include ``dimensions``."""
        return [
            p.value
            for p in self.points
            if p.name == name and dimensions.items() <= p.dimensions.items()
        ]
