"""The AWS-side waits and retries in template.yaml and the ASL are the TimingPolicy's numbers.

``image_gateway.timing.TimingPolicy`` is the one home of the gateway's timing; the timing
table (docs/timing.md) is written from it. A number changed on one side only fails here,
naming both places.
"""

from __future__ import annotations

import json
from typing import Any

from image_gateway.timing import DEFAULT_TIMING

from devstack.template import ROOT, load_template

RESOURCES: dict[str, Any] = load_template()["Resources"]
POLICY = "layers/common/image_gateway/timing.py"


def _queue(name: str) -> dict[str, Any]:
    properties: dict[str, Any] = RESOURCES[name]["Properties"]
    return properties


def _function_timeout(name: str) -> int:
    return int(RESOURCES[name]["Properties"]["Timeout"])


def test_the_dispatch_queue_redrives_after_the_policys_number_of_deliveries() -> None:
    assert (
        _queue("DispatchQueue")["RedrivePolicy"]["maxReceiveCount"]
        == DEFAULT_TIMING.dispatch_max_receives
    ), f"template.yaml DispatchQueue maxReceiveCount differs from {POLICY}"


def test_the_inbox_queue_redrives_after_the_policys_number_of_deliveries() -> None:
    assert (
        _queue("InboxQueue")["RedrivePolicy"]["maxReceiveCount"]
        == DEFAULT_TIMING.inbox_max_receives
    ), f"template.yaml InboxQueue maxReceiveCount differs from {POLICY}"


def test_the_webhook_queue_redrives_after_the_policys_number_of_receives() -> None:
    assert (
        _queue("WebhookQueue")["RedrivePolicy"]["maxReceiveCount"]
        == DEFAULT_TIMING.webhook_max_receives
    ), f"template.yaml WebhookQueue maxReceiveCount differs from {POLICY}"


def test_the_webhook_function_outlives_one_attempt() -> None:
    assert _function_timeout("WebhookDeliveryFunction") > DEFAULT_TIMING.webhook_timeout_seconds


def test_the_compat_function_outlives_its_wait_and_its_answer() -> None:
    wait = DEFAULT_TIMING.compat_wait_seconds + DEFAULT_TIMING.compat_answer_margin_seconds
    assert _function_timeout("OpenAiCompatFunction") >= wait, (
        f"template.yaml OpenAiCompatFunction Timeout is shorter than the wait in {POLICY}"
    )


def test_the_compat_function_is_served_by_a_function_url_with_the_key_checked_in_code() -> None:
    url = RESOURCES["OpenAiCompatFunction"]["Properties"]["FunctionUrlConfig"]
    assert url == {"AuthType": "NONE", "InvokeMode": "BUFFERED"}


def test_the_finalize_queue_redrives_after_the_policys_number_of_deliveries() -> None:
    assert (
        _queue("FinalizeQueue")["RedrivePolicy"]["maxReceiveCount"]
        == DEFAULT_TIMING.finalize_max_receives
    ), f"template.yaml FinalizeQueue maxReceiveCount differs from {POLICY}"


def test_queue_visibility_is_the_policys_and_six_times_its_functions_timeout() -> None:
    pairs = {
        "DispatchQueue": ("DispatchFunction", DEFAULT_TIMING.dispatch_visibility_seconds),
        "InboxQueue": ("UploadEditFunction", DEFAULT_TIMING.inbox_visibility_seconds),
        "WebhookQueue": ("WebhookDeliveryFunction", DEFAULT_TIMING.webhook_visibility_seconds),
        "FinalizeQueue": ("FinalizeFunction", DEFAULT_TIMING.finalize_visibility_seconds),
    }
    for queue, (function, policy_value) in pairs.items():
        visibility = int(_queue(queue)["VisibilityTimeout"])
        assert visibility == policy_value, f"template.yaml {queue} differs from {POLICY}"
        assert visibility == 6 * _function_timeout(function), f"{queue}: 6 x {function} timeout"


def test_the_poll_steps_retries_are_the_policys() -> None:
    definition = json.loads((ROOT / "statemachines" / "poll.asl.json").read_text())
    retries = [
        {
            "errors": tuple(r["ErrorEquals"]),
            "interval": r["IntervalSeconds"],
            "attempts": r["MaxAttempts"],
            "rate": float(r["BackoffRate"]),
        }
        for state in definition["States"].values()
        if state["Type"] == "Task"
        for r in state.get("Retry", [])
    ]
    expected = [
        {
            "errors": r.errors,
            "interval": r.interval_seconds,
            "attempts": r.max_attempts,
            "rate": r.backoff_rate,
        }
        for r in DEFAULT_TIMING.poll_step_retries
    ]
    assert retries == expected, f"statemachines/poll.asl.json Retry differs from {POLICY}"


def test_poll_backoff_grows_by_the_factor_and_stops_at_the_cap() -> None:
    waits = [DEFAULT_TIMING.poll_wait(4.0, attempt) for attempt in range(10)]

    assert waits[:3] == [4.0, 6.0, 9.0]
    assert max(waits) == DEFAULT_TIMING.poll_wait_cap_seconds
    assert waits == sorted(waits)


def test_a_sweep_run_ends_before_the_next_is_scheduled_and_well_inside_its_timeout() -> None:
    # the sweep runs every minute; its reading stops after sweep_run_seconds, leaving the rest
    # of the function's timeout for the last page (a page of 4 x 100 tasks, each a few reads)
    assert DEFAULT_TIMING.sweep_run_seconds < 60, POLICY
    assert _function_timeout("SweeperFunction") >= 4 * DEFAULT_TIMING.sweep_run_seconds, POLICY
