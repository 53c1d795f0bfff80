"""The webhook's JsonLogger writes the lines Powertools' Logger would (same keys, one per line)."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace
from typing import Any

import pytest
from image_gateway.json_log import JsonLogger

CONTEXT = SimpleNamespace(
    function_name="imagegw-WebhookFunction",
    memory_limit_in_mb=256,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:imagegw-WebhookFunction",
    aws_request_id="req-1",
)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_has_powertools_keys_the_context_and_the_appended_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-abc-def;Parent=1;Sampled=0")
    stream = io.StringIO()
    logger = JsonLogger("webhook", stream=stream)
    logger.bind_invocation(CONTEXT)
    logger.append_keys(task_id="tsk_1")

    logger.warning("callback not queued", outcome="refused")

    [line] = lines(stream)
    assert list(line)[:4] == ["level", "location", "message", "timestamp"]
    assert line["location"].startswith("test_a_line_has_powertools_keys")
    assert {k: line[k] for k in ("level", "message", "service", "task_id", "outcome")} == {
        "level": "WARNING",
        "message": "callback not queued",
        "service": "webhook",
        "task_id": "tsk_1",
        "outcome": "refused",
    }
    assert (line["function_name"], line["function_request_id"]) == (
        "imagegw-WebhookFunction",
        "req-1",
    )
    assert (line["cold_start"], line["xray_trace_id"]) == (True, "1-abc-def")


def test_only_the_first_invocation_is_a_cold_start() -> None:
    stream = io.StringIO()
    logger = JsonLogger("webhook", stream=stream)
    for _ in range(2):
        logger.bind_invocation(CONTEXT)
        logger.info("callback queued for finalisation")

    assert [line["cold_start"] for line in lines(stream)] == [True, False]


def test_lines_below_the_configured_level_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    stream = io.StringIO()
    logger = JsonLogger("webhook", stream=stream)

    logger.info("quiet")
    logger.warning("loud")

    assert [line["message"] for line in lines(stream)] == ["loud"]
