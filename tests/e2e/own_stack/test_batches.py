"""Batches through devstack: 120 inline requests of mixed sizes all succeed and their results
file lists every custom_id with a downloadable image; bad lines become error rows and spend
nothing; repeated custom_ids are refused; a batch over the client's budget is refused whole;
a cancelled batch cancels what is still queued. Each limited test has a client of its own.
On a devstack of the module's own (see this folder's conftest.py).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore

from devstack.stack import StackInfo
from devstack.waiting import wait_until
from devstack.webhook_receiver import WebhookReceiver
from tests.e2e.support import EventLog, download, open_image

SIZES = ["1024x1024", "1536x1024", "1024x1536"]
FINAL = {"completed", "cancelled", "expired"}

pytestmark = pytest.mark.own_devstack


def _client(info: StackInfo, **limits: float) -> httpx.Client:
    """A new client with the limits given (its LIMITS item), as httpx."""
    dynamodb = boto3.client("dynamodb")
    client_id = f"batch-{uuid.uuid4().hex[:8]}"
    key = DynamoDBApiKeyStore(dynamodb, info.table_name).create_key(client_id)
    if limits:
        dynamodb.update_item(
            TableName=info.table_name,
            Key={"pk": {"S": f"LIMITS#{client_id}"}, "sk": {"S": "LIMITS"}},
            UpdateExpression="SET " + ", ".join(f"{k} = :{k}" for k in limits),
            ExpressionAttributeValues={f":{k}": {"N": str(v)} for k, v in limits.items()},
        )
    return httpx.Client(
        base_url=info.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    )


@pytest.fixture
def own_api(info: StackInfo) -> Iterator[httpx.Client]:
    """A client of its own, without limits of its own."""
    with _client(info) as client:
        yield client


def _line(n: int, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": f"item-{n}",
        "body": {"prompt": f"product photo {n}", "provider": "mountsea-compat", **body},
    }


def _wait_final(api: httpx.Client, batch_id: str, timeout: float) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        batch: dict[str, Any] = api.get(f"/v1/batches/{batch_id}").raise_for_status().json()
        return batch if batch["status"] in FINAL else None

    return wait_until(final, timeout=timeout)


def _results(batch: dict[str, Any]) -> list[dict[str, Any]]:
    text = httpx.get(batch["results_url"]).raise_for_status().text
    return [json.loads(line) for line in text.splitlines()]


def test_120_inline_requests_of_mixed_sizes_all_succeed_with_a_results_file(
    own_api: httpx.Client,
) -> None:
    # GIVEN 120 requests in three sizes
    lines = [_line(n, size=SIZES[n % 3]) for n in range(120)]

    # WHEN they are sent as one batch
    started = time.monotonic()
    answer = own_api.post("/v1/batches", json={"requests": lines, "metadata": {"shop": "42"}})
    assert answer.status_code == 202, answer.text
    batch_id = answer.json()["batch_id"]
    batch = _wait_final(own_api, batch_id, timeout=240)
    took = time.monotonic() - started

    # THEN all 120 succeeded, and the results file has every custom_id with its image
    assert batch["status"] == "completed"
    assert batch["counts"] == {
        "total": 120, "queued": 0, "running": 0, "succeeded": 120,
        "failed": 0, "cancelled": 0, "expired": 0, "invalid": 0,
    }  # fmt: skip
    assert batch["metadata"] == {"shop": "42"} and batch["completed_at"] is not None
    rows = _results(batch)
    assert [row["custom_id"] for row in rows] == [f"item-{n}" for n in range(120)]
    assert all(row["status"] == "succeeded" and len(row["outputs"]) == 1 for row in rows)
    for n in (0, 1, 2, 119):  # each size, and the last line
        image = open_image(download(rows[n]["outputs"][0]["url"]))
        assert f"{image.width}x{image.height}" == SIZES[n % 3]
    task = own_api.get(f"/v1/tasks/{rows[5]['task_id']}").raise_for_status().json()
    assert (task["batch_id"], task["custom_id"]) == (batch_id, "item-5")
    listed = own_api.get("/v1/batches").raise_for_status().json()
    assert [b["batch_id"] for b in listed["batches"]] == [batch_id]
    print(f"\n120-line batch: completed in {took:.1f} s on devstack")


def test_bad_lines_become_error_rows_and_spend_nothing(own_api: httpx.Client) -> None:
    # GIVEN two good lines, one without a prompt and one with an unknown size
    lines = [_line(0), {"custom_id": "no-prompt", "body": {"size": "1024x1024"}}]
    lines += [_line(2), {"custom_id": "odd", "body": {"prompt": "x", "size": "banana"}}]

    # WHEN they are sent
    answer = own_api.post("/v1/batches", json={"requests": lines})
    assert answer.status_code == 202, answer.text
    batch = _wait_final(own_api, answer.json()["batch_id"], timeout=120)

    # THEN the good ones succeed, the bad ones are invalid rows saying why, in order
    assert (batch["counts"]["succeeded"], batch["counts"]["invalid"]) == (2, 2)
    rows = _results(batch)
    assert [r["custom_id"] for r in rows] == ["item-0", "no-prompt", "item-2", "odd"]
    assert (rows[1]["status"], rows[1]["task_id"]) == ("invalid", None)
    assert (
        rows[1]["error"]["code"] == "validation_error" and "prompt" in rows[1]["error"]["message"]
    )
    assert rows[3]["error"]["code"] == "validation_error"


def test_repeated_custom_ids_are_refused_whole(own_api: httpx.Client) -> None:
    answer = own_api.post("/v1/batches", json={"requests": [_line(1), _line(1)]})

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "validation_error"
    assert "custom_id must be unique" in answer.json()["error"]["message"]
    assert own_api.get("/v1/batches").json()["batches"] == []


def test_a_batch_over_the_daily_budget_is_refused_whole_with_its_estimate(
    info: StackInfo,
) -> None:
    # GIVEN a client with a $0.05 budget and apimodels at $0.025 an image (1K medium)
    with _client(info, daily_budget_usd=0.05) as api:
        lines = [_line(n, provider="apimodels", size="1024x1024") for n in range(3)]

        # WHEN it sends a batch of three
        answer = api.post("/v1/batches", json={"requests": lines})

        # THEN it is refused at once with the estimate, and nothing was spent or made
        assert answer.status_code == 429, answer.text
        error = answer.json()["error"]
        assert (error["code"], error["estimated_cost_usd"]) == ("budget_exceeded", 0.075)
        assert api.get("/v1/usage").json()["spent_usd"] == 0
        assert api.get("/v1/batches").json()["batches"] == []
        assert api.post("/v1/batches", json={"requests": lines[:2]}).status_code == 202


def test_a_cancelled_batch_cancels_its_queued_tasks_and_lets_running_ones_finish(
    info: StackInfo,
) -> None:
    # GIVEN a client with one running place and a batch of six
    with _client(info, max_running_tasks=1) as api:
        lines = [_line(n, size="1024x1024") for n in range(6)]
        batch_id = api.post("/v1/batches", json={"requests": lines}).json()["batch_id"]
        wait_until(
            lambda: api.get(f"/v1/batches/{batch_id}").json()["status"] == "in_progress",
            timeout=60,
        )

        # WHEN it is cancelled
        answer = api.post(f"/v1/batches/{batch_id}/cancel")
        assert answer.status_code == 200, answer.text
        batch = _wait_final(api, batch_id, timeout=120)

        # THEN it ends cancelled: every line is accounted for, most never ran
        counts = batch["counts"]
        assert batch["status"] == "cancelled"
        assert counts["succeeded"] + counts["cancelled"] == 6 and counts["cancelled"] >= 3
        rows = _results(batch)
        assert sorted(r["status"] for r in rows).count("cancelled") == counts["cancelled"]
        again = api.post(f"/v1/batches/{batch_id}/cancel")
        assert (again.status_code, again.json()["error"]["code"]) == (409, "batch_not_cancellable")


def test_a_finished_batch_is_announced_once_on_the_bus_and_by_a_signed_webhook(
    api: httpx.Client, info: StackInfo, events: EventLog
) -> None:
    # GIVEN a receiver holding the demo client's webhook secret
    receiver = WebhookReceiver(info.webhook_secret)
    try:
        path = f"/batch/{uuid.uuid4().hex[:8]}"
        # WHEN the demo client's batch of two, with a callback_url, completes
        request = {"requests": [_line(0), _line(1)], "callback_url": receiver.url(path)}
        answer = api.post("/v1/batches", json=request)
        assert answer.status_code == 202, answer.text
        batch_id = answer.json()["batch_id"]
        batch = _wait_final(api, batch_id, timeout=120)

        # THEN one Image Batch Completed event and one verified batch.completed webhook
        event = events.wait_for_other("Image Batch Completed", {"batch_id": batch_id}, 30)
        (delivery,) = receiver.wait(path, 1)
    finally:
        receiver.close()
    assert event["detail"]["status"] == "completed"
    assert event["detail"]["counts"]["succeeded"] == 2
    assert event["detail"]["results"]["key"] == f"batches/demo/{batch_id}/results.jsonl"
    assert delivery.payload is not None, "the signature did not verify"
    assert delivery.payload["type"] == "batch.completed"
    assert delivery.payload["data"]["batch_id"] == batch_id == batch["batch_id"]
    assert len(_results(delivery.payload["data"])) == 2
