"""Operator metrics through devstack: the functions' EMF lines, as CloudWatch Logs gets them.

devstack forwards each worker's stdout line by line to this process's stdout (what Lambda
sends to CloudWatch Logs), so ``capsys`` reads what a deployed function would have logged.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from devstack.waiting import wait_until
from tests.e2e.support import submit, wait_terminal

NAMESPACE = "ImageTaskGateway"


def _emf(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line[line.index("{") :])
        if document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE:
            found.append(document)
    return found


def test_a_finished_task_is_counted_in_the_emf_output_by_provider_and_path(
    api: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a task on apimart (finished by its callback) WHEN it succeeds
    created = submit(
        api, {"prompt": "a kite", "provider": "apimart", "aspect_ratio": "1:1", "resolution": "1K"}
    )
    assert wait_terminal(api, created["task_id"])["status"] == "succeeded"

    # THEN the finalize function logged TasksSucceeded for apimart on the callback path, its
    # provider latency and the gateway's overhead, as EMF under the documented names and
    # dimensions
    seen: list[dict[str, Any]] = []

    def counted() -> bool:
        seen.extend(_emf(capsys.readouterr().out))
        names = {d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] for d in seen}
        return {"TasksSucceeded", "ProviderLatencySeconds", "GatewayOverheadSeconds"} <= names

    wait_until(counted, timeout=10)
    success = next(d for d in seen if "TasksSucceeded" in d and d.get("Provider") == "apimart")
    assert success["Path"] == "callback" and success["TasksSucceeded"] == 1
    dimensions = success["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert dimensions == [["Provider"], ["Provider", "Path"]]
    overhead = next(
        d for d in seen if "GatewayOverheadSeconds" in d and d.get("Provider") == "apimart"
    )
    assert overhead["Path"] == "callback"
    assert 0 <= overhead["GatewayOverheadSeconds"] < 30  # from the callback's arrival (SQS)
