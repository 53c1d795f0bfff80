"""Batches on the fakes: lines validated like single requests (bad ones become error rows and
spend nothing), the whole estimate prepaid or refused at once, lines made into ordinary tasks
in chunks (a retried chunk makes nothing twice), each task's end counted once, the one finisher
writing results.jsonl and announcing the batch, an Idempotency-Key replay, and cancel.

The batch function's queue is the fakes' ``deps.batches.queue``: ``run_batch_work`` plays the
function on what it holds, as the queue's event source does in AWS.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from image_gateway.batches.ports import BatchStatus, IngestProgress, line_task_id
from image_gateway.errors import Conflict, TooManyRequests
from image_gateway.models.batches import BatchCreateRequest
from image_gateway.models.task import TaskStatus
from image_gateway.service.batch_input import ingest_batch
from image_gateway.service.batch_results import finish_batch
from image_gateway.service.batches import (
    CHUNK_LINES,
    CHUNK_RESERVE_SECONDS,
    _make_task,
    cancel_batch,
    cancel_queued,
    create_batch,
    create_lines,
)
from image_gateway.service.lifecycle import change_status
from image_gateway.webhooks.batch_delivery import deliver_batch
from pydantic import ValidationError

from tests.fakes import FakeDependencies
from tests.unit.service.support import drain

PRICES = {"apimodels": {"per_image": {"1K": {"medium": 0.025}}}}


def body(*lines: dict[str, Any], **extra: Any) -> BatchCreateRequest:
    """A POST /v1/batches body."""
    return BatchCreateRequest.model_validate({"requests": list(lines), **extra})


def line(n: int, **fields: Any) -> dict[str, Any]:
    """A good line (apimodels, 1K medium: $0.025)."""
    request = {"prompt": f"mug {n}", "provider": "apimodels", "size": "1024x1024", **fields}
    return {"custom_id": f"sku-{n}", "body": request}


def run_batch_work(deps: FakeDependencies, rounds: int = 50) -> None:
    """The batch function on every queued message, and dispatch on every attempt, until both
    queues are empty (bounded)."""
    for _ in range(rounds):
        drain(deps)
        sent = list(deps.batches.queue.sent)
        deps.batches.queue.sent.clear()
        if not sent:
            return
        for message in sent:
            batch_id = str(message["batch_id"])
            if message["kind"] == "create":
                create_lines(deps, batch_id, int(message["start"]))  # type: ignore[call-overload]
            elif message["kind"] == "cancel":
                cancel_queued(deps, batch_id)
            elif message["kind"] == "ingest":
                ingest_batch(deps, batch_id, IngestProgress.model_validate(message))
            else:
                finish_batch(deps, batch_id)
    raise AssertionError("batch work did not settle")


@pytest.fixture
def priced(deps: FakeDependencies) -> FakeDependencies:
    """The fakes with apimodels priced."""
    deps.configure(prices=PRICES)
    return deps


def test_a_batch_runs_every_line_as_an_ordinary_task_and_writes_its_results_once(
    priced: FakeDependencies,
) -> None:
    # GIVEN a batch of three good lines and one without a prompt, with a callback_url
    bad = {"custom_id": "no-prompt", "body": {"size": "1024x1024"}}
    submitted = create_batch(
        priced,
        body(
            line(0),
            bad,
            line(1),
            line(2),
            metadata={"shop": "42"},
            callback_url="https://example.com/hook",
        ),
        client_id="c",
    ).batch

    # WHEN the batch function and the dispatcher run
    run_batch_work(priced)

    # THEN every task succeeded, counted once, and the results list every line in order
    batch = priced.batches.store.get(submitted.batch_id)
    assert batch is not None and batch.status is BatchStatus.COMPLETED
    assert (batch.counts.succeeded, batch.counts.invalid, batch.counts.running) == (3, 1, 0)
    assert batch.estimated_cost_usd == pytest.approx(0.075)
    assert batch.final_cost_usd == pytest.approx(0.075)
    text = priced.images.objects[f"batches/c/{batch.batch_id}/results.jsonl"].decode()
    rows = [json.loads(r) for r in text.splitlines()]
    assert [r["custom_id"] for r in rows] == ["sku-0", "no-prompt", "sku-1", "sku-2"]
    assert rows[1]["status"] == "invalid" and "prompt" in rows[1]["error"]["message"]
    assert rows[0]["status"] == "succeeded" and rows[0]["outputs"][0]["url"].startswith("https://")
    task = priced.tasks.require(rows[2]["task_id"])
    assert (task.batch_id, task.custom_id) == (batch.batch_id, "sku-1")
    # AND it was announced once: one event, one webhook queued
    (event,) = priced.batches.events.published
    assert (event.event_id, event.status, event.counts.succeeded) == (
        f"{batch.batch_id}:completed",
        BatchStatus.COMPLETED,
        3,
    )
    (message,) = priced.webhooks.deliveries.take()
    assert message.batch_id == batch.batch_id


def test_the_batch_completed_webhook_is_signed_and_carries_the_batch(
    priced: FakeDependencies,
) -> None:
    # GIVEN a completed batch that asked for a webhook
    hook = "https://example.com/hook"
    batch = create_batch(priced, body(line(0), callback_url=hook), client_id="c").batch
    run_batch_work(priced)
    (message,) = priced.webhooks.deliveries.take()

    # WHEN the delivery function makes its attempt
    record = deliver_batch(priced, message)

    # THEN the receiver got batch.completed, signed, with the batch and its results URL
    assert record is not None and record.outcome == "delivered"
    ((url, sent, headers),) = priced.webhooks.transport.posts
    payload = json.loads(sent)
    assert (url, payload["type"], payload["data"]["batch_id"]) == (
        hook,
        "batch.completed",
        batch.batch_id,
    )
    assert payload["data"]["results_url"].startswith("https://")
    assert headers["webhook-id"] == f"msg_{batch.batch_id}_completed"
    assert headers["webhook-signature"].startswith("v1,")


def test_bad_lines_spend_nothing_and_the_good_ones_are_prepaid(priced: FakeDependencies) -> None:
    create_batch(priced, body(line(0), {"custom_id": "x", "body": {"prompt": 5}}), client_id="c")

    assert priced.usage.usage("c").spent_usd == 0.025


def test_a_batch_over_the_budget_is_refused_whole_with_its_estimate(
    priced: FakeDependencies,
) -> None:
    # GIVEN a client with $0.05 left today
    priced.usage.set_limits("c", daily_budget_usd=0.05)

    # WHEN it sends three $0.025 lines
    with pytest.raises(TooManyRequests) as refused:
        create_batch(priced, body(line(0), line(1), line(2)), client_id="c")

    # THEN 429 budget_exceeded with the estimate, and nothing was written or spent
    assert (refused.value.code, refused.value.details["estimated_cost_usd"]) == (
        "budget_exceeded",
        0.075,
    )
    assert priced.batches.store.list_for_client("c", limit=10, cursor=None).batches == []
    assert priced.batches.queue.sent == [] and priced.usage.usage("c").spent_usd == 0


def test_prepaid_tasks_are_not_refused_by_the_budget_they_were_reserved_in(
    priced: FakeDependencies,
) -> None:
    # GIVEN a batch that used the whole budget
    priced.usage.set_limits("c", daily_budget_usd=0.05)
    batch = create_batch(priced, body(line(0), line(1)), client_id="c").batch

    # WHEN its lines become tasks THEN both run, and the day's spend is their cost
    run_batch_work(priced)
    assert priced.batches.store.get(batch.batch_id).counts.succeeded == 2  # type: ignore[union-attr]
    assert priced.usage.usage("c").spent_usd == 0.05


def test_a_line_of_several_images_is_one_line_with_every_image_and_its_parts_prepaid(
    priced: FakeDependencies,
) -> None:
    # GIVEN a budget of exactly one line of one image and one line of three ($0.10)
    priced.usage.set_limits("c", daily_budget_usd=0.1)
    three = {"custom_id": "sku-1", "body": {**line(1)["body"], "n": 3}}
    batch = create_batch(priced, body(line(0), three), client_id="c").batch
    assert batch.estimated_cost_usd == pytest.approx(0.1)

    # WHEN its lines become tasks and run
    run_batch_work(priced)

    # THEN the batch completed with two lines succeeded (the parent counted once, its parts not)
    done = priced.batches.store.get(batch.batch_id)
    assert done is not None and done.status is BatchStatus.COMPLETED
    assert (done.counts.total, done.counts.succeeded, done.counts.running) == (2, 2, 0)
    # AND the line of three has three images in the results, and nothing was spent twice
    text = priced.images.objects[f"batches/c/{batch.batch_id}/results.jsonl"].decode()
    rows = {r["custom_id"]: r for r in map(json.loads, text.splitlines())}
    assert len(rows["sku-1"]["outputs"]) == 3 and len(rows["sku-0"]["outputs"]) == 1
    parent = priced.tasks.require(rows["sku-1"]["task_id"])
    assert (parent.batch_id, parent.custom_id, len(parent.outputs)) == (
        batch.batch_id,
        "sku-1",
        3,
    )
    assert priced.usage.usage("c").spent_usd == pytest.approx(0.1)


def test_repeated_custom_ids_are_refused_with_the_ids() -> None:
    with pytest.raises(ValidationError, match=r"custom_id must be unique.*sku-1"):
        body(line(1), line(1))


def test_a_retried_chunk_makes_no_task_twice(priced: FakeDependencies) -> None:
    batch = create_batch(priced, body(line(0), line(1)), client_id="c").batch

    create_lines(priced, batch.batch_id, 0)
    create_lines(priced, batch.batch_id, 0)

    assert len(priced.tasks.all()) == 2
    assert priced.batches.store.get(batch.batch_id).counts.created == 2  # type: ignore[union-attr]


def test_a_chunk_short_of_time_makes_one_line_and_queues_the_rest_at_once(
    priced: FakeDependencies,
) -> None:
    # GIVEN a batch of three lines, its chunk run with less than the reserve left
    batch = create_batch(priced, body(line(0), line(1), line(2)), client_id="c").batch
    priced.batches.queue.sent.clear()

    # WHEN the chunk runs
    create_lines(priced, batch.batch_id, 0, seconds_left=lambda: CHUNK_RESERVE_SECONDS - 1)

    # THEN its first line became a task and the rest is queued from the next line
    assert [t.task_id for t in priced.tasks.all()] == [line_task_id(batch.batch_id, 0)]
    assert priced.batches.queue.sent == [{"kind": "create", "batch_id": batch.batch_id, "start": 1}]
    # AND the next message, with time, makes the rest: every line succeeds, once
    run_batch_work(priced)
    done = priced.batches.store.get(batch.batch_id)
    assert done is not None and done.status is BatchStatus.COMPLETED
    assert (done.counts.created, done.counts.succeeded) == (3, 3)


def test_a_chunk_with_time_left_makes_every_line_at_once(priced: FakeDependencies) -> None:
    batch = create_batch(priced, body(line(0), line(1), line(2)), client_id="c").batch
    priced.batches.queue.sent.clear()

    create_lines(priced, batch.batch_id, 0, seconds_left=lambda: CHUNK_RESERVE_SECONDS + 60)

    assert len(priced.tasks.all()) == 3
    assert [m["kind"] for m in priced.batches.queue.sent] == []


def test_a_large_batch_is_made_in_chunks_queued_at_once(priced: FakeDependencies) -> None:
    lines = [line(n) for n in range(CHUNK_LINES * 2 + 1)]

    create_batch(priced, body(*lines), client_id="c")

    assert [m["start"] for m in priced.batches.queue.sent] == [0, CHUNK_LINES, CHUNK_LINES * 2]


def test_the_same_idempotency_key_answers_the_first_batch(priced: FakeDependencies) -> None:
    first = create_batch(priced, body(line(0)), client_id="c", idempotency_key="k1")
    again = create_batch(priced, body(line(0)), client_id="c", idempotency_key="k1")

    assert (again.replayed, again.batch.batch_id) == (True, first.batch.batch_id)
    assert priced.usage.usage("c").spent_usd == 0.025


def test_a_cancelled_batch_cancels_its_queued_tasks_and_skips_its_unmade_lines(
    priced: FakeDependencies,
) -> None:
    # GIVEN one running place, a batch of three made into tasks (one running, two queued),
    # and a fourth line not yet made
    priced.usage.set_limits("c", max_running_tasks=1)
    batch = create_batch(priced, body(*(line(n) for n in range(4))), client_id="c").batch
    lines = list(priced.batches.store.lines(batch.batch_id))
    for made in lines[:3]:  # the fourth line's chunk has not run yet
        _make_task(priced, batch, made)
    priced.batches.queue.sent.clear()

    # WHEN it is cancelled
    cancel_batch(priced, "c", batch.batch_id)
    cancel_queued(priced, batch.batch_id)
    running = [t for t in priced.tasks.all() if t.status is TaskStatus.QUEUED and t.admitted_at]
    for task in running:  # the running one finishes (its provider took it)
        change_status(priced, task.task_id, TaskStatus.FAILED, by="test")
    run_batch_work(priced)

    # THEN it is cancelled, every line accounted for, and a second cancel is a 409
    done = priced.batches.store.get(batch.batch_id)
    assert done is not None and done.status is BatchStatus.CANCELLED
    assert done.counts.ended == 4 and done.counts.cancelled >= 2
    with pytest.raises(Conflict):
        cancel_batch(priced, "c", batch.batch_id)
