"""Batches from an uploaded JSONL file on the fakes: the API stores the batch validating and
reads nothing; the batch function surveys the file, validates and stores its lines in
segments, prepays once and makes the tasks; a file that cannot be a batch fails it with a
stable code, announced, and spends nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from image_gateway.batches.ports import BatchStatus, IngestProgress
from image_gateway.models.batches import BatchCreateRequest
from image_gateway.service import batch_input
from image_gateway.service.batch_input import ingest_batch
from image_gateway.service.batches import cancel_batch, create_batch

from tests.fakes import FakeDependencies
from tests.unit.service.test_batches import PRICES, line, run_batch_work

KEY = "inputs/c/uploads/upl_1/0.jsonl"
REF = f"s3://images/{KEY}"


@pytest.fixture
def priced(deps: FakeDependencies) -> FakeDependencies:
    """The fakes with apimodels priced."""
    deps.configure(prices=PRICES)
    return deps


def upload(deps: FakeDependencies, rows: list[Any], key: str = KEY) -> None:
    """Put a JSONL file where POST /v1/uploads would have let the caller PUT it."""
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    deps.images.put_file(key, text.encode(), content_type="application/x-ndjson")


def submit(deps: FakeDependencies, ref: str = REF, **extra: Any) -> str:
    """POST /v1/batches with input_file; the batch id."""
    body = BatchCreateRequest.model_validate({"input_file": ref, **extra})
    return create_batch(deps, body, client_id="c").batch.batch_id


def test_the_api_reads_nothing_and_answers_validating(priced: FakeDependencies) -> None:
    # GIVEN no file at all (the API does not look)
    # WHEN a batch names one
    batch_id = submit(priced)

    # THEN it is validating, with no lines yet, and its reading is queued
    batch = priced.batches.store.get(batch_id)
    assert batch is not None and batch.status is BatchStatus.VALIDATING
    assert batch.counts.total == 0 and batch.input_file is not None
    assert priced.batches.queue.sent == [
        {"kind": "ingest", "batch_id": batch_id, **IngestProgress().model_dump()}
    ]


def test_a_file_batch_runs_every_line_and_writes_its_results(priced: FakeDependencies) -> None:
    # GIVEN a file of three good lines, one bad body and a blank line
    upload(priced, [line(0), {"custom_id": "bad", "body": {"size": "1024x1024"}}, "", line(1)])
    batch_id = submit(priced)

    # WHEN the batch function and the dispatcher run
    run_batch_work(priced)

    # THEN the good lines succeeded, the bad one is an invalid row, the estimate was prepaid
    batch = priced.batches.store.get(batch_id)
    assert batch is not None and batch.status is BatchStatus.COMPLETED
    assert (batch.counts.total, batch.counts.succeeded, batch.counts.invalid) == (3, 2, 1)
    assert batch.estimated_cost_usd == pytest.approx(0.05)
    assert priced.usage.usage("c").spent_usd == pytest.approx(0.05)
    text = priced.images.objects[f"batches/c/{batch_id}/results.jsonl"].decode()
    rows = [json.loads(r) for r in text.splitlines()]
    assert [(r["custom_id"], r["status"]) for r in rows] == [
        ("sku-0", "succeeded"),
        ("bad", "invalid"),
        ("sku-1", "succeeded"),
    ]


def test_a_file_is_read_in_segments_from_where_the_last_one_stopped(
    priced: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN segments of two lines and a file of five
    monkeypatch.setattr(batch_input, "INGEST_LINES", 2)
    upload(priced, [line(n) for n in range(5)])
    batch_id = submit(priced)

    # WHEN the batch function runs
    run_batch_work(priced)

    # THEN every line became a task, once, in order
    batch = priced.batches.store.get(batch_id)
    assert batch is not None and batch.status is BatchStatus.COMPLETED
    assert (batch.counts.total, batch.counts.succeeded) == (5, 5)
    lines = list(priced.batches.store.lines(batch_id))
    assert [x.custom_id for x in lines] == [f"sku-{n}" for n in range(5)]
    assert priced.usage.usage("c").spent_usd == pytest.approx(0.125)


def test_a_repeated_last_segment_prepays_nothing_twice(priced: FakeDependencies) -> None:
    # GIVEN a file batch whose reading message is delivered twice
    upload(priced, [line(0), line(1)])
    batch_id = submit(priced)
    (message,) = priced.batches.queue.sent
    progress = IngestProgress.model_validate(message)

    # WHEN both deliveries run
    ingest_batch(priced, batch_id, progress)
    ingest_batch(priced, batch_id, progress)

    # THEN the estimate is held once and each chunk queued once
    assert priced.usage.usage("c").spent_usd == pytest.approx(0.05)
    creates = [m for m in priced.batches.queue.sent if m["kind"] == "create"]
    assert creates == [{"kind": "create", "batch_id": batch_id, "start": 0}]


@pytest.mark.parametrize(
    ("rows", "code"),
    [
        (["not json"], "invalid_input_file"),
        ([{"custom_id": "a b", "body": {}}], "invalid_input_file"),
        ([{"body": {"prompt": "x"}}], "invalid_input_file"),
        ([], "invalid_input_file"),
        ([line(0), line(0)], "duplicate_custom_id"),
    ],
    ids=["not-json", "bad-custom-id", "no-custom-id", "empty", "repeated-custom-id"],
)
def test_a_file_that_cannot_be_a_batch_fails_it_with_its_code_and_spends_nothing(
    priced: FakeDependencies, rows: list[Any], code: str
) -> None:
    # GIVEN a file that is not lines of {custom_id, body}
    upload(priced, rows)
    batch_id = submit(priced)

    # WHEN the batch function reads it
    run_batch_work(priced)

    # THEN the batch failed with the code, nothing was spent, and it was announced once
    batch = priced.batches.store.get(batch_id)
    assert batch is not None and batch.status is BatchStatus.FAILED
    assert batch.error is not None and batch.error.code == code
    assert priced.usage.usage("c").spent_usd == 0
    (event,) = priced.batches.events.published
    assert (event.status, event.results, event.error and event.error.code) == (
        BatchStatus.FAILED,
        None,
        code,
    )


def test_a_missing_or_foreign_file_fails_the_batch_as_not_found(priced: FakeDependencies) -> None:
    # GIVEN another client's file and a ref to nothing
    upload(priced, [line(0)], key="inputs/other/uploads/upl_2/0.jsonl")
    foreign = submit(priced, "s3://images/inputs/other/uploads/upl_2/0.jsonl")
    missing = submit(priced, "s3://images/inputs/c/uploads/upl_9/0.jsonl")

    # WHEN the batch function reads them
    run_batch_work(priced)

    # THEN both failed input_file_not_found
    for batch_id in (foreign, missing):
        batch = priced.batches.store.get(batch_id)
        assert batch is not None and batch.error is not None
        assert (batch.status, batch.error.code) == (BatchStatus.FAILED, "input_file_not_found")


@pytest.mark.parametrize(
    ("limit", "value", "code"),
    [
        ("MAX_BATCH_LINES", 3, "input_file_too_many_lines"),
        ("MAX_BATCH_FILE_BYTES", 100, "input_file_too_large"),
    ],
)
def test_a_file_over_a_limit_fails_the_batch_and_stores_no_line(
    priced: FakeDependencies, monkeypatch: pytest.MonkeyPatch, limit: str, value: int, code: str
) -> None:
    # GIVEN a limit of three lines (or 100 bytes) and a file of four lines (over 100 bytes)
    monkeypatch.setattr(batch_input, limit, value)
    upload(priced, [line(n) for n in range(4)])
    batch_id = submit(priced)

    # WHEN the batch function reads it
    run_batch_work(priced)

    # THEN it failed with the limit's code, and no line was stored
    batch = priced.batches.store.get(batch_id)
    assert batch is not None and batch.error is not None
    assert batch.error.code == code
    assert list(priced.batches.store.lines(batch_id)) == []


def test_a_file_batch_over_the_budget_fails_with_its_estimate_and_spends_nothing(
    priced: FakeDependencies,
) -> None:
    # GIVEN a client with $0.05 left today and a file of three $0.025 lines
    priced.usage.set_limits("c", daily_budget_usd=0.05)
    upload(priced, [line(n) for n in range(3)])
    batch_id = submit(priced)

    # WHEN the batch function reads it
    run_batch_work(priced)

    # THEN the batch failed budget_exceeded naming the estimate; no task, nothing spent
    batch = priced.batches.store.get(batch_id)
    assert batch is not None and batch.error is not None
    assert (batch.status, batch.error.code) == (BatchStatus.FAILED, "budget_exceeded")
    assert "0.075" in batch.error.message
    assert priced.usage.usage("c").spent_usd == 0
    assert priced.tasks.list_for_client("c", limit=10, cursor=None).tasks == []


def test_a_file_batch_cancelled_while_validating_makes_no_task_and_holds_nothing(
    priced: FakeDependencies,
) -> None:
    # GIVEN a file batch cancelled before its file was read
    upload(priced, [line(0), line(1)])
    batch_id = submit(priced)
    cancel_batch(priced, "c", batch_id)

    # WHEN the batch function runs
    run_batch_work(priced)

    # THEN it ended cancelled with its lines skipped; nothing is held
    batch = priced.batches.store.get(batch_id)
    assert batch is not None and batch.status is BatchStatus.CANCELLED
    assert (batch.counts.total, batch.counts.cancelled) == (2, 2)
    assert priced.usage.usage("c").spent_usd == 0
    assert priced.tasks.list_for_client("c", limit=10, cursor=None).tasks == []
