"""A JSONL manifest dropped into the inbox under batches/ becomes a batch of the client the
rules name, whose results file lands under batches/<client>/inbox/ and, with an errors file,
next to the manifest in the inbox; a bad manifest is a failed batch with its event and an errors
file saying why; the files written next to a manifest are not manifests; the same notification
twice makes one batch."""

from __future__ import annotations

import json
from typing import Any

import pytest
from image_gateway.batches.ports import BatchStatus
from image_gateway.inbox.naming import is_manifest
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


def inbox_file(inbox: FakeInboxDependencies, key: str) -> list[dict[str, Any]]:
    """The JSONL file a manifest's batch wrote at ``key`` of the inbox bucket."""
    body = inbox.core.batches.files.objects[(inbox.settings.bucket_name, key)]
    return [json.loads(row) for row in body.decode().splitlines()]


def test_a_manifests_results_and_errors_files_land_next_to_it(
    inbox: FakeInboxDependencies,
) -> None:
    # GIVEN a manifest of a good line and a line without a prompt
    bad = {"custom_id": "sku-bad", "body": {"provider": "apimodels"}}
    created = inbox.objects.put("batches/shop/week-3.jsonl", manifest([line(0), bad]))

    # WHEN it is handled and the batch function runs
    result = edit_upload(inbox, created)
    run_batch_work(inbox.core)

    # THEN beside it: every line in the results file, only the bad one in the errors file
    results = inbox_file(inbox, "batches/shop/week-3.results.jsonl")
    assert [(r["custom_id"], r["status"]) for r in results] == [
        ("sku-0", "succeeded"),
        ("sku-bad", "invalid"),
    ]
    (error,) = inbox_file(inbox, "batches/shop/week-3.errors.jsonl")
    assert (error["custom_id"], error["task_id"], error["status"]) == ("sku-bad", None, "invalid")
    assert error["error"]["code"] == "validation_error"
    batch = inbox.core.batches.store.get(result.batch_id or "")
    assert batch is not None and batch.results_key is not None
    assert inbox.core.images.objects[batch.results_key].decode().splitlines() == [
        json.dumps(r, separators=(",", ":")) for r in results
    ]


def test_a_bad_manifests_errors_file_says_why(inbox: FakeInboxDependencies) -> None:
    # GIVEN a manifest that is not JSONL
    created = inbox.objects.put("batches/shop/broken-2.jsonl", b"sku,prompt\n1,a mug\n")

    # WHEN it is handled and the batch function runs
    edit_upload(inbox, created)
    run_batch_work(inbox.core)

    # THEN an errors file names invalid_input_file; there are no results to write
    (error,) = inbox_file(inbox, "batches/shop/broken-2.errors.jsonl")
    assert (error["status"], error["error"]["code"]) == ("failed", "invalid_input_file")
    written = inbox.core.batches.files.objects
    assert ("inbox", "batches/shop/broken-2.results.jsonl") not in written


def test_a_manifest_refused_by_the_inbox_gets_its_errors_file(
    inbox: FakeInboxDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a manifest over the batch file limit (lowered for the test)
    monkeypatch.setattr("image_gateway.service.inbox_batches.MAX_BATCH_FILE_BYTES", 10)
    created = inbox.objects.put("batches/huge.jsonl", manifest([line(0)]))

    # WHEN its notification is handled
    edit_upload(inbox, created)

    # THEN the errors file beside it says it is too large
    (error,) = inbox_file(inbox, "batches/huge.errors.jsonl")
    assert error["error"]["code"] == "input_file_too_large"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("batches/shop/week-1.jsonl", True),
        ("batches/shop/week-1.JSONL", True),
        ("batches/shop/week-1.results.jsonl", False),
        ("batches/shop/week-1.errors.jsonl", False),
        ("batches/shop/week-1.Errors.JSONL", False),
        ("shop/week-1.jsonl", False),
    ],
)
def test_only_manifests_are_manifests(key: str, expected: bool) -> None:
    assert is_manifest(key) is expected


@pytest.mark.parametrize("name", ["week-1.results.jsonl", "week-1.errors.jsonl"])
def test_a_file_written_next_to_a_manifest_is_skipped(
    inbox: FakeInboxDependencies, name: str
) -> None:
    # GIVEN the notification of a results or errors file written next to a manifest
    created = inbox.objects.put(f"batches/shop/{name}", manifest([line(0)]))

    # WHEN it is handled
    result = edit_upload(inbox, created)

    # THEN it is skipped: no batch, no task, nothing queued
    assert (result.outcome, result.batch_id, result.task_id) == (
        UploadOutcome.SKIPPED,
        None,
        None,
    )
    assert inbox.core.batches.queue.sent == [] and inbox.core.tasks.all() == []
