"""Signed webhooks to callers: queued by the status change's winner, one attempt per message,
retried on the TimingPolicy's schedule, verified with the official ``standardwebhooks``."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from image_gateway.errors import (
    Conflict,
    DownloadFailed,
    NotFound,
    Unprocessable,
    UnsafeUrl,
)
from image_gateway.models.task import Task, TaskStatus, utc_now
from image_gateway.service.lifecycle import cancel_task
from image_gateway.service.refresh import refresh_task
from image_gateway.service.submit import submit_task
from image_gateway.webhooks.delivery import (
    current_secret,
    deliver,
    redeliver,
    rotate_secret,
)
from image_gateway.webhooks.models import DeliveryMessage
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.fakes import FakeDependencies
from tests.unit.service.support import fox, submit_and_dispatch

URL = "https://receiver.example/hooks"


def _deliver_all(deps: FakeDependencies) -> None:
    for message in deps.webhooks.deliveries.take():
        deliver(deps, message)


def _finished_sync_task(deps: FakeDependencies, **fields: object) -> str:
    request = fox(provider="mountsea-compat", callback_url=URL, **fields)
    return str(submit_and_dispatch(deps, request, client_id="c1").task.task_id)


def test_a_finished_task_queues_one_delivery_of_its_terminal_status(
    deps: FakeDependencies,
) -> None:
    task_id = _finished_sync_task(deps)

    queued = deps.webhooks.deliveries.take()

    assert [(m.webhook_id, m.attempt) for m in queued] == [(f"msg_{task_id}_succeeded", 1)]


def test_a_task_without_callback_url_queues_nothing(deps: FakeDependencies) -> None:
    submit_and_dispatch(deps, fox(provider="mountsea-compat"), client_id="c1")

    assert deps.webhooks.deliveries.take() == []


def test_callback_events_adds_the_changes_asked_for(deps: FakeDependencies) -> None:
    request = fox(provider="mountsea-async", callback_url=URL, callback_events=["submitted"])
    task = submit_and_dispatch(deps, request, client_id="c1").task

    queued = deps.webhooks.deliveries.take()

    assert [m.status for m in queued] == [TaskStatus.SUBMITTED]
    cancel_task(deps, deps.tasks.require(task.task_id))
    assert deps.webhooks.deliveries.take() == []  # "completed" was not asked for


def test_callback_events_without_a_url_is_refused() -> None:
    with pytest.raises(ValidationError, match="callback_events needs a callback_url"):
        fox(callback_events=["completed"])


def test_a_delivery_verifies_with_the_clients_secret(deps: FakeDependencies) -> None:
    task_id = _finished_sync_task(deps)

    _deliver_all(deps)

    url, body, headers = deps.webhooks.transport.posts[0]
    payload = Webhook(deps.webhooks.secrets.get("c1").current).verify(body, headers)
    assert url == URL
    assert payload["type"] == "image_task.succeeded"
    assert payload["data"]["task_id"] == task_id
    assert payload["data"]["outputs"][0]["url"]
    assert len(body) < 20_000


def test_an_attempt_reads_the_task_once(deps: FakeDependencies) -> None:
    # GIVEN a finished task's delivery WHEN attempted THEN the record of the attempt is written
    # from the task the attempt read (one GetItem, not two)
    task_id = _finished_sync_task(deps)
    before = deps.tasks.reads

    _deliver_all(deps)

    assert deps.tasks.reads - before == 1
    assert [r.outcome for r in deps.tasks.require(task_id).deliveries] == ["delivered"]


def test_an_attempt_whose_task_changed_meanwhile_is_recorded_on_the_task_as_it_now_is(
    deps: FakeDependencies,
) -> None:
    # GIVEN a delivery, and a write of its task while the receiver is being called
    task_id = _finished_sync_task(deps)
    post = deps.webhooks.transport.post

    def post_while_written(*args: object, **kwargs: object) -> int:
        deps.tasks.update(task_id, lambda t: setattr(t, "thumbnail_key", "x.thumb.jpg"))
        return post(*args, **kwargs)  # type: ignore[arg-type]

    deps.webhooks.transport.post = post_while_written  # type: ignore[method-assign]

    # WHEN the attempt is recorded THEN the other write is kept (the stale task was read again)
    _deliver_all(deps)

    task = deps.tasks.require(task_id)
    assert task.thumbnail_key == "x.thumb.jpg"
    assert [r.outcome for r in task.deliveries] == ["delivered"]


def test_a_forged_body_fails_verification(deps: FakeDependencies) -> None:
    _finished_sync_task(deps)
    _deliver_all(deps)
    _url, body, headers = deps.webhooks.transport.posts[0]

    with pytest.raises(WebhookVerificationError):
        Webhook(deps.webhooks.secrets.get("c1").current).verify(body + b" ", headers)


def test_a_failed_attempt_queues_the_next_with_the_same_webhook_id(
    deps: FakeDependencies,
) -> None:
    _finished_sync_task(deps)
    deps.webhooks.transport.answer = lambda *_: 503
    first = deps.webhooks.deliveries.take()[0]

    record = deliver(deps, first, draw=lambda: 0.5)

    (following, delay), *_ = deps.webhooks.deliveries.messages
    assert record is not None and record.outcome == "retrying"
    assert (following.webhook_id, following.attempt) == (first.webhook_id, 2)
    assert delay == 5  # the schedule's first wait, no jitter at draw 0.5
    assert record.next_attempt_at == following.not_before


def test_a_wait_longer_than_sqs_allows_is_chained(deps: FakeDependencies) -> None:
    now = utc_now()
    message = DeliveryMessage(
        webhook_id="msg_x",
        task_id="tsk_x",
        status=TaskStatus.SUCCEEDED,
        attempt=8,
        not_before=now + timedelta(hours=2),
    )

    assert deliver(deps, message, now=lambda: now) is None

    assert deps.webhooks.deliveries.messages == [(message, 900)]
    assert deps.webhooks.transport.posts == []


def test_a_receiver_down_for_three_attempts_gets_the_same_webhook_id(
    deps: FakeDependencies,
) -> None:
    _finished_sync_task(deps)
    answers = iter([500, 502, 503, 204])
    deps.webhooks.transport.answer = lambda *_: next(answers)
    message = deps.webhooks.deliveries.take()[0]

    for _ in range(4):  # each attempt at its not_before: the clock is moved, never slept
        at = message.not_before or utc_now()
        deliver(deps, message, now=lambda at=at: at)
        message = next(iter(deps.webhooks.deliveries.take()), message)

    ids = {headers["webhook-id"] for _url, _body, headers in deps.webhooks.transport.posts}
    task = deps.tasks.require(message.task_id)
    assert len(ids) == 1
    assert [r.outcome for r in task.deliveries] == ["retrying"] * 3 + ["delivered"]


def test_410_gone_stops_at_once(deps: FakeDependencies) -> None:
    _finished_sync_task(deps)
    deps.webhooks.transport.answer = lambda *_: 410

    _deliver_all(deps)

    assert deps.webhooks.deliveries.messages == []
    assert deps.webhooks.deliveries.dead_letters == []


def test_after_the_last_attempt_the_delivery_is_dead_lettered(deps: FakeDependencies) -> None:
    _finished_sync_task(deps)

    def down(*_: object) -> int:
        raise DownloadFailed("timed out", retryable=True)

    deps.webhooks.transport.answer = down
    message = deps.webhooks.deliveries.take()[0]
    attempts = 1 + len(deps.timing.webhook_retry_schedule_seconds)
    last = message.model_copy(update={"attempt": attempts})

    record = deliver(deps, last)

    assert record is not None and record.outcome == "failed"
    assert deps.webhooks.deliveries.dead_letters == [last]
    assert deps.webhooks.deliveries.messages == []
    (event,) = deps.webhooks.failures.published
    assert (event.webhook_id, event.attempts, event.last_error) == (
        last.webhook_id,
        attempts,
        "timed out",
    )
    assert event.callback_url == URL


def test_the_schedule_retries_for_at_least_a_day() -> None:
    from image_gateway.timing import DEFAULT_TIMING

    assert sum(DEFAULT_TIMING.webhook_retry_schedule_seconds) * 0.9 >= 24 * 3600


def test_after_rotation_both_secrets_sign_for_the_overlap(deps: FakeDependencies) -> None:
    _finished_sync_task(deps)
    old = deps.webhooks.secrets.get("c1").current
    rotated = rotate_secret(deps, "c1")

    _deliver_all(deps)

    _url, body, headers = deps.webhooks.transport.posts[0]
    Webhook(old).verify(body, headers)
    Webhook(rotated.secret).verify(body, headers)
    assert rotated.previous_secret_valid_until is not None


def test_after_the_overlap_only_the_new_secret_signs(deps: FakeDependencies) -> None:
    rotate_secret(deps, "c1")
    secrets = deps.webhooks.secrets.get("c1")
    later = (secrets.previous_until or utc_now()) + timedelta(seconds=1)

    assert secrets.signing_secrets(later) == [secrets.current]


def test_redeliver_is_a_new_attempt_of_the_same_webhook_id(deps: FakeDependencies) -> None:
    task_id = _finished_sync_task(deps)
    _deliver_all(deps)

    message = redeliver(deps, deps.tasks.require(task_id))
    _deliver_all(deps)

    first, second = (h["webhook-id"] for _u, _b, h in deps.webhooks.transport.posts)
    assert first == second == message.webhook_id
    assert [r.attempt for r in deps.tasks.require(task_id).deliveries] == [1, 2]


@pytest.mark.parametrize(
    "url", ["http://receiver.example/h", "https://db.internal/h", "https://nxdomain.example/h"]
)
def test_an_undeliverable_url_is_refused_at_submit(deps: FakeDependencies, url: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        submit_task(deps, fox(callback_url=url), client_id="c1")

    assert refused.value.code == "callback_url_refused"
    assert deps.tasks.list_for_client("c1", limit=5, cursor=None).tasks == []


def test_the_body_is_the_task_view_without_image_bytes(deps: FakeDependencies) -> None:
    _finished_sync_task(deps)
    _deliver_all(deps)

    document = json.loads(deps.webhooks.transport.posts[0][1])

    output = document["data"]["outputs"][0]
    assert {"bucket", "key", "content_type", "width", "height", "sha256", "url"} <= set(output)
    assert "deliveries" not in document["data"]


def test_a_first_secret_is_made_on_first_use_and_kept(deps: FakeDependencies) -> None:
    first = current_secret(deps, "c9")

    assert first.secret.startswith("whsec_")
    assert current_secret(deps, "c9") == first
    assert first.previous_secret_valid_until is None


def test_redeliver_without_any_delivery_is_not_found(deps: FakeDependencies) -> None:
    task = submit_and_dispatch(deps, fox(provider="mountsea-compat"), client_id="c1").task

    with pytest.raises(NotFound):
        redeliver(deps, task)


def test_a_receiver_that_now_resolves_privately_is_refused_and_not_retried(
    deps: FakeDependencies,
) -> None:
    _finished_sync_task(deps)

    def rebound(*_: object) -> int:
        raise UnsafeUrl("receiver.example resolves to 10.0.0.1", reason="private_address")

    deps.webhooks.transport.answer = rebound

    (record,) = [deliver(deps, m) for m in deps.webhooks.deliveries.take()]

    assert record is not None and record.outcome == "refused"
    assert deps.webhooks.deliveries.messages == []


def test_a_resolver_hiccup_at_submit_lets_the_task_through(deps: FakeDependencies) -> None:
    def hiccup(url: str) -> None:
        raise DownloadFailed("could not resolve receiver.example", retryable=True)

    deps.webhooks.transport.check_url = hiccup  # type: ignore[method-assign]

    task = submit_task(deps, fox(callback_url=URL), client_id="c1").task

    assert task.request.callback_url == URL


def test_a_queue_outage_never_fails_the_status_change(deps: FakeDependencies) -> None:
    deps.webhooks.deliveries.unavailable = True

    task = submit_and_dispatch(
        deps, fox(provider="mountsea-compat", callback_url=URL), client_id="c1"
    ).task

    assert task.status is TaskStatus.SUCCEEDED


def test_a_large_task_view_is_cut_to_stay_under_20_kb(deps: FakeDependencies) -> None:
    task_id = _finished_sync_task(deps, metadata={f"k{i}": "v" * 256 for i in range(16)})

    def pad(task: Task) -> None:
        task.history = task.history * 200  # ~50 kB of history

    deps.tasks.update(task_id, pad)
    _deliver_all(deps)

    body = deps.webhooks.transport.posts[0][1]
    assert len(body) < 20_000
    assert len(json.loads(body)["data"]["history"]) == 3


def test_a_refused_event_delays_the_webhook_until_the_sweeper_re_emits_it(
    deps: FakeDependencies,
) -> None:
    deps.events.refuse_next = 2  # the bus refuses the submitted and the succeeded events
    task_id = _finished_sync_task(deps)
    assert deps.webhooks.deliveries.take() == []

    refresh_task(deps, task_id, by="sweeper", emit_missing_event=True)

    assert [m.webhook_id for m in deps.webhooks.deliveries.take()] == [f"msg_{task_id}_succeeded"]


def test_a_status_change_that_loses_its_race_queues_no_webhook(deps: FakeDependencies) -> None:
    task_id = _finished_sync_task(deps, callback_events=["completed"])
    deps.webhooks.deliveries.take()

    with pytest.raises(Conflict):
        cancel_task(deps, deps.tasks.require(task_id))

    assert deps.webhooks.deliveries.take() == []
