"""In-memory fakes of the provider health ports: the circuits, their events, a clock.

``InMemoryCircuitStore`` passes the same contract suite as ``DynamoDBCircuitStore``
(``tests/contract/test_circuit_store.py``): a put wins only over the version before it;
``InMemoryMeasurementStore`` the same as ``DynamoDBMeasurementStore``
(``tests/contract/test_measurement_store.py``). The
clock moves only when a test moves it (``FakeHealth.advance``): no sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

from image_gateway.health.circuit import Circuit
from image_gateway.health.measure import (
    Bucket,
    Sample,
    bucket_start,
    latency_bucket,
)
from image_gateway.models.circuits import CircuitChangedDetail
from image_gateway.ports import EventPublishError

START = 1_780_000_000.0  # an arbitrary fixed epoch (2026-05-28)


class InMemoryCircuitStore:
    """Circuits in a dict, with the adapter's conditional write on ``version``."""

    def __init__(self) -> None:
        self._circuits: dict[str, Circuit] = {}
        self.expires_at: dict[str, float] = {}
        self.reads = 0
        self.writes = 0
        self._lock = threading.Lock()
        self._racer: Callable[[], object] | None = None

    def before_next_put(self, action: Callable[[], object]) -> None:
        """Run ``action`` once, just before the next put is checked: another writer (a second
        dispatcher) getting there first."""
        self._racer = action

    def all(self) -> dict[str, Circuit]:
        """Every stored circuit."""
        with self._lock:
            self.reads += 1
            return dict(self._circuits)

    def get(self, provider: str) -> Circuit:
        """One circuit (closed at version 0 when none)."""
        with self._lock:
            self.reads += 1
            return self._circuits.get(provider) or Circuit(provider)

    def put(self, circuit: Circuit, *, expires_at: float) -> bool:
        """Store it if the stored version is the one before; False otherwise."""
        racer, self._racer = self._racer, None
        if racer is not None:
            racer()
        with self._lock:
            stored = self._circuits.get(circuit.provider)
            if (stored.version if stored else 0) != circuit.version - 1:
                return False
            self._circuits[circuit.provider] = replace(circuit)
            self.expires_at[circuit.provider] = expires_at
            self.writes += 1
            return True

    def reset(self, provider: str) -> None:
        """Forget the circuit."""
        with self._lock:
            self._circuits.pop(provider, None)


class InMemoryMeasurementStore:
    """Counters per provider, operation, tier and minute in a dict (the adapter's ``ADD``)."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str, str, int], Bucket] = {}
        self._lock = threading.Lock()
        self.adds = 0

    def add(self, sample: Sample) -> None:
        """Count the sample in its record."""
        start = bucket_start(sample.at)
        key = (sample.provider, sample.operation.value, sample.tier, start)
        with self._lock:
            self.adds += 1
            old = self._buckets.get(key) or Bucket(
                sample.provider, sample.operation, sample.tier, start
            )
            latency = list(old.latency)
            if sample.answered and sample.seconds is not None:
                latency[latency_bucket(sample.seconds)] += 1
            waits = list(old.slot_wait)
            if sample.slot_wait_seconds is not None:
                waits[latency_bucket(sample.slot_wait_seconds)] += 1
            self._buckets[key] = replace(
                old,
                answers=old.answers + int(sample.answered),
                failures=old.failures + int(not sample.answered),
                latency=tuple(latency),
                slot_wait=tuple(waits),
            )

    def window(self, provider: str, since: int) -> list[Bucket]:
        """The provider's records from minute ``since`` on."""
        with self._lock:
            return [
                b for (name, *_), b in sorted(self._buckets.items())
                if name == provider and b.start >= since
            ]  # fmt: skip


class RecordingCircuitEvents:
    """Keeps every ``Provider Circuit Changed`` detail; ``refuse`` makes publish fail."""

    def __init__(self) -> None:
        self.published: list[CircuitChangedDetail] = []
        self.refuse = False

    def publish(self, detail: CircuitChangedDetail) -> None:
        """Record the event (EventPublishError when refusing)."""
        if self.refuse:
            raise EventPublishError(f"refused {detail.event_id}")
        self.published.append(detail)

    def states(self, provider: str) -> list[str]:
        """The states announced for ``provider``, in order."""
        return [d.state for d in self.published if d.provider == provider]


class FakeHealth:
    """The health fakes together (``Dependencies.health``), on a clock a test moves."""

    def __init__(self) -> None:
        self.circuits = InMemoryCircuitStore()
        self.measurements = InMemoryMeasurementStore()
        self.events = RecordingCircuitEvents()
        self.clock = START

    def now(self) -> float:
        """The fake clock."""
        return self.clock

    def advance(self, seconds: float) -> None:
        """Move the clock on."""
        self.clock += seconds
