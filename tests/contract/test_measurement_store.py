"""MeasurementStore contract: ``InMemoryMeasurementStore`` and ``DynamoDBMeasurementStore`` (moto).

Nothing measured reads as no records; a sample counts in its provider's record of its minute,
operation and tier (answers, failures, the made image's latency bucket); concurrent samples of
one record add up; a window reads the minutes from its start on and only its provider's.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from image_gateway.adapters.dynamodb_measurements import DynamoDBMeasurementStore
from image_gateway.health.measure import (
    BUCKET_SECONDS,
    Sample,
    bucket_start,
    latency_bucket,
    summarise,
)
from image_gateway.health.ports import MeasurementStore
from image_gateway.models.request import Operation

from tests.fakes import InMemoryMeasurementStore

NOW = 1_780_000_000.0
MINUTE = bucket_start(NOW)


@pytest.fixture
def store(implementation: str, request: pytest.FixtureRequest) -> MeasurementStore:
    """Nothing measured: the fake, or the DynamoDB adapter on a fresh template table."""
    if implementation == "memory":
        return InMemoryMeasurementStore()
    return DynamoDBMeasurementStore(
        request.getfixturevalue("dynamodb"), request.getfixturevalue("tasks_table")
    )


def made(provider: str = "apimart", seconds: float = 2.0, at: float = NOW) -> Sample:
    """A sample of an image made in ``seconds``."""
    return Sample(provider, Operation.GENERATE, "1K", at=at, answered=True, seconds=seconds)


def test_given_nothing_measured_then_a_window_is_empty(store: MeasurementStore) -> None:
    assert store.window("apimart", MINUTE) == []


def test_given_samples_then_their_record_counts_answers_failures_and_latency(
    store: MeasurementStore,
) -> None:
    store.add(made(seconds=2.0))
    store.add(made(seconds=0.25, at=NOW + 1))
    store.add(Sample("apimart", Operation.GENERATE, "1K", at=NOW, answered=True))  # moderation
    store.add(Sample("apimart", Operation.GENERATE, "1K", at=NOW, answered=False))

    [bucket] = store.window("apimart", MINUTE)

    assert (bucket.operation, bucket.tier, bucket.start) == (Operation.GENERATE, "1K", MINUTE)
    assert (bucket.answers, bucket.failures) == (3, 1)
    assert bucket.latency[latency_bucket(2.0)] == 1
    assert bucket.latency[latency_bucket(0.25)] == 1
    assert sum(bucket.latency) == 2


def test_given_operations_and_tiers_then_each_has_its_record(store: MeasurementStore) -> None:
    store.add(made())
    store.add(Sample("apimart", Operation.EDIT, "1K", at=NOW, answered=True, seconds=1.0))
    store.add(Sample("apimart", Operation.GENERATE, "4K", at=NOW, answered=True, seconds=9.0))

    found = {(b.operation, b.tier) for b in store.window("apimart", MINUTE)}

    assert found == {(Operation.GENERATE, "1K"), (Operation.EDIT, "1K"), (Operation.GENERATE, "4K")}


@pytest.mark.parametrize("implementation", ["memory"])
def test_given_concurrent_samples_of_one_record_then_every_one_counts(
    store: MeasurementStore,
) -> None:
    # The fake's lock against threads. The adapter writes each sample as one UpdateItem ADD,
    # which DynamoDB applies atomically; in-process moto does not serialise threads (devstack
    # does, AtomicDynamoDB), so on moto this would test moto, and lose counts.
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: store.add(made(seconds=1.0)), range(40)))

    [bucket] = store.window("apimart", MINUTE)

    assert bucket.answers == 40
    assert summarise([bucket]).latencies == 40


def test_given_older_minutes_and_other_providers_then_a_window_reads_only_its_own(
    store: MeasurementStore,
) -> None:
    store.add(made(at=NOW - 20 * BUCKET_SECONDS))
    store.add(made(at=NOW))
    store.add(made(provider="pmock", at=NOW))

    buckets = store.window("apimart", MINUTE - BUCKET_SECONDS)

    assert [(b.provider, b.start) for b in buckets] == [("apimart", MINUTE)]


def test_given_slot_waits_then_their_record_holds_their_histogram(
    store: MeasurementStore,
) -> None:
    # Given two attempts that waited 0.05 s and 40 s for a provider slot, and one not known
    for wait in (0.05, 40.0, None):
        store.add(
            Sample("apimart", Operation.GENERATE, "1K", NOW, True, 2.0, slot_wait_seconds=wait)
        )

    # When the window is read Then the waits are in their buckets, the unknown one nowhere
    [bucket] = store.window("apimart", MINUTE)
    assert bucket.slot_wait[latency_bucket(0.05)] == 1
    assert bucket.slot_wait[latency_bucket(40.0)] == 1
    assert sum(bucket.slot_wait) == 2
    assert summarise([bucket]).slot_wait_p90_seconds == pytest.approx(40.0, abs=15)
