"""The cold start child: its clock, and the AWS calls it names for the first event."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.coldstart import _CHILD, first_event_calls, in_flight_ms

WITH_CALLS = """
import botocore.session
from botocore.stub import Stubber

def lambda_handler(event, context):
    client = botocore.session.get_session().create_client(
        "sqs", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    with Stubber(client) as stub:
        for _ in range(event["calls"]):
            stub.add_response("get_queue_url", {"QueueUrl": "https://q"}, {"QueueName": "q"})
            client.get_queue_url(QueueName="q")
    return {"statusCode": 200}
"""

WITHOUT_BOTOCORE = """
def lambda_handler(event, context):
    return {"statusCode": 204}
"""


def _child(tmp_path: Path, source: str, event: Any) -> dict[str, Any]:
    handler = tmp_path / "app.py"
    handler.write_text(source)
    spec = {"path": str(handler), "name": "f", "memory_mb": 128, "event": event}
    done = subprocess.run(  # noqa: S603 (this interpreter, the bench's own script)
        [sys.executable, "-c", _CHILD],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_child_names_and_times_each_aws_call_of_the_first_event(tmp_path: Path) -> None:
    # Given a handler that imports botocore and makes three calls in its first event
    # When the child imports it and serves the event
    result = _child(tmp_path, WITH_CALLS, {"calls": 3})
    # Then it answered, and the three calls are named by service and operation, each timed
    assert result["status"] == 200
    calls = result["aws_calls"]
    assert [name for name, _, _ in calls] == ["sqs.GetQueueUrl"] * 3
    # one after the other, within the first event
    assert all(0 <= start < end <= result["first_event_ms"] for _, start, end in calls)
    assert all(calls[i][2] <= calls[i + 1][1] for i in range(2))


def test_a_handler_without_botocore_has_no_count_rather_than_zero(tmp_path: Path) -> None:
    result = _child(tmp_path, WITHOUT_BOTOCORE, {})
    assert result["status"] == 204
    assert result["aws_calls"] is None


def test_the_samples_calls_are_summarised_with_the_first_samples_operations() -> None:
    # Given two samples: 3 calls one after the other (12 ms), and 2 calls at once (8 ms)
    samples = [
        {
            "aws_calls": [
                ["dynamodb.GetItem", 0.0, 5.0],
                ["sqs.SendMessage", 5.0, 8.0],
                ["dynamodb.GetItem", 10.0, 14.0],
            ]
        },
        {"aws_calls": [["dynamodb.GetItem", 1.0, 9.0], ["sqs.SendMessage", 2.0, 4.0]]},
    ]
    # When they are summarised
    calls = first_event_calls(samples)
    # Then the counts and in-flight milliseconds have their medians, operations most first
    assert calls is not None
    assert (calls["calls"]["median"], calls["ms"]["median"]) == (2.5, 10.0)
    assert list(calls["operations"].items()) == [("dynamodb.GetItem", 2), ("sqs.SendMessage", 1)]
    # and one sample that could not count makes the whole figure absent, not a lower count
    assert first_event_calls([*samples, {"aws_calls": None}]) is None


def test_calls_in_flight_at_once_count_once() -> None:
    assert in_flight_ms([]) == 0.0
    assert in_flight_ms([(0.0, 10.0), (2.0, 4.0), (3.0, 12.0), (20.0, 21.0)]) == 13.0
