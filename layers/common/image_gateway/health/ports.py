"""Ports of provider health (``Dependencies.health``), each a small Protocol.

Like :mod:`image_gateway.ports`: one AWS adapter each (``adapters/dynamodb_circuits.py``,
``adapters/dynamodb_measurements.py``, ``adapters/eventbridge.py``), one in-memory fake in
``tests/fakes/health.py``, one contract suite in ``tests/contract``. The rules that change a
circuit are pure functions of :mod:`image_gateway.health.breaker`; the store only keeps
circuits, with a conditional write; the measurements are counters (``health.measure``);
the provider slots hold its concurrency (``adapters/dynamodb_slots.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from image_gateway.health.circuit import Circuit
    from image_gateway.health.measure import Bucket, Sample
    from image_gateway.models.circuits import CircuitChangedDetail


@dataclass(frozen=True)
class Slot:
    """One held unit of a provider's concurrency (released after the call)."""

    provider: str
    index: int
    holder: str


class ProviderSlots(Protocol):
    """Per-provider concurrency: at most ``limit`` calls in flight, leases that expire."""

    def acquire(
        self, provider: str, holder: str, *, limit: int, lease_seconds: float
    ) -> Slot | None:
        """A free slot (or one whose lease ran out), or None when all ``limit`` are held."""

    def release(self, slot: Slot) -> None:
        """Free the slot (if ``slot.holder`` still holds it)."""


class CircuitStore(Protocol):
    """Every provider's breaker, read at once (one request) and changed by conditional writes."""

    def all(self) -> dict[str, Circuit]:
        """The stored circuits by provider (a provider without one is closed)."""
        ...

    def get(self, provider: str) -> Circuit:
        """One provider's circuit, read consistently (a closed one at version 0 if none)."""
        ...

    def put(self, circuit: Circuit, *, expires_at: float) -> bool:
        """Store ``circuit`` if the stored version is ``circuit.version - 1`` (none for 1);
        False when another writer got there first. The record is forgotten after
        ``expires_at`` (TTL): an idle provider's breaker ends closed."""
        ...

    def reset(self, provider: str) -> None:
        """Forget the provider's circuit (closed again; operators and tests)."""
        ...


class MeasurementStore(Protocol):
    """Each provider's measured calls: counters per operation, tier and minute
    (``health.measure``), added to atomically and read by window."""

    def add(self, sample: Sample) -> None:
        """Count one attempt in its provider's record of its minute (one atomic increment;
        the record is created on first use and forgotten a day after its minute)."""
        ...

    def window(self, provider: str, since: int) -> list[Bucket]:
        """The provider's records of the minutes from ``since`` (epoch seconds) on."""
        ...


class CircuitEvents(Protocol):
    """``Provider Circuit Changed`` events on the bus (EventPublishError when refused)."""

    def publish(self, detail: CircuitChangedDetail) -> None:
        """Announce a breaker's change of state."""
        ...


class HealthPorts(Protocol):
    """The breakers' store, their events, and the clock they run on."""

    @property
    def circuits(self) -> CircuitStore:
        """Every provider's breaker."""
        ...

    @property
    def measurements(self) -> MeasurementStore:
        """What each provider's recent calls measured (routing by latency and success)."""
        ...

    @property
    def events(self) -> CircuitEvents:
        """State changes on the bus."""
        ...

    def now(self) -> float:
        """Epoch seconds (the fake's clock moves only when a test moves it)."""
        ...
