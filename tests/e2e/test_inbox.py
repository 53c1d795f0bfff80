"""The S3 inbox, end to end: boto3 upload -> EventBridge -> SQS -> upload-edit -> task -> S3 output.

The rules are the operator's SSM document, written once here before the first upload (the
function reads it at its first notification and caches it for a minute x the time scale).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from image_gateway.adapters.dynamodb_tasks import DynamoDBTaskStore as TaskStore
from image_gateway.models.task import Task
from PIL import Image, ImageDraw

from devstack.stack import DevStack, StackInfo, wait_until
from tests.e2e.support import EventLog, open_image

RULES = {
    "version": 1,
    "rules": [
        {
            "prefix": "products/",
            "prompt": "Put the product on a white studio background",
            "size": "1024x1024",
            "quality": "low",
            "providers": ["mountsea-async"],
            "output_prefix": "outputs/inbox/edited/products/",
        },
        {
            "prefix": "masked/",
            "prompt": "Replace the transparent disc with a glowing moon",
            "size": "1024x1024",
            "providers": ["mountsea-async"],
            "mask": "required",
        },
        {
            "prefix": "collages/",
            "prompt": "Combine the references into one poster",
            "providers": ["apimart"],
        },
        {"prefix": "batches/team/", "prompt": "(manifests carry their own)", "client": "team-b"},
    ],
}


@pytest.fixture(scope="module")
def inbox(info: StackInfo) -> Iterator[str]:
    """The inbox bucket, with this module's rules in force; the stack's rules put back after
    (later tests, like the docs' inbox example, use the stack's own rules)."""
    ssm = boto3.client("ssm")
    name = info.outputs["InboxRulesParameterName"]
    original = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    ssm.put_parameter(Name=name, Value=json.dumps(RULES), Overwrite=True)
    try:
        yield info.outputs["InboxBucketName"]
    finally:
        ssm.put_parameter(Name=name, Value=original, Overwrite=True)


@pytest.fixture(scope="module")
def s3() -> Any:
    """An S3 client of the local stack."""
    return boto3.client("s3")


@pytest.fixture(scope="module")
def tasks(info: StackInfo) -> TaskStore:
    """The task table."""
    return TaskStore(boto3.client("dynamodb"), info.table_name)


def _png(width: int = 1024, height: int = 1024, *, mode: str = "RGB") -> bytes:
    image = Image.new(mode, (width, height), (30, 110, 190, 255)[: len(mode)])
    if mode == "RGBA":  # a mask: opaque, with a transparent disc to repaint
        ImageDraw.Draw(image).ellipse((362, 362, 662, 662), fill=(0, 0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _tasks_for(tasks: TaskStore, key: str) -> list[Task]:
    found: list[Task] = []
    cursor: str | None = None
    while True:
        page = tasks.list_for_client("inbox", limit=100, cursor=cursor)
        found += [t for t in page.tasks if t.source is not None and t.source.key == key]
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def _drained(stack: DevStack) -> None:
    """Wait until every notification sent so far has been handled (bounded)."""
    wait_until(lambda: stack.queue_idle("InboxQueue"), timeout=15)


def _notification(bucket: str, key: str, etag: str) -> str:
    """An S3 Object Created event as EventBridge puts it on the queue."""
    return json.dumps(
        {
            "version": "0",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "detail": {
                "bucket": {"name": bucket},
                "object": {"key": key, "size": 1, "etag": etag},
                "reason": "PutObject",
            },
        }
    )


@pytest.fixture
def succeeded(inbox: str, s3: Any, events: EventLog) -> Iterator[tuple[str, dict[str, Any]]]:
    """A product photo uploaded with boto3, and the Succeeded event of its edit."""
    key = "products/shoe 42.png"
    s3.put_object(Bucket=inbox, Key=key, Body=_png(), ContentType="image/png")
    yield key, events.wait_for_source(key, "Image Task Succeeded")


def test_an_upload_becomes_an_edit_at_the_rules_output_location(
    succeeded: tuple[str, dict[str, Any]], s3: Any, tasks: TaskStore, info: StackInfo, inbox: str
) -> None:
    # Given a product photo uploaded to the inbox (fixture)
    key, event = succeeded
    # Then one task owned by the inbox client edited it with the rule's recipe
    (task,) = _tasks_for(tasks, key)
    assert task.client_id == "inbox" and task.operation.value == "edit"
    assert task.request.prompt == "Put the product on a white studio background"
    assert (task.request.size, task.request.quality) == ("1024x1024", "low")
    assert task.source is not None and (task.source.bucket, task.source.key) == (inbox, key)
    # And the edited image is in the images bucket under the rule's output prefix
    output = task.outputs[0]
    assert output.bucket == info.bucket_name != inbox
    assert output.key == f"outputs/inbox/edited/products/shoe 42.{task.task_id}.png"
    stored = s3.get_object(Bucket=output.bucket, Key=output.key)
    data = stored["Body"].read()
    assert open_image(data).size == (1024, 1024)
    assert hashlib.sha256(data).hexdigest() == output.sha256
    # with metadata linking it to its source and its task
    assert stored["Metadata"]["task-id"] == task.task_id
    assert stored["Metadata"]["source-bucket"] == inbox
    assert stored["Metadata"]["source-key"] == "products/shoe%2042.png"
    # And the event carries the source and the output location
    detail = event["detail"]
    assert detail["task_id"] == task.task_id and detail["client_id"] == "inbox"
    assert detail["source"]["bucket"] == inbox and detail["source"]["key"] == key
    assert detail["outputs"][0]["key"] == output.key
    assert detail["outputs"][0]["bucket"] == info.bucket_name


def test_the_edited_image_never_triggers_another_edit(
    succeeded: tuple[str, dict[str, Any]], stack: DevStack, tasks: TaskStore, info: StackInfo
) -> None:
    # Given an edit that finished and wrote its output
    key, _ = succeeded
    # When every notification has been handled
    _drained(stack)
    # Then the output made no task: only the upload did, and no task came from the images bucket
    assert len(_tasks_for(tasks, key)) == 1
    page = tasks.list_for_client("inbox", limit=100, cursor=None)
    assert all(t.source is None or t.source.bucket != info.bucket_name for t in page.tasks)
    notifications = boto3.client("s3").get_bucket_notification_configuration(
        Bucket=info.bucket_name
    )
    assert "EventBridgeConfiguration" not in notifications


def test_a_mask_named_after_the_photo_makes_a_masked_edit(
    inbox: str, s3: Any, events: EventLog, tasks: TaskStore, stack: DevStack
) -> None:
    # Given a mask uploaded as moon.mask.png, then the photo moon.png
    s3.put_object(Bucket=inbox, Key="masked/moon.mask.png", Body=_png(mode="RGBA"))
    s3.put_object(Bucket=inbox, Key="masked/moon.png", Body=_png())
    # When the edit finishes
    event = events.wait_for_source("masked/moon.png", "Image Task Succeeded")
    # Then the task edited the photo with the mask, staged from the inbox
    (task,) = _tasks_for(tasks, "masked/moon.png")
    assert task.task_id == event["detail"]["task_id"]
    assert task.request.mask is not None and task.request.mask.endswith(f"{task.task_id}/mask.png")
    assert len(task.request.images) == 1
    assert event["detail"]["outputs"][0]["key"].startswith("outputs/inbox/masked/moon.")
    # And the mask itself was skipped: no task of its own
    _drained(stack)
    assert _tasks_for(tasks, "masked/moon.mask.png") == []


def test_reference_images_named_after_the_photo_are_sent_in_number_order(
    inbox: str, s3: Any, events: EventLog, tasks: TaskStore
) -> None:
    # Given two references uploaded before the photo
    s3.put_object(Bucket=inbox, Key="collages/poster.ref2.png", Body=_png(512, 512))
    s3.put_object(Bucket=inbox, Key="collages/poster.ref1.png", Body=_png(256, 256))
    s3.put_object(Bucket=inbox, Key="collages/poster.png", Body=_png())
    # When the edit finishes
    events.wait_for_source("collages/poster.png", "Image Task Succeeded")
    # Then the photo comes first, then ref1, then ref2
    (task,) = _tasks_for(tasks, "collages/poster.png")
    assert [ref.rsplit("/", 1)[-1] for ref in task.request.images] == ["0.png", "1.png", "2.png"]
    assert task.provider == "apimart"


def test_a_metadata_prompt_wins_over_the_rules_prompt(
    inbox: str, s3: Any, events: EventLog, tasks: TaskStore
) -> None:
    # Given an upload that carries its own prompt in x-amz-meta-prompt
    key = "products/bag.png"
    s3.put_object(Bucket=inbox, Key=key, Body=_png(), Metadata={"prompt": "Make the bag red"})
    # When it is edited
    event = events.wait_for_source(key, "Image Task Succeeded")
    # Then the object's prompt was used, with the rest of the rule's recipe
    (task,) = _tasks_for(tasks, key)
    assert task.task_id == event["detail"]["task_id"]
    assert task.request.prompt == "Make the bag red"
    assert task.request.size == "1024x1024"


def test_the_same_bytes_uploaded_twice_make_one_task(
    inbox: str, s3: Any, events: EventLog, tasks: TaskStore, stack: DevStack
) -> None:
    # Given the same photo uploaded twice to the same key
    key = "products/twice.png"
    body = _png(800, 600)
    s3.put_object(Bucket=inbox, Key=key, Body=body)
    s3.put_object(Bucket=inbox, Key=key, Body=body)
    # When both notifications have been handled
    events.wait_for_source(key, "Image Task Succeeded")
    _drained(stack)
    # Then there is one task
    assert len(_tasks_for(tasks, key)) == 1


def test_a_notification_delivered_twice_makes_one_task(
    inbox: str, s3: Any, events: EventLog, tasks: TaskStore, stack: DevStack
) -> None:
    # Given a photo whose edit finished
    key = "products/again.png"
    s3.put_object(Bucket=inbox, Key=key, Body=_png(640, 640))
    events.wait_for_source(key, "Image Task Succeeded")
    # When its notification is delivered again
    etag = s3.head_object(Bucket=inbox, Key=key)["ETag"].strip('"')
    boto3.client("sqs").send_message(
        QueueUrl=stack.queue_urls["InboxQueue"], MessageBody=_notification(inbox, key, etag)
    )
    _drained(stack)
    # Then it finds the earlier task: still one task, one Succeeded event
    assert len(_tasks_for(tasks, key)) == 1
    succeeded = [e for e in events.for_source(key) if e["detail-type"] == "Image Task Succeeded"]
    assert len(succeeded) == 1


def _truncated_png() -> bytes:
    return _png()[:20]  # stopped before the header's dimensions


@pytest.mark.parametrize(
    ("key", "body", "code"),
    [
        ("products/readme.txt", b"not an image at all", "invalid_image"),
        ("products/half-written.png", _truncated_png(), "invalid_image"),
        ("products/huge.png", b"\x89PNG\r\n\x1a\n" + bytes(21 * 1024 * 1024), "image_too_large"),
        ("products/panorama.png", _png(5000, 4000), "image_too_many_pixels"),
        ("elsewhere/photo.png", _png(), "no_rule"),
        ("masked/lonely.png", _png(), "mask_missing"),
    ],
    ids=["non-image", "half-written", "too-many-bytes", "too-many-pixels", "no-rule", "no-mask"],
)
def test_a_bad_upload_becomes_a_failed_task_with_an_event_saying_why(
    inbox: str, s3: Any, events: EventLog, tasks: TaskStore, key: str, body: bytes, code: str
) -> None:
    # Given a bad upload
    s3.put_object(Bucket=inbox, Key=key, Body=body)
    # When it is handled
    event = events.wait_for_source(key, "Image Task Failed")
    # Then its task failed once, with a clear code, and nothing was sent to a provider
    assert event["detail"]["error"]["code"] == code
    assert event["detail"]["source"]["key"] == key
    (task,) = _tasks_for(tasks, key)
    assert task.status.value == "failed" and task.error is not None and task.error.code == code
    assert task.attempts == [] and task.outputs == []


def test_an_object_deleted_before_its_notification_is_handled_fails_its_task(
    inbox: str, events: EventLog, stack: DevStack
) -> None:
    # Given a notification for an object that is gone by the time it is read
    key = "products/gone.png"
    boto3.client("sqs").send_message(
        QueueUrl=stack.queue_urls["InboxQueue"],
        MessageBody=_notification(inbox, key, "0123456789abcdef0123456789abcdef"),
    )
    # Then its task fails with source_not_found (no retries)
    event = events.wait_for_source(key, "Image Task Failed")
    assert event["detail"]["error"]["code"] == "source_not_found"


def test_masks_and_references_on_their_own_are_skipped_without_a_task(
    inbox: str, s3: Any, tasks: TaskStore, stack: DevStack
) -> None:
    # Given a mask and a reference uploaded without a photo
    s3.put_object(Bucket=inbox, Key="products/solo.mask.png", Body=_png(mode="RGBA"))
    s3.put_object(Bucket=inbox, Key="products/solo.ref1.png", Body=_png())
    s3.put_object(Bucket=inbox, Key="products/folder/", Body=b"")
    # When their notifications have been handled
    _drained(stack)
    # Then none of them made a task
    for key in ("products/solo.mask.png", "products/solo.ref1.png", "products/folder/"):
        assert _tasks_for(tasks, key) == []


def _results_file(s3: Any, bucket: str, prefix: str) -> dict[str, Any] | None:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    keys = [str(o["Key"]) for o in listed if str(o["Key"]).endswith(".results.jsonl")]
    if not keys:
        return None
    (key,) = keys
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return {"key": key, "rows": [json.loads(line) for line in text.splitlines()]}


def test_a_manifest_dropped_under_batches_produces_its_results_file(
    inbox: str, s3: Any, info: StackInfo, stack: DevStack
) -> None:
    # Given a JSONL manifest of two lines and one without a prompt, dropped under batches/team/
    # (the rule names team-b)
    lines: list[dict[str, Any]] = [
        {
            "custom_id": f"shelf-{n}",
            "body": {"prompt": f"a shelf {n}", "provider": "mountsea-compat"},
        }
        for n in range(2)
    ]
    lines.append({"custom_id": "shelf-bad", "body": {"provider": "mountsea-compat"}})
    key = "batches/team/week-49.jsonl"
    s3.put_object(Bucket=inbox, Key=key, Body="".join(json.dumps(x) + "\n" for x in lines))
    # When the batch runs
    found = wait_until(
        lambda: _results_file(s3, info.bucket_name, "batches/team-b/inbox/team/week-49."),
        timeout=180,
    )
    # Then its results file lists the good lines succeeded, with their images in the images
    # bucket, and the bad one invalid
    assert [(r["custom_id"], r["status"]) for r in found["rows"]] == [
        ("shelf-0", "succeeded"),
        ("shelf-1", "succeeded"),
        ("shelf-bad", "invalid"),
    ]
    output = found["rows"][0]["outputs"][0]
    assert output["bucket"] == info.bucket_name
    assert open_image(s3.get_object(Bucket=output["bucket"], Key=output["key"])["Body"].read())
    # And next to the manifest in the inbox: the same results, and an errors file of the bad line
    beside = _results_file(s3, inbox, "batches/team/week-49.")
    assert beside is not None and beside["key"] == "batches/team/week-49.results.jsonl"
    assert beside["rows"] == found["rows"]
    errors = s3.get_object(Bucket=inbox, Key="batches/team/week-49.errors.jsonl")["Body"].read()
    (error,) = [json.loads(row) for row in errors.decode().splitlines()]
    assert (error["custom_id"], error["status"]) == ("shelf-bad", "invalid")
    assert error["error"]["code"] == "validation_error"
    # And once their own notifications are handled, they made no batch of their own
    _drained(stack)
    again = _results_file(s3, info.bucket_name, "batches/team-b/inbox/team/week-49.")
    assert again is not None and again["key"] == found["key"]


def test_a_bad_manifest_becomes_a_failed_batch_with_its_event(
    inbox: str, s3: Any, events: EventLog
) -> None:
    # Given a manifest that is not JSONL
    key = "batches/team/not-jsonl.jsonl"
    s3.put_object(Bucket=inbox, Key=key, Body=b"sku,prompt\n1,a mug\n")
    # When it is handled
    event = events.wait_for_other(
        "Image Batch Completed", {"metadata": {"inbox_key": key}}, timeout=60
    )
    # Then its batch failed with invalid_input_file, announced on the bus
    assert event["detail"]["status"] == "failed"
    assert event["detail"]["error"]["code"] == "invalid_input_file"
    # And an errors file next to it says why
    errors = s3.get_object(Bucket=inbox, Key="batches/team/not-jsonl.errors.jsonl")["Body"]
    (error,) = [json.loads(row) for row in errors.read().decode().splitlines()]
    assert (error["status"], error["error"]["code"]) == ("failed", "invalid_input_file")
