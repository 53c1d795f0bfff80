"""Batches from an uploaded JSONL file through devstack: the file is uploaded through
POST /v1/uploads, named by input_file, read by the batch function (the answer is validating),
and its lines run like inline ones; a file that cannot be a batch ends failed with its code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.stack import StackInfo
from devstack.waiting import wait_until
from tests.e2e.own_stack.test_batches import _client, _line, _results

FINAL = {"completed", "cancelled", "expired", "failed"}


@pytest.fixture
def own_api(info: StackInfo) -> Iterator[httpx.Client]:
    """A client of its own."""
    with _client(info) as client:
        yield client


def _upload(api: httpx.Client, rows: list[Any]) -> str:
    """PUT a JSONL file into an upload slot; its ref."""
    data = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()
    plan = api.post(
        "/v1/uploads",
        json={"files": [{"content_type": "application/x-ndjson", "bytes": len(data)}]},
    )
    assert plan.status_code == 201, plan.text
    (slot,) = plan.json()["uploads"]
    httpx.put(slot["url"], content=data, headers=slot["headers"]).raise_for_status()
    return str(slot["ref"])


def _wait_final(api: httpx.Client, batch_id: str, timeout: float) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        batch: dict[str, Any] = api.get(f"/v1/batches/{batch_id}").raise_for_status().json()
        return batch if batch["status"] in FINAL else None

    return wait_until(final, timeout=timeout)


def test_an_uploaded_file_becomes_a_batch_whose_lines_run_like_inline_ones(
    own_api: httpx.Client,
) -> None:
    # GIVEN a file of four good lines and one without a prompt, uploaded
    bad = {"custom_id": "no-prompt", "body": {"size": "1024x1024"}}
    ref = _upload(own_api, [_line(0), _line(1), bad, _line(2), _line(3)])

    # WHEN it is sent as input_file
    answer = own_api.post("/v1/batches", json={"input_file": ref, "metadata": {"shop": "7"}})

    # THEN the answer is validating and names the file; the batch completes
    assert answer.status_code == 202, answer.text
    assert (answer.json()["status"], answer.json()["input_file"]) == ("validating", ref)
    batch = _wait_final(own_api, answer.json()["batch_id"], timeout=240)
    assert batch["status"] == "completed", batch
    counts = batch["counts"]
    assert (counts["total"], counts["succeeded"], counts["invalid"]) == (5, 4, 1)
    rows = _results(batch)
    assert [(r["custom_id"], r["status"]) for r in rows] == [
        ("item-0", "succeeded"),
        ("item-1", "succeeded"),
        ("no-prompt", "invalid"),
        ("item-2", "succeeded"),
        ("item-3", "succeeded"),
    ]
    assert httpx.get(rows[0]["outputs"][0]["url"]).status_code == 200


@pytest.mark.parametrize(
    ("rows", "code"),
    [(["{not json"], "invalid_input_file"), ([_line(0), _line(0)], "duplicate_custom_id")],
    ids=["not-jsonl", "repeated-custom-id"],
)
def test_a_file_that_cannot_be_a_batch_ends_failed_with_its_code(
    own_api: httpx.Client, rows: list[Any], code: str
) -> None:
    # GIVEN a bad file, uploaded
    ref = _upload(own_api, rows)

    # WHEN it is sent as input_file
    answer = own_api.post("/v1/batches", json={"input_file": ref})

    # THEN it is accepted, then failed with the code; nothing was spent
    assert answer.status_code == 202, answer.text
    batch = _wait_final(own_api, answer.json()["batch_id"], timeout=60)
    assert (batch["status"], batch["error"]["code"]) == ("failed", code)
    assert (batch["results_url"], batch["estimated_cost_usd"]) == (None, 0)


def test_a_missing_file_ends_the_batch_failed_not_found(own_api: httpx.Client) -> None:
    # GIVEN a ref to an upload slot that was never filled
    ref = _upload(own_api, [_line(0)]).replace("/0.jsonl", "/9.jsonl")

    # WHEN it is sent as input_file
    answer = own_api.post("/v1/batches", json={"input_file": ref})

    # THEN the batch fails input_file_not_found
    batch = _wait_final(own_api, answer.json()["batch_id"], timeout=60)
    assert (batch["status"], batch["error"]["code"]) == ("failed", "input_file_not_found")
