"""edit_upload: one S3 inbox upload -> exactly one edit task (or a counted skip)."""

from __future__ import annotations

from typing import Any

import pytest
from image_gateway.inbox.objects import ObjectCreated
from image_gateway.inbox.settings import InboxSettings
from image_gateway.models.request import MAX_PROMPT_CHARS, Operation
from image_gateway.models.task import Task, TaskError, TaskStatus
from image_gateway.service.lifecycle import fail_task
from image_gateway.service.poll import poll_step
from image_gateway.service.upload_edit import (
    UploadOutcome,
    UploadResult,
    edit_upload,
    upload_identity,
)

from tests.fakes import FakeDependencies, FakeInboxDependencies, InMemoryInbox
from tests.hostile_images import png_bomb, png_header, truncated_png
from tests.unit.service.support import drain, png

CLIENT = "inbox-client"
RULES: dict[str, Any] = {
    "rules": [
        {
            "prefix": "products/",
            "prompt": "Put the product on a white background",
            "providers": ["mountsea-async"],
        },
        {
            "prefix": "masked/",
            "prompt": "Repaint the masked area",
            "providers": ["mountsea-async"],
            "mask": "required",
        },
        {"prefix": "apimart/", "prompt": "Make it shine", "providers": ["apimart"]},
    ]
}


def inbox_settings(**overrides: Any) -> InboxSettings:
    values: dict[str, Any] = {
        "bucket_name": "inbox",
        "client_id": CLIENT,
        "rules_parameter": "/gateway/inbox-rules",
        "max_image_bytes": 200_000,
        "max_pixels": 512 * 512,
    }
    return InboxSettings(**{**values, **overrides})


@pytest.fixture
def inbox(deps: FakeDependencies) -> FakeInboxDependencies:
    """The upload-edit function on fakes: an inbox bucket, three rules, a 200 kB limit."""
    return FakeInboxDependencies(deps, rules=RULES, settings=inbox_settings())


@pytest.fixture
def photo() -> bytes:
    return png(64, 64, "navy")


def task_of(inbox: FakeInboxDependencies, task_id: str | None) -> Task:
    assert task_id is not None
    return inbox.core.tasks.require(task_id)


def rejected(inbox: FakeInboxDependencies, created: ObjectCreated) -> Task:
    """Handle the upload, which must end as a failed task with its event; that task."""
    result = edit_upload(inbox, created)
    assert result.outcome is UploadOutcome.REJECTED
    task = task_of(inbox, result.task_id)
    assert task.status is TaskStatus.FAILED
    assert inbox.core.events.for_task(task.task_id) == ["Image Task Failed"]
    return task


def rejected_code(inbox: FakeInboxDependencies, created: ObjectCreated) -> str | None:
    """Handle the upload, which must end as a failed task with its event; its error code."""
    error = rejected(inbox, created).error
    return error.code if error else None


# -- the upload becomes an edit ------------------------------------------------------------------
def test_an_upload_becomes_an_edit_of_the_staged_photo(
    inbox: FakeInboxDependencies, photo: bytes
) -> None:
    # GIVEN a photo uploaded under products/ WHEN its notification is handled
    created = inbox.objects.put("products/shoe.png", photo)

    result = edit_upload(inbox, created)

    # THEN one edit task for the inbox's client, from the rule, on the photo staged in our bucket
    # (queued for the dispatch function, like an API task)
    assert result.outcome is UploadOutcome.SUBMITTED
    task = task_of(inbox, result.task_id)
    assert (task.client_id, task.operation, task.status) == (
        CLIENT,
        Operation.EDIT,
        TaskStatus.QUEUED,
    )
    assert inbox.core.dispatch_queue.messages == [(task.task_id, "mountsea-async")]
    assert task.request.prompt == "Put the product on a white background"
    staged = f"inputs/{CLIENT}/{task.task_id}/0.png"
    assert task.request.images == [f"s3://images/{staged}"]
    assert inbox.core.images.objects[staged] == photo
    assert task.source is not None
    assert (task.source.bucket, task.source.key, task.source.etag) == (
        "inbox",
        "products/shoe.png",
        created.etag,
    )


def test_the_uploads_prompt_metadata_wins_over_the_rule(
    inbox: FakeInboxDependencies, photo: bytes
) -> None:
    # GIVEN a photo uploaded with x-amz-meta-prompt WHEN handled THEN that prompt is used
    created = inbox.objects.put("products/shoe.png", photo, metadata={"Prompt": "Make it red"})

    result = edit_upload(inbox, created)

    assert task_of(inbox, result.task_id).request.prompt == "Make it red"


def test_the_result_lands_where_the_rule_says(inbox: FakeInboxDependencies, photo: bytes) -> None:
    # GIVEN an upload's task WHEN its provider finishes
    result = edit_upload(inbox, inbox.objects.put("products/shoes/red.png", photo))
    assert result.task_id is not None
    drain(inbox.core)
    poll_step(inbox.core, result.task_id, 0)

    # THEN the image is at outputs/{client}/{prefix}{path}.{task}.png, linked to its upload
    key = f"outputs/{CLIENT}/products/shoes/red.{result.task_id}.png"
    assert task_of(inbox, result.task_id).outputs[0].key == key
    assert inbox.core.images.metadata[key]["source-key"] == "products/shoes/red.png"


def test_references_are_added_in_number_order(inbox: FakeInboxDependencies, photo: bytes) -> None:
    # GIVEN two references uploaded before the photo (ref2 first) WHEN the photo is handled
    inbox.objects.put("products/shoe.ref2.png", png(32, 32, "red"))
    inbox.objects.put("products/shoe.ref1.png", png(32, 32, "blue"))

    result = edit_upload(inbox, inbox.objects.put("products/shoe.png", photo))

    # THEN the edit gets photo, ref1, ref2
    task = task_of(inbox, result.task_id)
    stem = f"s3://images/inputs/{CLIENT}/{task.task_id}"
    assert task.request.images == [f"{stem}/0.png", f"{stem}/1.png", f"{stem}/2.png"]
    assert inbox.core.images.objects[f"inputs/{CLIENT}/{task.task_id}/1.png"] == png(32, 32, "blue")


def test_a_required_mask_uploaded_first_is_used(inbox: FakeInboxDependencies, photo: bytes) -> None:
    # GIVEN a mask of the photo's size uploaded before it, under a rule that requires one
    inbox.objects.put("masked/door.mask.png", png(64, 64, "white"))

    result = edit_upload(inbox, inbox.objects.put("masked/door.png", photo))

    # THEN the edit carries the staged mask
    task = task_of(inbox, result.task_id)
    assert task.request.mask == f"s3://images/inputs/{CLIENT}/{task.task_id}/mask.png"


def test_a_url_encoded_key_is_read_under_its_real_name(
    inbox: FakeInboxDependencies, photo: bytes
) -> None:
    # GIVEN a classic notification with the key URL-encoded WHEN handled
    inbox.objects.put("products/my shoe.png", photo)
    created = ObjectCreated(bucket="inbox", key="products/my+shoe.png")

    result = edit_upload(inbox, created)

    # THEN the task's source is the real key
    source = task_of(inbox, result.task_id).source
    assert source is not None and source.key == "products/my shoe.png"


def test_an_overwritten_upload_in_a_versioned_bucket_is_edited_as_uploaded(
    deps: FakeDependencies,
) -> None:
    # GIVEN a versioned inbox where the photo was replaced after its first notification
    objects = InMemoryInbox("inbox", versioned=True)
    inbox = FakeInboxDependencies(deps, rules=RULES, settings=inbox_settings(), objects=objects)
    first = objects.put("products/shoe.png", png(64, 64, "navy"))
    objects.put("products/shoe.png", png(64, 64, "lime"))

    # WHEN the first notification is handled THEN the first version is the one edited
    result = edit_upload(inbox, first)

    task = task_of(inbox, result.task_id)
    assert task.source is not None and task.source.version_id == first.version_id
    assert deps.images.objects[f"inputs/{CLIENT}/{task.task_id}/0.png"] == png(64, 64, "navy")


# -- one upload, one task ------------------------------------------------------------------------
def test_a_duplicate_notification_finds_the_first_task(
    inbox: FakeInboxDependencies, photo: bytes
) -> None:
    # GIVEN an upload already handled WHEN its notification is delivered again
    created = inbox.objects.put("products/shoe.png", photo)
    first = edit_upload(inbox, created)

    again = edit_upload(inbox, created)
    drain(inbox.core)

    # THEN the earlier task is found: no second task, no second provider call
    assert (again.outcome, again.task_id) == (UploadOutcome.DUPLICATE, first.task_id)
    assert len(inbox.core.tasks.all()) == 1
    assert len(inbox.core.providers.calls_to("mountsea-async", "create")) == 1


def test_the_same_bytes_uploaded_again_find_the_first_task(
    inbox: FakeInboxDependencies, photo: bytes
) -> None:
    # GIVEN a handled upload WHEN the same bytes are uploaded again at the same key
    first = edit_upload(inbox, inbox.objects.put("products/shoe.png", photo))

    again = edit_upload(inbox, inbox.objects.put("products/shoe.png", photo))

    # THEN it is the same upload (same ETag): the first task
    assert (again.outcome, again.task_id) == (UploadOutcome.DUPLICATE, first.task_id)


def test_a_reupload_of_a_photo_whose_task_failed_makes_a_new_task(
    inbox: FakeInboxDependencies, photo: bytes
) -> None:
    # GIVEN an upload whose task failed (the provider refused it)
    first = edit_upload(inbox, inbox.objects.put("products/shoe.png", photo))
    assert first.task_id is not None
    fail_task(inbox.core, first.task_id, TaskError(code="provider_error", message="x"), by="test")

    # WHEN the same bytes are uploaded again at the same key
    again = edit_upload(inbox, inbox.objects.put("products/shoe.png", photo))

    # THEN it is a new task (a re-upload is how a user tries again), and a third delivery of
    # that re-upload finds the new one
    assert again.outcome is UploadOutcome.SUBMITTED and again.task_id != first.task_id
    third = edit_upload(inbox, inbox.objects.put("products/shoe.png", photo))
    assert (third.outcome, third.task_id) == (UploadOutcome.DUPLICATE, again.task_id)


def test_a_rule_may_name_the_client_its_uploads_belong_to(
    deps: FakeDependencies, photo: bytes
) -> None:
    # GIVEN a rule for team-b's folder naming its client
    rules: dict[str, Any] = {
        "rules": [
            {"prefix": "products/", "prompt": "White background"},
            {"prefix": "team-b/", "prompt": "Studio light", "client": "team-b"},
        ]
    }
    inbox = FakeInboxDependencies(deps, rules=rules, settings=inbox_settings())

    # WHEN one photo lands in each folder
    a = edit_upload(inbox, inbox.objects.put("products/a.png", photo))
    b = edit_upload(inbox, inbox.objects.put("team-b/b.png", photo))

    # THEN each task belongs to its own client, with its own limits and output folder
    assert a.task_id is not None and b.task_id is not None
    assert deps.tasks.require(a.task_id).client_id == CLIENT
    team_b = deps.tasks.require(b.task_id)
    assert team_b.client_id == "team-b"
    assert team_b.output_key_stem is not None and "team-b" in team_b.output_key_stem
    assert deps.usage.usage("team-b").running == 1


def test_a_changed_photo_at_the_same_key_is_a_new_task(
    inbox: FakeInboxDependencies, photo: bytes
) -> None:
    # GIVEN a handled upload WHEN other bytes are uploaded at the same key THEN a second task
    first = edit_upload(inbox, inbox.objects.put("products/shoe.png", photo))

    second = edit_upload(inbox, inbox.objects.put("products/shoe.png", png(64, 64, "lime")))

    assert second.outcome is UploadOutcome.SUBMITTED
    assert second.task_id != first.task_id


def test_a_redelivery_after_a_crash_before_the_task_was_written_finishes_it(
    inbox: FakeInboxDependencies, photo: bytes
) -> None:
    # GIVEN a first delivery that claimed the upload as tsk_crashed, then died
    created = inbox.objects.put("products/shoe.png", photo)
    identity = upload_identity(created.bucket, created.key, created.etag, created.version_id)
    inbox.core.idempotency.claim(CLIENT, identity, identity, "tsk_crashed")

    # WHEN the notification is delivered again
    result = edit_upload(inbox, created)

    # THEN the claimed task id is used: one task, submitted
    assert (result.outcome, result.task_id) == (UploadOutcome.SUBMITTED, "tsk_crashed")
    assert [t.task_id for t in inbox.core.tasks.all()] == ["tsk_crashed"]


# -- skipped and ignored -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key", ["products/shoe.mask.png", "products/shoe.ref1.jpg", "products/"], ids=str
)
def test_masks_references_and_folders_are_skipped(
    inbox: FakeInboxDependencies, photo: bytes, key: str
) -> None:
    # GIVEN an upload that is not a photo WHEN handled THEN skipped: no task, no claim
    result = edit_upload(inbox, inbox.objects.put(key, photo))

    assert result == UploadResult(UploadOutcome.SKIPPED)
    assert inbox.core.tasks.all() == []


def test_a_notification_for_another_bucket_is_ignored(
    inbox: FakeInboxDependencies, photo: bytes
) -> None:
    # GIVEN a notification naming another bucket WHEN handled THEN ignored, no task
    result = edit_upload(inbox, ObjectCreated(bucket="elsewhere", key="products/shoe.png"))

    assert result.outcome is UploadOutcome.IGNORED
    assert inbox.core.tasks.all() == []


def test_an_upload_overwritten_since_its_notification_is_left_to_the_newer_one(
    inbox: FakeInboxDependencies, photo: bytes
) -> None:
    # GIVEN a photo replaced (unversioned bucket) before its first notification was handled
    first = inbox.objects.put("products/shoe.png", photo)
    inbox.objects.put("products/shoe.png", png(64, 64, "lime"))

    # WHEN the first notification is handled THEN superseded: no task (the newer one has its own)
    assert edit_upload(inbox, first).outcome is UploadOutcome.SUPERSEDED
    assert inbox.core.tasks.all() == []


# -- rejected uploads: a failed task with its event ----------------------------------------------
def test_an_upload_no_rule_matches_fails(inbox: FakeInboxDependencies, photo: bytes) -> None:
    # GIVEN a photo outside every rule's prefix WHEN handled THEN a failed task: no_rule
    created = inbox.objects.put("misc/cat.png", photo)

    assert rejected_code(inbox, created) == "no_rule"


def test_a_rejected_upload_names_its_source(inbox: FakeInboxDependencies, photo: bytes) -> None:
    # GIVEN a rejected upload WHEN its task is read THEN it names the object and its ETag
    created = inbox.objects.put("misc/cat.png", photo)

    task = task_of(inbox, edit_upload(inbox, created).task_id)

    assert task.source is not None
    assert (task.source.key, task.source.etag) == ("misc/cat.png", created.etag)


def test_a_photo_without_its_required_mask_fails(
    inbox: FakeInboxDependencies, photo: bytes
) -> None:
    # GIVEN a rule requiring a mask and none uploaded WHEN the photo is handled THEN mask_missing
    assert rejected_code(inbox, inbox.objects.put("masked/door.png", photo)) == "mask_missing"


def test_a_mask_of_another_size_fails(inbox: FakeInboxDependencies, photo: bytes) -> None:
    # GIVEN a 32x32 mask for a 64x64 photo WHEN handled THEN mask_size_mismatch
    inbox.objects.put("masked/door.mask.png", png(32, 32, "white"))

    code = rejected_code(inbox, inbox.objects.put("masked/door.png", photo))

    # AND the photo staged before the mask was refused is deleted again: no orphan in inputs/
    assert code == "mask_size_mismatch"
    assert inbox.core.images.objects == {}
    assert len(inbox.core.images.deleted) == 1


def test_a_reference_that_is_not_an_image_fails_and_leaves_nothing_staged(
    inbox: FakeInboxDependencies, photo: bytes
) -> None:
    # GIVEN a good reference and a broken one uploaded before the photo
    inbox.objects.put("products/shoe.ref1.png", png(32, 32, "blue"))
    inbox.objects.put("products/shoe.ref2.png", truncated_png())

    code = rejected_code(inbox, inbox.objects.put("products/shoe.png", photo))

    # THEN invalid_image, and neither the photo nor the first reference stays staged
    assert code == "invalid_image"
    assert inbox.core.images.objects == {}


def test_a_decompression_bomb_fails_by_its_header_before_it_is_staged(
    inbox: FakeInboxDependencies,
) -> None:
    # GIVEN a real 40000x40000 PNG of ~190 KB (under the byte limit) WHEN handled
    # THEN image_too_many_pixels, the same check and code as the API's, nothing staged
    created = inbox.objects.put("products/bomb.png", png_bomb())

    assert rejected_code(inbox, created) == "image_too_many_pixels"
    assert inbox.core.images.objects == {}


def test_a_header_only_png_fails_as_invalid(inbox: FakeInboxDependencies) -> None:
    created = inbox.objects.put("products/empty.png", png_header(64, 64))

    assert rejected_code(inbox, created) == "invalid_image"


def test_a_photo_over_the_byte_limit_fails(inbox: FakeInboxDependencies) -> None:
    # GIVEN a photo over the inbox's 200 kB limit WHEN handled THEN image_too_large, not staged
    created = inbox.objects.put("products/big.png", png(64, 64) + b"\0" * 200_000)

    assert rejected_code(inbox, created) == "image_too_large"
    assert inbox.core.images.objects == {}


def test_a_photo_with_too_many_pixels_fails(inbox: FakeInboxDependencies) -> None:
    # GIVEN a 600x600 photo and a 512x512-pixel limit WHEN handled THEN image_too_many_pixels
    created = inbox.objects.put("products/wide.png", png(600, 600))

    assert rejected_code(inbox, created) == "image_too_many_pixels"


def test_a_file_that_is_not_an_image_fails(inbox: FakeInboxDependencies) -> None:
    # GIVEN text uploaded as a .png WHEN handled THEN invalid_image
    created = inbox.objects.put("products/notes.png", b"remember the milk")

    assert rejected_code(inbox, created) == "invalid_image"


def test_an_upload_deleted_before_it_was_read_fails(
    inbox: FakeInboxDependencies, photo: bytes
) -> None:
    # GIVEN a photo deleted before its notification was handled THEN source_not_found
    created = inbox.objects.put("products/shoe.png", photo)
    inbox.objects.delete("products/shoe.png")

    assert rejected_code(inbox, created) == "source_not_found"


def test_a_broken_rules_document_fails_the_upload(
    inbox: FakeInboxDependencies, photo: bytes
) -> None:
    # GIVEN an operator's invalid rules document WHEN a photo is handled
    # THEN a failed task says so (inbox_rules_invalid)
    inbox.rules_document = {"rules": [{"prefix": "products/"}]}  # no prompt

    code = rejected_code(inbox, inbox.objects.put("products/shoe.png", photo))

    assert code == "inbox_rules_invalid"


def test_a_prompt_too_long_for_a_request_fails(inbox: FakeInboxDependencies, photo: bytes) -> None:
    # GIVEN prompt metadata longer than any request allows WHEN handled THEN invalid_request,
    # and the failed task keeps the prompt cut to the request limit
    created = inbox.objects.put("products/shoe.png", photo, metadata={"prompt": "x" * 40_000})

    task = rejected(inbox, created)

    assert task.error is not None and task.error.code == "invalid_request"
    assert task.request.prompt == "x" * MAX_PROMPT_CHARS


def test_an_edit_no_provider_can_make_fails_with_the_refusal(
    inbox: FakeInboxDependencies, photo: bytes
) -> None:
    # GIVEN a rule sending edits to apimart (no masks) and a photo with a mask
    inbox.objects.put("apimart/ring.mask.png", png(64, 64, "white"))
    created = inbox.objects.put("apimart/ring.png", photo)

    # WHEN handled THEN submit's 422 becomes the failed task's error; the request is kept
    task = rejected(inbox, created)

    assert task.error is not None and task.error.code == "unsupported_by_provider"
    assert task.request.mask is not None
    assert inbox.core.providers.calls == []
