"""SQS partial batch responses: failed records are named, a failed FIFO group keeps its order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from image_gateway.sqs_batch import BatchFailed, SqsRecord, process_batch


def _record(message_id: str, body: Any, group: str | None = None) -> dict[str, Any]:
    attributes = {"SentTimestamp": "1700000000000"}
    if group is not None:
        attributes["MessageGroupId"] = group
    return {
        "messageId": message_id,
        "body": json.dumps(body),
        "attributes": attributes,
        "eventSourceARN": "arn:aws:sqs:us-east-1:1:queue",
    }


def _failing_on(bad: set[str], seen: list[str]) -> Any:
    def handler(record: SqsRecord) -> None:
        seen.append(record.message_id)
        if record.json_body["n"] in bad:
            raise RuntimeError("transient")

    return handler


def test_only_the_records_that_raised_are_reported_failed() -> None:
    # Given a batch of three records, the second of which fails
    event = {"Records": [_record(m, {"n": m}) for m in ("a", "b", "c")]}
    seen: list[str] = []
    # When it is processed
    answer = process_batch(event, _failing_on({"b"}, seen))
    # Then every record was handled and only the failed one is named
    assert seen == ["a", "b", "c"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": "b"}]}


def test_a_batch_whose_every_record_failed_raises() -> None:
    # Given a batch of one record that fails
    event = {"Records": [_record("a", {"n": "a"})]}
    # When it is processed, Then the whole batch fails (Lambda retries it)
    with pytest.raises(BatchFailed):
        process_batch(event, _failing_on({"a"}, []))


def test_after_a_fifo_failure_the_rest_of_its_group_is_not_handled_but_other_groups_are() -> None:
    # Given task t1's two messages (the first fails) and task t2's message, on a FIFO queue
    event = {
        "Records": [
            _record("1", {"n": "1"}, group="t1"),
            _record("2", {"n": "2"}, group="t1"),
            _record("3", {"n": "3"}, group="t2"),
        ]
    }
    seen: list[str] = []
    # When the batch is processed with skip_group_on_error
    answer = process_batch(event, _failing_on({"1"}, seen), skip_group_on_error=True)
    # Then t1's second message is failed unhandled (kept in order), t2's is handled
    assert seen == ["1", "3"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": "1"}, {"itemIdentifier": "2"}]}


def test_a_record_exposes_the_fields_the_handlers_read() -> None:
    # Given a record as Lambda's SQS event source sends it
    raw = _record("m-1", {"task_id": "t"}, group="g")
    # When it is read
    record = SqsRecord.of(raw)
    # Then its id, body, source, group and sent time are there
    assert record.message_id == "m-1"
    assert record.json_body == {"task_id": "t"}
    assert record.event_source_arn == "arn:aws:sqs:us-east-1:1:queue"
    assert record.message_group_id == "g"
    assert record.sent_timestamp == "1700000000000"


def test_an_empty_batch_answers_no_failures() -> None:
    # Given an event with no records, When it is processed, Then nothing failed
    assert process_batch({"Records": []}, _failing_on(set(), [])) == {"batchItemFailures": []}
