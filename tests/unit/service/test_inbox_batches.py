"""A JSONL manifest dropped into the inbox under batches/ becomes a batch of the client the
rules name, whose results file lands under batches/<client>/inbox/; a bad manifest is a failed
batch with its event; the same notification twice makes one batch."""

from __future__ import annotations

import json
from typing import Any

import pytest
from image_gateway.batches.ports import BatchStatus
from image_gateway.service.upload_edit import UploadOutcome, edit_upload

from tests.fakes import FakeDependencies, FakeInboxDependencies
from tests.unit.service.test_batches import PRICES, line, run_batch_work
from tests.unit.service.test_upload_edit import inbox_settings

RULES: dict[str, Any] = {
    "rules": [
        {"prefix": "batches/shop/", "prompt": "unused for a manifest", "client": "team-shop"},
    ]
}


@pytest.fixture
def inbox(deps: FakeDependencies) -> FakeInboxDependencies:
    """The upload-edit function on fakes, apimodels priced, a rule naming team-shop."""
    deps.configure(prices=PRICES)
    return FakeInboxDependencies(deps, rules=RULES, settings=inbox_settings())


def manifest(rows: list[Any]) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


def test_a_manifest_becomes_a_batch_of_the_rules_client_with_its_results_file(
    inbox: FakeInboxDependencies,
) -> None:
    # GIVEN a manifest of two lines dropped under batches/shop/
    created = inbox.objects.put("batches/shop/week-1.jsonl", manifest([line(0), line(1)]))

    # WHEN its notification is handled and the batch function runs
    result = edit_upload(inbox, created)
    run_batch_work(inbox.core)

    # THEN one batch of team-shop completed, its results file where the docs say
    assert result.outcome is UploadOutcome.BATCHED and result.batch_id is not None
    batch = inbox.core.batches.store.get(result.batch_id)
    assert batch is not None and batch.client_id == "team-shop"
    assert (batch.status, batch.counts.succeeded) == (BatchStatus.COMPLETED, 2)
    key = f"batches/team-shop/inbox/shop/week-1.{batch.batch_id}.results.jsonl"
    assert batch.results_key == key
    rows = [json.loads(r) for r in inbox.core.images.objects[key].decode().splitlines()]
    assert [r["custom_id"] for r in rows] == ["sku-0", "sku-1"]


def test_a_manifest_without_a_rule_belongs_to_the_inbox_client(
    inbox: FakeInboxDependencies,
) -> None:
    created = inbox.objects.put("batches/misc.jsonl", manifest([line(0)]))

    result = edit_upload(inbox, created)

    batch = inbox.core.batches.store.get(result.batch_id or "")
    assert batch is not None and batch.client_id == inbox.settings.client_id


def test_a_bad_manifest_is_a_failed_batch_with_its_event(inbox: FakeInboxDependencies) -> None:
    # GIVEN a manifest that is not JSONL
    created = inbox.objects.put("batches/shop/broken.jsonl", b"sku,prompt\n1,a mug\n")

    # WHEN it is handled and the batch function runs
    result = edit_upload(inbox, created)
    run_batch_work(inbox.core)

    # THEN its batch failed invalid_input_file, announced once
    batch = inbox.core.batches.store.get(result.batch_id or "")
    assert batch is not None and batch.error is not None
    assert (batch.status, batch.error.code) == (BatchStatus.FAILED, "invalid_input_file")
    (event,) = inbox.core.batches.events.published
    assert (event.batch_id, event.status) == (batch.batch_id, BatchStatus.FAILED)


def test_the_same_notification_twice_makes_one_batch(inbox: FakeInboxDependencies) -> None:
    created = inbox.objects.put("batches/shop/week-2.jsonl", manifest([line(0)]))

    first = edit_upload(inbox, created)
    second = edit_upload(inbox, created)

    assert (first.outcome, second.outcome) == (UploadOutcome.BATCHED, UploadOutcome.DUPLICATE)
    assert first.batch_id == second.batch_id
    ingests = [m for m in inbox.core.batches.queue.sent if m["kind"] == "ingest"]
    assert len(ingests) == 1
