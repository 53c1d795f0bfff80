"""events/: sample events stay in step with the template, the models and the published schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from image_gateway.batches.events import batch_event_schema
from image_gateway.inbox.objects import ObjectCreated
from image_gateway.models.circuits import (
    CIRCUIT_CHANGED_DETAIL_TYPE,
    CircuitChangedDetail,
    circuit_changed_schema,
)
from image_gateway.models.events import DETAIL_TYPES, TaskEventDetail, event_detail_schema
from image_gateway.models.views import webhook_payload_schema
from image_gateway.webhooks.models import DeliveryMessage, webhook_failed_schema

from devstack.template import ROOT, load_template

EVENTS = ROOT / "events"
TEMPLATE_ROUTES = {
    f"{e['Properties']['Method']} {e['Properties']['Path']}"
    for resource in load_template()["Resources"].values()
    if resource["Type"] == "AWS::Serverless::Function"
    for e in resource["Properties"].get("Events", {}).values()
    if e["Type"] == "HttpApi"
}


def test_the_published_event_schema_matches_the_model() -> None:
    published = json.loads((EVENTS / "schema" / "image-task-event.v1.json").read_text())
    assert published == event_detail_schema(), "regenerate with `make schema`"


def test_the_published_batch_event_schema_matches_the_model() -> None:
    published = json.loads((EVENTS / "schema" / "image-batch-event.v1.json").read_text())
    assert published == batch_event_schema(), "regenerate with `make schema`"


def test_the_published_webhook_schema_matches_the_model() -> None:
    published = json.loads((EVENTS / "schema" / "image-task-webhook.v1.json").read_text())
    assert published == webhook_payload_schema(), "regenerate with `make schema`"


def test_the_published_webhook_failed_event_schema_matches_the_model() -> None:
    published = json.loads((EVENTS / "schema" / "image-task-webhook-failed.v1.json").read_text())
    assert published == webhook_failed_schema(), "regenerate with `make schema`"


def test_the_published_circuit_changed_event_schema_matches_the_model() -> None:
    published = json.loads((EVENTS / "schema" / "provider-circuit-changed.v1.json").read_text())
    assert published == circuit_changed_schema(), "regenerate with `make schema`"


def test_the_sample_webhook_queue_event_is_a_delivery_message() -> None:
    event = json.loads((EVENTS / "callers-webhook-sqs.json").read_text())
    (record,) = event["Records"]
    message = DeliveryMessage.model_validate_json(record["body"])
    assert message.webhook_id == f"msg_{message.task_id}_{message.status.value}"


def test_the_sample_eventbridge_event_is_a_valid_version_1_detail() -> None:
    event = json.loads((EVENTS / "eventbridge-task-succeeded.json").read_text())
    detail = TaskEventDetail.model_validate(event["detail"])
    assert event["detail-type"] == DETAIL_TYPES[detail.status] == detail.detail_type
    assert event["source"] == "image-gateway"


def test_the_sample_circuit_changed_event_is_a_valid_version_1_detail() -> None:
    event = json.loads((EVENTS / "eventbridge-provider-circuit-changed.json").read_text())
    detail = CircuitChangedDetail.model_validate(event["detail"])
    assert event["detail-type"] == CIRCUIT_CHANGED_DETAIL_TYPE
    assert event["source"] == "image-gateway"
    at_ms = round(detail.changed_at.timestamp() * 1000)
    assert detail.event_id == f"{detail.provider}:{detail.state}:{at_ms}"


@pytest.mark.parametrize(
    "path", sorted(p for p in EVENTS.glob("*.json") if p.name.startswith(("api-", "webhook-")))
)
def test_every_sample_http_event_is_a_route_of_the_template(path: Path) -> None:
    event = json.loads(path.read_text())
    assert event["version"] == "2.0"
    assert event["routeKey"] in TEMPLATE_ROUTES


def test_the_sample_inbox_queue_event_is_an_s3_object_created_notification() -> None:
    event = json.loads((EVENTS / "upload-edit-sqs.json").read_text())
    (record,) = event["Records"]
    created = ObjectCreated.from_eventbridge(json.loads(record["body"]))
    assert (created.key, created.etag) == ("products/shoe.png", "5d41402abc4b2a76b9719d911017c592")


@pytest.mark.parametrize(
    ("name", "queue"),
    [
        ("dispatch-sqs.json", "DispatchQueue"),
        ("dispatch-dead-letter-sqs.json", "DispatchDeadLetterQueue"),
        ("finalize-sqs.json", "FinalizeQueue"),
    ],
)
def test_the_sample_queue_events_carry_a_task_and_its_provider(name: str, queue: str) -> None:
    event = json.loads((EVENTS / name).read_text())
    (record,) = event["Records"]
    body = json.loads(record["body"])
    assert body.keys() == {"task_id", "provider"}
    resource = load_template()["Resources"][queue]
    assert resource["Type"] == "AWS::SQS::Queue"
    fifo = resource["Properties"].get("FifoQueue", False)
    assert record["eventSourceARN"].endswith(f"-{queue}" + (".fifo" if fifo else ""))
    if fifo:  # one message group per task
        assert record["attributes"]["MessageGroupId"] == body["task_id"]
