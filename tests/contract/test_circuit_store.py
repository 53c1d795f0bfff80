"""CircuitStore contract: ``InMemoryCircuitStore`` and ``DynamoDBCircuitStore`` (moto).

A provider never stored is closed at version 0; ``all`` reads every provider's circuit at once;
a put wins only over the version before it (so of two writers that read the same version, one
wins); what is stored reads back field for field; ``reset`` forgets a circuit. The store lives
in the tasks table (``pk=BREAKER``) next to tasks, which it never sees.
"""

from __future__ import annotations

import pytest
from image_gateway.adapters.dynamodb_circuits import DynamoDBCircuitStore
from image_gateway.health.circuit import Circuit, CircuitState
from image_gateway.health.ports import CircuitStore

from tests.fakes import InMemoryCircuitStore

NOW = 1_780_000_000.0
KEEP = NOW + 86400


@pytest.fixture
def store(implementation: str, request: pytest.FixtureRequest) -> CircuitStore:
    """No circuit stored: the fake, or the DynamoDB adapter on a fresh template table."""
    if implementation == "memory":
        return InMemoryCircuitStore()
    return DynamoDBCircuitStore(
        request.getfixturevalue("dynamodb"), request.getfixturevalue("tasks_table")
    )


def test_given_nothing_stored_then_every_provider_is_closed_at_version_zero(
    store: CircuitStore,
) -> None:
    assert store.all() == {}
    assert store.get("apimart") == Circuit("apimart")


def test_given_a_stored_circuit_then_it_reads_back_field_for_field(store: CircuitStore) -> None:
    circuit = Circuit(
        "apimart",
        state=CircuitState.HALF_OPEN,
        failures=(NOW - 2.5, NOW - 1.25),
        open_until=NOW - 1.0,
        trial_holder="tsk_1",
        trial_until=NOW + 80.0,
        recent="SSFFF",
        changed_at=NOW,
        version=1,
    )

    assert store.put(circuit, expires_at=KEEP)

    assert store.get("apimart") == circuit
    assert store.all() == {"apimart": circuit}


def test_given_two_writers_of_the_same_version_then_one_wins(store: CircuitStore) -> None:
    assert store.put(Circuit("apimart", recent="F", version=1), expires_at=KEEP)
    opened = Circuit("apimart", state=CircuitState.OPEN, open_until=NOW + 30, version=2)
    counted = Circuit("apimart", recent="FF", version=2)

    assert store.put(opened, expires_at=KEEP)
    assert not store.put(counted, expires_at=KEEP)

    assert store.get("apimart") == opened


def test_given_a_stored_circuit_then_a_first_write_of_it_loses(store: CircuitStore) -> None:
    assert store.put(Circuit("apimart", recent="S", version=1), expires_at=KEEP)

    assert not store.put(Circuit("apimart", recent="F", version=1), expires_at=KEEP)


def test_given_several_providers_then_all_reads_each_one(store: CircuitStore) -> None:
    for name in ("apimart", "pmock", "openai"):
        assert store.put(Circuit(name, recent="S", version=1), expires_at=KEEP)

    assert set(store.all()) == {"apimart", "pmock", "openai"}


def test_given_a_reset_then_the_provider_is_closed_and_can_be_written_again(
    store: CircuitStore,
) -> None:
    assert store.put(Circuit("apimart", state=CircuitState.OPEN, version=1), expires_at=KEEP)

    store.reset("apimart")

    assert store.get("apimart") == Circuit("apimart")
    assert store.put(Circuit("apimart", recent="S", version=1), expires_at=KEEP)
