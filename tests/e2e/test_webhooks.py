"""Signed webhooks to callers, end to end: a receiver verifies every delivery with the official
``standardwebhooks`` package and the client's secret from ``.devstack/stack.json``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from image_gateway.webhooks.signing import signed_headers
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devstack.stack import StackInfo
from devstack.webhook_receiver import WebhookReceiver
from tests.e2e.support import submit, wait_terminal

PROVIDERS = {  # one per way a task is finished
    "callback": {"provider": "apimart", "aspect_ratio": "1:1", "resolution": "1K"},
    "poll": {"provider": "mountsea-async", "size": "1024x1024"},
    "sync": {"provider": "mountsea-compat", "size": "1024x1024"},
}


@pytest.fixture(scope="module")
def receiver(info: StackInfo) -> Iterator[WebhookReceiver]:
    """A receiver holding the demo client's secret as devstack wrote it."""
    assert info.webhook_secret.startswith("whsec_")
    running = WebhookReceiver(info.webhook_secret)
    yield running
    running.close()


def _deliveries(api: httpx.Client, task_id: str, *, count: int) -> list[dict[str, object]]:
    """The task's delivery records once there are ``count`` (bounded wait)."""
    deadline = time.monotonic() + 10
    while len(listed := api.get(f"/v1/tasks/{task_id}").json()["deliveries"]) < count:
        assert time.monotonic() < deadline, f"{len(listed)} of {count} deliveries recorded"
        time.sleep(0.1)
    return list(listed)


def _path(kind: str) -> str:
    return f"/{kind}/{uuid.uuid4().hex[:8]}"


def _task_with_callback(
    api: httpx.Client, receiver: WebhookReceiver, path: str, **fields: object
) -> str:
    body = {"prompt": "a kite", **PROVIDERS["sync"], "callback_url": receiver.url(path), **fields}
    return str(submit(api, body)["task_id"])


@pytest.mark.parametrize("path_kind", sorted(PROVIDERS))
def test_a_finished_task_gets_one_verified_delivery(
    api: httpx.Client, receiver: WebhookReceiver, path_kind: str
) -> None:
    path = _path("ok")
    body = {"prompt": "a kite", **PROVIDERS[path_kind], "callback_url": receiver.url(path)}
    task_id = submit(api, body)["task_id"]

    (delivery,) = receiver.wait(path, 1)

    assert delivery.payload is not None, "the signature did not verify"
    assert delivery.payload["type"] == "image_task.succeeded"
    assert delivery.payload["data"]["task_id"] == task_id
    assert delivery.payload["data"]["path"] == path_kind
    assert httpx.get(delivery.payload["data"]["outputs"][0]["url"]).status_code == 200
    assert delivery.headers["webhook-id"] == f"msg_{task_id}_succeeded"
    time.sleep(1)  # the stack is time-scaled: a second delivery would have come by now
    assert len(receiver.received(path)) == 1


def test_callback_events_delivers_the_changes_asked_for(
    api: httpx.Client, receiver: WebhookReceiver
) -> None:
    path = _path("ok")
    body = {
        "prompt": "a kite",
        **PROVIDERS["poll"],
        "callback_url": receiver.url(path),
        "callback_events": ["submitted", "completed"],
    }
    submit(api, body)

    deliveries = receiver.wait(path, 2)

    assert [d.payload and d.payload["type"] for d in deliveries] == [
        "image_task.submitted",
        "image_task.succeeded",
    ]


def test_a_receiver_down_for_three_attempts_gets_the_same_webhook_id(
    api: httpx.Client, receiver: WebhookReceiver
) -> None:
    path = _path("down3")
    task_id = _task_with_callback(api, receiver, path)

    deliveries = receiver.wait(path, 4, timeout=60)

    assert [d.status for d in deliveries] == [503, 503, 503, 204]
    assert {d.headers["webhook-id"] for d in deliveries} == {f"msg_{task_id}_succeeded"}
    assert len({d.headers["webhook-timestamp"] for d in deliveries}) >= 2  # signed per attempt
    listed = _deliveries(api, task_id, count=4)  # the 4th is recorded once it was answered
    assert [(r["attempt"], r["outcome"]) for r in listed] == [
        (1, "retrying"),
        (2, "retrying"),
        (3, "retrying"),
        (4, "delivered"),
    ]
    assert listed[0]["http_status"] == 503 and listed[0]["next_attempt_at"]


def test_410_gone_stops_the_retries(api: httpx.Client, receiver: WebhookReceiver) -> None:
    path = _path("gone")
    task_id = _task_with_callback(api, receiver, path)

    receiver.wait(path, 1)
    time.sleep(3)  # the first retry would have come after ~1 s

    assert len(receiver.received(path)) == 1
    listed = _deliveries(api, task_id, count=1)
    assert [(r["outcome"], r["http_status"]) for r in listed] == [("gone", 410)]


def test_a_forged_or_stale_delivery_fails_verification(
    api: httpx.Client, receiver: WebhookReceiver, info: StackInfo
) -> None:
    path = _path("ok")
    _task_with_callback(api, receiver, path)
    (delivery,) = receiver.wait(path, 1)
    verifier = Webhook(info.webhook_secret)

    with pytest.raises(WebhookVerificationError):
        verifier.verify(delivery.body.replace(b"succeeded", b"failed"), delivery.headers)
    stale = signed_headers(
        [info.webhook_secret],
        delivery.headers["webhook-id"],
        int(time.time()) - 600,  # signed correctly, ten minutes ago: a replay
        delivery.body,
    )
    with pytest.raises(WebhookVerificationError):
        verifier.verify(delivery.body, stale)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(delivery.body, delivery.headers)


def test_after_rotation_old_and_new_receivers_both_verify(
    api: httpx.Client, receiver: WebhookReceiver, info: StackInfo
) -> None:
    before = api.get("/v1/webhook-secret").json()["secret"]
    rotated = api.post("/v1/webhook-secret/rotate").raise_for_status().json()
    path = _path("ok")
    _task_with_callback(api, receiver, path)

    (delivery,) = receiver.wait(path, 1)  # the receiver still holds the old secret

    assert before == info.webhook_secret != rotated["secret"]
    assert api.get("/v1/webhook-secret").json()["secret"] == rotated["secret"]
    assert rotated["previous_secret_valid_until"]
    assert delivery.payload is not None
    Webhook(rotated["secret"]).verify(delivery.body, delivery.headers)
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.7/hook",
        "https://[::1]/hook",
        "http://example.com/hook",
    ],
)
def test_an_undeliverable_callback_url_is_refused_at_submit(api: httpx.Client, url: str) -> None:
    answer = api.post("/v1/images", json={"prompt": "a kite", "callback_url": url})

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "callback_url_refused"


def test_redeliver_sends_the_latest_delivery_again_with_its_webhook_id(
    api: httpx.Client, receiver: WebhookReceiver
) -> None:
    path = _path("ok")
    task_id = _task_with_callback(api, receiver, path)
    receiver.wait(path, 1)
    wait_terminal(api, task_id)
    # the receiver has it a moment before the gateway has recorded it: a caller redelivers what
    # GET /v1/tasks/{id} lists
    _deliveries(api, task_id, count=1)

    answer = api.post(f"/v1/tasks/{task_id}/webhooks/redeliver")

    assert answer.status_code == 202, answer.text
    first, second = receiver.wait(path, 2)
    assert (
        first.headers["webhook-id"] == second.headers["webhook-id"] == answer.json()["webhook_id"]
    )
    assert second.payload is not None
    listed = _deliveries(api, task_id, count=2)
    assert [(r["attempt"], r["outcome"]) for r in listed] == [(1, "delivered"), (2, "delivered")]


def test_redeliver_without_any_delivery_is_a_404(api: httpx.Client) -> None:
    task_id = submit(api, {"prompt": "a kite", **PROVIDERS["sync"]})["task_id"]

    answer = api.post(f"/v1/tasks/{task_id}/webhooks/redeliver")

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "no_delivery"
