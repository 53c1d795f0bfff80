"""BatchStore contract: ``InMemoryBatchStore`` and ``DynamoDBBatchStore`` (moto).

A batch is stored with its lines and read back; its counters change once per task however
often (and however concurrently) a change is recorded; a task that ended without its start
counted is counted as started with its end; exactly one caller wins the finish, and only once
every task has ended; status changes are conditional; a client's batches list apart from
others' and from its tasks.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from image_gateway.adapters.dynamodb_batches import DynamoDBBatchStore
from image_gateway.batches.ports import (
    Batch,
    BatchCounters,
    BatchExists,
    BatchInput,
    BatchLine,
    BatchStatus,
    BatchStore,
)
from image_gateway.models.task import TaskError, TaskStatus

from tests.fakes.batches import InMemoryBatchStore

CREATED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class OneRequestAtATime:
    """A DynamoDB client whose requests are each atomic, as DynamoDB's are: moto in process
    applies concurrent updates of one item without a lock (devstack serialises them the same
    way, ``devstack.local_aws.AtomicDynamoDB``). Requests still interleave between threads."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.exceptions = client.exceptions

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)

        def locked(**kwargs: Any) -> Any:
            with self._lock:
                return call(**kwargs)

        return locked


@pytest.fixture
def store(implementation: str, request: pytest.FixtureRequest) -> BatchStore:
    """An empty store."""
    if implementation == "memory":
        return InMemoryBatchStore()
    dynamodb, table = request.getfixturevalue("dynamodb"), request.getfixturevalue("tasks_table")
    return DynamoDBBatchStore(OneRequestAtATime(dynamodb), table, pause=lambda _: None)


def a_batch(store: BatchStore, *, good: int, bad: int = 0, batch_id: str = "batch_1") -> Batch:
    """Store a batch of ``good`` valid lines then ``bad`` error rows."""
    batch = Batch(
        batch_id=batch_id,
        client_id="c1",
        counts=BatchCounters(total=good + bad, invalid=bad),
        metadata={"shop": "42"},
        estimated_cost_usd=0.05 * good,
        created_at=CREATED,
    )
    lines = [
        BatchLine(index=i, custom_id=f"r{i}", body={"prompt": f"p{i}"}, estimate_usd=0.05)
        for i in range(good)
    ] + [
        BatchLine(
            index=good + i,
            custom_id=f"bad{i}",
            error=TaskError(code="validation_error", message="prompt: Field required"),
        )
        for i in range(bad)
    ]
    store.create(batch, lines)
    return batch


def test_a_batch_and_its_lines_are_read_back_in_order(store: BatchStore) -> None:
    a_batch(store, good=3, bad=1)

    batch = store.get("batch_1")
    lines = list(store.lines("batch_1"))

    assert batch is not None
    assert (batch.status, batch.counts.total, batch.counts.invalid) == ("validating", 4, 1)
    assert batch.metadata == {"shop": "42"}
    assert [line.custom_id for line in lines] == ["r0", "r1", "r2", "bad0"]
    assert lines[0].body == {"prompt": "p0"} and lines[0].estimate_usd == 0.05
    assert lines[3].error is not None and lines[3].error.code == "validation_error"
    assert [line.index for line in store.lines("batch_1", start=1, limit=2)] == [1, 2]


def test_a_second_create_of_the_same_id_is_refused(store: BatchStore) -> None:
    a_batch(store, good=1)

    with pytest.raises(BatchExists):
        a_batch(store, good=1)


def test_each_change_is_counted_once_however_often_it_is_recorded(store: BatchStore) -> None:
    a_batch(store, good=2)

    created = [store.record_created("batch_1", 0, "t0") for _ in range(3)]
    started = [store.record_started("batch_1", "t0") for _ in range(3)]
    ended = [
        store.record_ended("batch_1", "t0", TaskStatus.SUCCEEDED, started=True, cost_usd=0.04)
        for _ in range(3)
    ]

    counts = store.get("batch_1").counts  # type: ignore[union-attr]
    assert (created, started) == ([True, False, False], [True, False, False])
    assert ended[0] is not None and ended[1:] == [None, None]
    assert (counts.created, counts.started, counts.succeeded, counts.ended_started) == (1, 1, 1, 1)
    assert (counts.running, counts.queued) == (0, 1)
    assert store.get("batch_1").final_cost_usd == 0.04  # type: ignore[union-attr]


def test_an_end_whose_start_was_never_counted_counts_both(store: BatchStore) -> None:
    a_batch(store, good=1)
    store.record_created("batch_1", 0, "t0")

    store.record_ended("batch_1", "t0", TaskStatus.FAILED, started=True, cost_usd=0.0)
    late_start = store.record_started("batch_1", "t0")

    counts = store.get("batch_1").counts  # type: ignore[union-attr]
    assert late_start is False
    assert (counts.started, counts.ended_started, counts.failed, counts.running) == (1, 1, 1, 0)


def test_a_task_that_ended_in_the_queue_never_counts_as_running(store: BatchStore) -> None:
    a_batch(store, good=2)
    store.record_created("batch_1", 0, "t0")
    store.record_created("batch_1", 1, "t1")

    store.record_ended("batch_1", "t0", TaskStatus.CANCELLED, started=False, cost_usd=0.0)

    counts = store.get("batch_1").counts  # type: ignore[union-attr]
    assert (counts.cancelled, counts.running, counts.queued, counts.started) == (1, 0, 1, 0)


def test_concurrent_ends_count_every_task_once_and_one_caller_wins_the_finish(
    store: BatchStore,
) -> None:
    # Given a batch of 20 tasks, all created and started
    a_batch(store, good=20, bad=2)
    for i in range(20):
        store.record_created("batch_1", i, f"t{i}")
        store.record_started("batch_1", f"t{i}")

    # When 4 finalisers each record every task's end and then try to finish the batch
    def finaliser(worker: int) -> list[str]:
        won: list[str] = []
        for i in range(20):
            after = store.record_ended(
                "batch_1", f"t{i}", TaskStatus.SUCCEEDED, started=True, cost_usd=0.01
            )
            if (
                after is not None
                and after.counts.done
                and store.claim_finish("batch_1", f"w{worker}")
            ):
                won.append(f"w{worker}")
        return won

    with ThreadPoolExecutor(max_workers=4) as pool:
        winners = [w for result in pool.map(finaliser, range(4)) for w in result]

    # Then every task is counted once, and exactly one finaliser won the finish
    batch = store.get("batch_1")
    assert batch is not None
    assert (batch.counts.succeeded, batch.counts.running, batch.counts.queued) == (20, 0, 0)
    assert batch.final_cost_usd == pytest.approx(0.2)
    assert len(winners) == 1 and batch.finished_by == winners[0]


def test_the_finish_is_refused_while_a_task_is_open_or_a_line_is_not_yet_a_task(
    store: BatchStore,
) -> None:
    a_batch(store, good=2)
    store.record_created("batch_1", 0, "t0")
    store.record_ended("batch_1", "t0", TaskStatus.SUCCEEDED, started=False, cost_usd=0.0)

    before_the_last_line = store.claim_finish("batch_1", "a")
    store.record_created("batch_1", 1, "t1")
    while_it_is_open = store.claim_finish("batch_1", "a")
    store.record_ended("batch_1", "t1", TaskStatus.EXPIRED, started=False, cost_usd=0.0)

    assert (before_the_last_line, while_it_is_open) == (False, False)
    assert store.claim_finish("batch_1", "b") is True
    assert store.claim_finish("batch_1", "c") is False


def test_a_skipped_line_counts_as_cancelled_and_cannot_become_a_task(store: BatchStore) -> None:
    a_batch(store, good=1)

    skipped = store.record_skipped("batch_1", 0)
    created = store.record_created("batch_1", 0, "t0")

    batch = store.get("batch_1")
    assert batch is not None
    assert (skipped, created, batch.counts.cancelled, batch.counts.done) == (True, False, 1, True)
    assert next(store.lines("batch_1")).skipped is True


def test_a_status_change_happens_only_from_an_allowed_status(store: BatchStore) -> None:
    a_batch(store, good=1)
    done_at = CREATED + timedelta(minutes=5)

    moved = store.set_status(
        "batch_1", BatchStatus.IN_PROGRESS, allowed_from=frozenset({BatchStatus.VALIDATING})
    )
    again = store.set_status(
        "batch_1", BatchStatus.IN_PROGRESS, allowed_from=frozenset({BatchStatus.VALIDATING})
    )
    completed = store.set_status(
        "batch_1",
        BatchStatus.COMPLETED,
        allowed_from=frozenset({BatchStatus.IN_PROGRESS}),
        completed_at=done_at,
        results_key="batches/c1/batch_1/results.jsonl",
    )

    batch = store.get("batch_1")
    assert (moved, again, completed) == (True, False, True)
    assert batch is not None and batch.status is BatchStatus.COMPLETED
    assert (batch.completed_at, batch.results_key) == (done_at, "batches/c1/batch_1/results.jsonl")


def test_a_clients_batches_are_listed_newest_first_in_pages(store: BatchStore) -> None:
    for n in range(3):
        batch = Batch(batch_id=f"batch_{n}", client_id="c1", created_at=CREATED + timedelta(n))
        store.create(batch, [])
    store.create(Batch(batch_id="batch_x", client_id="c2", created_at=CREATED), [])

    first = store.list_for_client("c1", limit=2, cursor=None)
    second = store.list_for_client("c1", limit=2, cursor=first.next_cursor)

    assert [b.batch_id for b in first.batches] == ["batch_2", "batch_1"]
    assert [b.batch_id for b in second.batches] == ["batch_0"]
    assert second.next_cursor is None


def a_file_batch(store: BatchStore, batch_id: str = "batch_f") -> Batch:
    """Store a batch whose lines are still in its input file (validating, no lines)."""
    batch = Batch(
        batch_id=batch_id,
        client_id="c1",
        created_at=CREATED,
        input_file=BatchInput(key="inputs/c1/uploads/u/0.jsonl", ref="s3://b/inputs/c1/x"),
    )
    store.create(batch, [])
    return batch


def test_an_input_files_counts_and_estimate_are_set_once(store: BatchStore) -> None:
    # GIVEN a file batch whose two lines (one bad) are stored
    a_file_batch(store)
    store.add_lines(
        "batch_f",
        [
            BatchLine(index=0, custom_id="a", body={"prompt": "x"}, estimate_usd=0.04),
            BatchLine(index=1, custom_id="b", error=TaskError(code="c", message="m")),
        ],
    )

    # WHEN its counts are committed twice (a repeated message)
    first = store.commit_input(
        "batch_f", total=2, invalid=1, estimate_usd=0.04, prepaid_day="2026-12-01"
    )
    second = store.commit_input(
        "batch_f", total=9, invalid=9, estimate_usd=9.0, prepaid_day="2026-12-02"
    )

    # THEN the first set them, the second changed nothing, and the line is not yet done
    batch = store.get("batch_f")
    assert (first, second) == (True, False)
    assert batch is not None and batch.ingested and batch.lines_counted
    assert (batch.counts.total, batch.counts.invalid, batch.prepaid_day) == (2, 1, "2026-12-01")
    assert batch.estimated_cost_usd == pytest.approx(0.04)
    assert not store.claim_finish("batch_f", "t")
    # AND once its one good line is a task that ended, the batch can finish
    store.record_created("batch_f", 0, "tsk_1")
    store.record_ended("batch_f", "tsk_1", TaskStatus.SUCCEEDED, started=True, cost_usd=0.04)
    assert store.claim_finish("batch_f", "t")


def test_a_batch_fails_with_its_error_only_before_its_input_is_counted(
    store: BatchStore,
) -> None:
    # GIVEN a file batch still validating, and another whose input is counted
    a_file_batch(store)
    a_file_batch(store, "batch_g")
    store.commit_input("batch_g", total=1, invalid=1, estimate_usd=0, prepaid_day=None)
    error = TaskError(code="invalid_input_file", message="line 1: not JSON")

    # WHEN both are failed
    failed = store.fail("batch_f", error, completed_at=CREATED)
    refused = store.fail("batch_g", error, completed_at=CREATED)

    # THEN only the first is failed, with its error and time, and it cannot fail again
    batch = store.get("batch_f")
    assert (failed, refused) == (True, False)
    assert batch is not None and batch.status is BatchStatus.FAILED and batch.status.final
    assert (batch.error, batch.completed_at) == (error, CREATED)
    assert not store.fail("batch_f", error, completed_at=CREATED)
    other = store.get("batch_g")
    assert other is not None and other.status is BatchStatus.VALIDATING and other.error is None
