"""Per-client limits through devstack: a client over its rate gets 429 with Retry-After, a $0.05
budget is refused once two $0.025 images reached it, work over the running limit waits its turn
(and all of it succeeds), a full queue is 429 queue_full, and GET /v1/usage shows each; an inbox
upload over its owner's rate becomes a failed task. Every API test has a client (and API key) of
its own, with limits the operator sets in the tasks table as the README says, so no other test
is touched; the inbox's client is limited only for the moment of its test."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore
from image_gateway.limits.ports import RATE_WINDOW_SECONDS
from PIL import Image

from devstack.stack import StackInfo
from devstack.waiting import wait_until
from tests.e2e.support import EventLog

ClientFactory = Callable[..., httpx.Client]
TERMINAL = {"succeeded", "failed", "cancelled", "expired"}


@pytest.fixture
def limited_client(info: StackInfo) -> Iterator[ClientFactory]:
    """A new client with the limits given (an ``update-item`` on its LIMITS item), as httpx."""
    dynamodb = boto3.client("dynamodb")
    opened: list[httpx.Client] = []

    def make(**limits: float) -> httpx.Client:
        client_id = f"limits-{uuid.uuid4().hex[:8]}"
        key = DynamoDBApiKeyStore(dynamodb, info.table_name).create_key(client_id)
        names = ", ".join(f"{name} = :{name}" for name in limits)
        dynamodb.update_item(
            TableName=info.table_name,
            Key={"pk": {"S": f"LIMITS#{client_id}"}, "sk": {"S": "LIMITS"}},
            UpdateExpression=f"SET {names}",
            ExpressionAttributeValues={f":{k}": {"N": str(v)} for k, v in limits.items()},
        )
        client = httpx.Client(
            base_url=info.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def _submit(api: httpx.Client, prompt: str, **fields: object) -> httpx.Response:
    body = {"prompt": prompt, "provider": "mountsea-compat", "size": "1024x1024", **fields}
    return api.post("/v1/images", json=body)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


def _wait_for_a_fresh_rate_window(needed_seconds: float = 15) -> None:
    """Sleep into the next rate window when fewer than ``needed_seconds`` are left in this one.

    The rate window is a fixed, epoch-aligned minute: two requests made across its boundary are
    counted in two windows, so a test that needs both in one must not start just before it."""
    left = RATE_WINDOW_SECONDS - time.time() % RATE_WINDOW_SECONDS
    if left < needed_seconds:
        time.sleep(left + 0.1)


def _assert_429(answer: httpx.Response, code: str) -> int:
    """The refusal's shape; its Retry-After."""
    assert answer.status_code == 429, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["message"]
    retry_after = int(answer.headers["Retry-After"])
    assert retry_after == error["retry_after_seconds"] >= 1
    return retry_after


def test_a_client_over_its_rate_gets_429_with_retry_after(
    limited_client: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a client allowed 3 submits a minute
    api = limited_client(requests_per_minute=3)

    # WHEN it submits 7 times at once (a minute's boundary can fall in between only once)
    answers = [_submit(api, f"rate {n}") for n in range(7)]

    # THEN the first 3 of a minute are accepted and the next is 429 rate_limited, retry within
    # the minute; the refused ones wrote no task
    statuses = [a.status_code for a in answers]
    first_refused = statuses.index(429)
    assert first_refused >= 3 and set(statuses[:first_refused]) == {202}, statuses
    assert 1 <= _assert_429(answers[first_refused], "rate_limited") <= 60
    listed = api.get("/v1/tasks", params={"limit": 100}).json()["tasks"]
    assert len(listed) == statuses.count(202)
    usage = api.get("/v1/usage").json()
    assert usage["rate"]["limit_per_minute"] == 3
    assert usage["rate"]["used"] + usage["rate"]["remaining"] == 3

    # and the API function logged RequestsThrottled by Code as EMF (the README's name)
    seen: list[dict[str, Any]] = []

    def throttled() -> dict[str, Any] | None:
        for line in capsys.readouterr().out.splitlines():
            if '"RequestsThrottled"' in line and '"_aws"' in line:
                seen.append(json.loads(line[line.index("{") :]))
        return next((d for d in seen if d.get("Code") == "rate_limited"), None)

    emitted = wait_until(throttled, timeout=10)
    assert emitted["RequestsThrottled"] == 1
    assert emitted["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ImageTaskGateway"
    assert emitted["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Code"]]


def test_a_005_budget_is_refused_once_the_estimated_spend_reaches_it(
    limited_client: ClientFactory,
) -> None:
    # GIVEN a client with a $0.05 budget, and apimodels' price table ($0.025 for 1K medium)
    api = limited_client(daily_budget_usd=0.05)
    prices = api.get("/v1/providers").json()["providers"]
    apimodels = next(p for p in prices if p["name"] == "apimodels")
    assert apimodels["price"]["per_image"]["1K"]["medium"] == 0.025
    image = {"provider": "apimodels", "quality": "medium"}

    # WHEN it submits two such images and a third
    first, second = _submit(api, "budget 1", **image), _submit(api, "budget 2", **image)
    third = _submit(api, "budget 3", **image)

    # THEN the two fit exactly and the third is 429 budget_exceeded until midnight UTC
    assert (first.status_code, second.status_code) == (202, 202), first.text + second.text
    assert 1 <= _assert_429(third, "budget_exceeded") <= 86400
    usage = api.get("/v1/usage").json()
    assert (usage["spent_usd"], usage["daily_budget_usd"], usage["budget_remaining_usd"]) == (
        0.05,
        0.05,
        0.0,
    )
    # and a free task (a provider without a price table) still fits
    assert _submit(api, "budget free").status_code == 202


def test_over_its_running_limit_a_clients_work_waits_its_turn_and_all_of_it_succeeds(
    limited_client: ClientFactory,
) -> None:
    # GIVEN a client allowed 2 running tasks
    api = limited_client(max_running_tasks=2)

    # WHEN it submits 12 at once THEN every one is accepted (no 429 for concurrency)
    answers = [_submit(api, f"queued {n}", provider="mountsea-async") for n in range(12)]
    assert [a.status_code for a in answers] == [202] * 12
    usage = api.get("/v1/usage").json()
    assert usage["running_tasks"] + usage["queued_tasks"] <= 12
    assert usage["max_running_tasks"] == 2
    waiting = [a.json() for a in answers if a.json()["waiting_for"] == "client_limit"]
    assert waiting, "with 2 places, some of 12 tasks must wait for their client's limit"

    # THEN they all succeed, none expired, and at no moment did more than 2 run
    ids = [a.json()["task_id"] for a in answers]

    def finished() -> list[dict[str, Any]] | None:
        views = [api.get(f"/v1/tasks/{task_id}").json() for task_id in ids]
        assert api.get("/v1/usage").json()["running_tasks"] <= 2
        return views if all(v["status"] in TERMINAL for v in views) else None

    views = wait_until(finished, timeout=120, interval=0.3)
    assert [v["status"] for v in views] == ["succeeded"] * 12
    usage = api.get("/v1/usage").json()
    assert (usage["running_tasks"], usage["queued_tasks"]) == (0, 0)


def test_a_cancelled_task_frees_its_place_once_and_a_full_queue_is_429_queue_full(
    limited_client: ClientFactory,
) -> None:
    # GIVEN a client allowed 1 running and 1 queued task, with one the provider never finishes
    api = limited_client(max_running_tasks=1, max_queued_tasks=1)
    never = {"provider": "mountsea-async"}
    held = _submit(api, "run [sim:never]", **never)
    queued = _submit(api, "wait [sim:never]", **never)
    assert (held.status_code, queued.status_code) == (202, 202)
    assert queued.json()["waiting_for"] == "client_limit"

    # WHEN it submits a third THEN 429 queue_full, and usage counts 1 running and 1 queued
    _assert_429(_submit(api, "third"), "queue_full")
    usage = api.get("/v1/usage").json()
    assert (usage["running_tasks"], usage["queued_tasks"]) == (1, 1)

    # WHEN the running one is cancelled (cancelling it again changes nothing) THEN the queued
    # one takes its place, exactly once
    task_id = held.json()["task_id"]
    assert api.post(f"/v1/tasks/{task_id}/cancel").status_code == 200
    assert api.post(f"/v1/tasks/{task_id}/cancel").status_code == 409
    usage = api.get("/v1/usage").json()
    assert (usage["running_tasks"], usage["queued_tasks"]) == (1, 0)
    started = api.get(f"/v1/tasks/{queued.json()['task_id']}").json()
    assert started["admitted_at"] is not None
    assert started["waiting_for"] in (None, "dispatch")


def test_an_inbox_upload_over_its_owners_limit_is_a_failed_task_with_the_code(
    info: StackInfo, events: EventLog
) -> None:
    # GIVEN the inbox's client (InboxClientId, "inbox") blocked by its operator for a moment
    dynamodb, key = boto3.client("dynamodb"), f"products/limited-{uuid.uuid4().hex[:8]}.png"
    limits_key = {"pk": {"S": "LIMITS#inbox"}, "sk": {"S": "LIMITS"}}
    dynamodb.update_item(
        TableName=info.table_name,
        Key=limits_key,
        UpdateExpression="SET requests_per_minute = :zero",
        ExpressionAttributeValues={":zero": {"N": "0"}},
    )
    try:
        # WHEN a photo is uploaded under a rule's prefix
        boto3.client("s3").put_object(Bucket=info.outputs["InboxBucketName"], Key=key, Body=_png())
        # THEN its task fails with rate_limited and its event says so (no retry loop)
        event = events.wait_for_source(key, "Image Task Failed", timeout=30)
    finally:
        dynamodb.delete_item(TableName=info.table_name, Key=limits_key)
    assert event["detail"]["error"]["code"] == "rate_limited"
    assert event["detail"]["client_id"] == "inbox"


def test_the_openai_sdk_raises_rate_limit_error_over_a_clients_limit(
    info: StackInfo, limited_client: ClientFactory
) -> None:
    # GIVEN a client the operator allows one submit a minute, through the official SDK
    import openai

    api = limited_client(requests_per_minute=1)
    key = str(api.headers["Authorization"]).removeprefix("Bearer ")
    sdk = openai.OpenAI(base_url=info.openai_base_url, api_key=key, max_retries=0)
    _wait_for_a_fresh_rate_window()  # the generation takes a few seconds: both in one minute
    first = sdk.images.generate(
        model="gpt-image-2",
        prompt="a kite",
        size="1024x1024",
        extra_body={"provider": "mountsea-compat"},
    )
    assert first.data[0].b64_json

    # WHEN it asks again within the minute THEN RateLimitError, carrying the code and Retry-After
    with pytest.raises(openai.RateLimitError) as refused:
        sdk.images.generate(
            model="gpt-image-2", prompt="a kite", extra_body={"provider": "mountsea-compat"}
        )
    assert refused.value.code == "rate_limited"
    assert 0 < int(refused.value.response.headers["retry-after"]) <= 60
