"""Providers that fail, answer garbage, never finish, or call back twice; forged callbacks."""

from __future__ import annotations

import json

import boto3
import httpx

from devstack.stack import DevStack, StackInfo, wait_until
from devstack.template import ROOT
from tests.e2e.support import EventLog, submit, wait_terminal


def _history(task: dict) -> list[str]:  # type: ignore[type-arg]
    return [h["status"] for h in task["history"]]


def test_a_task_the_provider_fails_ends_failed_with_an_event(
    api: httpx.Client, events: EventLog
) -> None:
    created = submit(api, {"prompt": "doomed [sim:fail]", "provider": "mountsea-async"})
    task = wait_terminal(api, created["task_id"])
    assert task["status"] == "failed"
    assert task["error"]["code"] == "provider_task_failed"
    assert task["outputs"] == []
    event = events.wait_for(task["task_id"], "Image Task Failed")
    assert event["detail"]["error"]["code"] == "provider_task_failed"


def test_garbage_status_answers_end_the_task_as_a_classified_provider_error(
    api: httpx.Client, events: EventLog
) -> None:
    created = submit(api, {"prompt": "noise [sim:poll-garbage]", "provider": "mountsea-async"})
    task = wait_terminal(api, created["task_id"])
    assert task["status"] == "failed"
    assert task["error"]["code"] == "provider_bad_response"
    events.wait_for(task["task_id"], "Image Task Failed")


def test_a_garbage_create_answer_fails_the_task_at_its_first_attempt(api: httpx.Client) -> None:
    created = submit(api, {"prompt": "x [sim:create-garbage]", "provider": "apimart"})
    assert created["status"] == "queued"  # storage-first: the provider is called after the 202
    task = wait_terminal(api, created["task_id"])
    assert task["status"] == "failed"
    assert task["error"]["code"] == "provider_bad_response"


def test_a_result_that_is_not_an_image_fails_the_task(api: httpx.Client) -> None:
    created = submit(api, {"prompt": "x [sim:bad-image]", "provider": "mountsea-async"})
    task = wait_terminal(api, created["task_id"])
    assert task["status"] == "failed"
    assert task["error"]["code"] == "provider_bad_image"


def test_a_result_at_an_unreachable_host_fails_with_a_download_error_not_expiry(
    api: httpx.Client,
) -> None:
    # GIVEN a provider whose result URL refuses every connection
    created = submit(api, {"prompt": "x [sim:unreachable-result]", "provider": "apimart"})

    # WHEN its retries are spent THEN the task failed with a download error (before its deadline)
    task = wait_terminal(api, created["task_id"])
    assert task["status"] == "failed"
    assert task["error"]["code"] == "provider_download_failed"


def test_a_moderation_refusal_fails_without_falling_back(
    api: httpx.Client, events: EventLog
) -> None:
    created = submit(
        api, {"prompt": "bad [sim:moderation]", "providers": ["apimart", "mountsea-async"]}
    )
    task = wait_terminal(api, created["task_id"])
    assert task["status"] == "failed"
    assert task["error"]["code"] == "moderation_blocked"
    assert [a["provider"] for a in task["attempts"]] == ["apimart"]
    events.wait_for(task["task_id"], "Image Task Failed")


def test_an_unavailable_provider_falls_back_to_the_next_one(api: httpx.Client) -> None:
    # Given apimart answering 503 and mountsea-async next in the caller's list
    created = submit(
        api,
        {"prompt": "fallback [sim:create-503=apimart]", "providers": ["apimart", "mountsea-async"]},
    )
    # Then both attempts are on the record and the second provider finished the task
    task = wait_terminal(api, created["task_id"])
    assert [(a["provider"], a["outcome"]) for a in task["attempts"]] == [
        ("apimart", "failed"),
        ("mountsea-async", "completed"),
    ]
    assert task["attempts"][0]["error"]["code"] == "provider_unavailable"
    assert (task["status"], task["provider"]) == ("succeeded", "mountsea-async")


def test_a_task_that_never_finishes_expires_at_its_deadline(
    api: httpx.Client, events: EventLog
) -> None:
    created = submit(api, {"prompt": "stuck [sim:never]", "provider": "mountsea-async"})
    task = wait_terminal(api, created["task_id"], timeout=30)
    assert task["status"] == "expired"
    assert task["error"]["code"] == "deadline_exceeded"
    events.wait_for(task["task_id"], "Image Task Expired")


def test_duplicate_and_late_callbacks_change_nothing(
    api: httpx.Client, events: EventLog, stack: DevStack
) -> None:
    # Given apimart delivering the terminal callback twice, and once more later
    created = submit(
        api, {"prompt": "echo [sim:duplicate-callback] [sim:late-callback]", "provider": "apimart"}
    )
    task = wait_terminal(api, created["task_id"])
    assert stack.simulator is not None
    callbacks_url = f"{stack.simulator.base_url}/_sim/callbacks"

    def deliveries() -> list[dict]:  # type: ignore[type-arg]
        return [c for c in httpx.get(callbacks_url).json() if created["task_id"] in c["url"]]

    wait_until(lambda: len(deliveries()) >= 3, timeout=10)
    # Then the task succeeded once, with one succeeded entry and one Succeeded event
    later = wait_terminal(api, created["task_id"])
    assert _history(later).count("succeeded") == 1
    assert [(o["key"], o["sha256"]) for o in later["outputs"]] == [
        (o["key"], o["sha256"]) for o in task["outputs"]
    ]
    events.wait_for(task["task_id"], "Image Task Succeeded")
    succeeded = [
        e for e in events.for_task(task["task_id"]) if e["detail-type"] == "Image Task Succeeded"
    ]
    assert len(succeeded) == 1
    assert all(d.get("status_code") == 202 for d in deliveries())


def test_a_forged_callback_is_refused_and_changes_nothing(
    api: httpx.Client, info: StackInfo
) -> None:
    created = submit(
        api, {"prompt": "slow [sim:latency=5] [sim:no-callback]", "provider": "apimart"}
    )
    task_id = created["task_id"]
    forged = [
        f"/webhooks/apimart/{task_id}/{'0' * 64}",
        f"/webhooks/apimart/{task_id}/{'0' * 64}/callback",
        f"/webhooks/mountsea-async/{task_id}/not-a-token",
    ]
    for path in forged:
        answer = httpx.post(
            info.api_url + path, json={"code": 200, "data": {"status": "completed"}}
        )
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "invalid_token"
    after = api.get(f"/v1/tasks/{task_id}").json()
    assert after["status"] in ("queued", "submitted", "running")  # not finished by it
    assert after["outputs"] == []
    api.post(f"/v1/tasks/{task_id}/cancel")


def test_a_callback_token_for_one_task_does_not_open_another(
    api: httpx.Client, info: StackInfo, stack: DevStack
) -> None:
    first = submit(api, {"prompt": "a [sim:never]", "provider": "apimart"})
    second = submit(api, {"prompt": "b [sim:never]", "provider": "apimart"})
    requests = httpx.get(f"{info.simulator_url}/_sim/requests").json()
    webhook = next(
        r["body"]["webhook"]
        for r in requests
        if isinstance(r.get("body"), dict) and first["task_id"] in str(r["body"].get("webhook"))
    )
    token = webhook.rsplit("/", 1)[-1]
    answer = httpx.post(f"{info.api_url}/webhooks/apimart/{second['task_id']}/{token}/callback")
    assert answer.status_code == 401
    for task in (first, second):
        api.post(f"/v1/tasks/{task['task_id']}/cancel")


def test_the_poll_loop_execution_is_named_after_the_task(
    api: httpx.Client, info: StackInfo
) -> None:
    created = submit(api, {"prompt": "named", "provider": "mountsea-async"})
    wait_terminal(api, created["task_id"])
    executions = boto3.client("stepfunctions").list_executions(
        stateMachineArn=info.state_machine_arn
    )["executions"]
    assert created["task_id"] in {e["name"] for e in executions}


def test_the_sample_webhook_event_with_a_made_up_token_is_refused(stack: DevStack) -> None:
    event = json.loads((ROOT / "events" / "webhook-apimart-callback.json").read_text())
    answer = stack.runtime.invoke("WebhookFunction", event)
    assert answer["statusCode"] == 401


def test_the_sample_poll_event_for_an_unknown_task_stops_the_loop(stack: DevStack) -> None:
    event = json.loads((ROOT / "events" / "poll-step.json").read_text())
    assert stack.runtime.invoke("PollFunction", event)["done"] is True
