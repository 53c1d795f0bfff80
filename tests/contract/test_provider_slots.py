"""ProviderSlots contract: ``InMemoryProviderSlots`` and ``DynamoDBProviderSlots`` (moto).

At most ``limit`` calls per provider hold a slot; a released slot is free again; a lease that
ran out can be taken (a crashed holder never blocks a provider for good); a stale holder's
release frees nothing of its successor's.
"""

from __future__ import annotations

import pytest
from image_gateway.adapters.dynamodb_slots import DynamoDBProviderSlots
from image_gateway.health.ports import ProviderSlots

from tests.fakes import InMemoryProviderSlots

LEASE = 300.0


@pytest.fixture
def slots(implementation: str, request: pytest.FixtureRequest) -> ProviderSlots:
    """No slot held: the fake, or the DynamoDB adapter on a fresh template table."""
    if implementation == "memory":
        return InMemoryProviderSlots()
    return DynamoDBProviderSlots(
        request.getfixturevalue("dynamodb"), request.getfixturevalue("tasks_table")
    )


def test_given_a_limit_of_two_when_three_calls_ask_then_the_third_waits(
    slots: ProviderSlots,
) -> None:
    first = slots.acquire("apimart", "t1", limit=2, lease_seconds=LEASE)
    second = slots.acquire("apimart", "t2", limit=2, lease_seconds=LEASE)

    third = slots.acquire("apimart", "t3", limit=2, lease_seconds=LEASE)

    assert first is not None and second is not None
    assert first.index != second.index
    assert third is None


def test_given_a_full_provider_when_a_slot_is_released_then_the_next_call_gets_it(
    slots: ProviderSlots,
) -> None:
    held = slots.acquire("apimart", "t1", limit=1, lease_seconds=LEASE)
    assert held is not None

    slots.release(held)

    assert slots.acquire("apimart", "t2", limit=1, lease_seconds=LEASE) is not None


def test_given_a_lease_that_ran_out_when_another_call_asks_then_it_takes_the_slot(
    slots: ProviderSlots,
) -> None:
    crashed = slots.acquire("apimart", "t1", limit=1, lease_seconds=-1.0)
    assert crashed is not None

    taken = slots.acquire("apimart", "t2", limit=1, lease_seconds=LEASE)

    assert taken is not None and taken.holder == "t2"


def test_given_a_slot_taken_over_when_its_old_holder_releases_then_it_stays_held(
    slots: ProviderSlots,
) -> None:
    stale = slots.acquire("apimart", "t1", limit=1, lease_seconds=-1.0)
    assert stale is not None
    assert slots.acquire("apimart", "t2", limit=1, lease_seconds=LEASE) is not None

    slots.release(stale)

    assert slots.acquire("apimart", "t3", limit=1, lease_seconds=LEASE) is None


def test_given_one_provider_full_when_another_asks_then_it_has_its_own_slots(
    slots: ProviderSlots,
) -> None:
    assert slots.acquire("apimart", "t1", limit=1, lease_seconds=LEASE) is not None

    assert slots.acquire("pmock", "t2", limit=1, lease_seconds=LEASE) is not None
