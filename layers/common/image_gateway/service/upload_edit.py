"""edit_upload: one S3 inbox upload -> exactly one edit task, through the API's submit path.

A JSONL manifest under ``batches/`` becomes a batch instead
(:mod:`image_gateway.service.inbox_batches`); the results and errors files its batch writes next
to it are skipped. Every upload that is meant to be edited ends as a
task: submitted (then finalised like any other)
or failed at once with a clear error and its ``Image Task Failed`` event. Masks, references and
folder markers are skipped (logged and counted). The upload's identity (bucket, key, ETag) is
claimed in the idempotency store first, so a duplicate notification or the same bytes uploaded
again find the earlier task instead of making a second one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from enum import StrEnum

from aws_lambda_powertools import Logger

from image_gateway.errors import (
    GatewayError,
    InvalidImage,
    PayloadTooLarge,
    ServiceBusy,
    TooManyRequests,
    UploadRejected,
)
from image_gateway.images.inputs import InputCheck
from image_gateway.images.store import StoredImage
from image_gateway.inbox.naming import (
    classify_key,
    find_companions,
    is_manifest,
    is_manifest_reply,
    photo_stem,
)
from image_gateway.inbox.objects import InboxObject, ObjectCreated, SourceSuperseded
from image_gateway.inbox.ports import InboxDependencies
from image_gateway.inbox.rules import InboxRule
from image_gateway.models.request import MAX_PROMPT_CHARS, ImageRequest, Operation
from image_gateway.models.task import SourceObject, TaskError, TaskStatus
from image_gateway.service.lifecycle import fail_task
from image_gateway.service.staging import discarded_on_failure
from image_gateway.service.submit import new_task_id, reject_task, submit_task

logger = Logger(child=True)

PROMPT_METADATA_KEY = "prompt"  # x-amz-meta-prompt
_NO_PROMPT = "(no prompt: the upload was rejected before its rule applied)"


class UploadOutcome(StrEnum):
    """What happened to one notification."""

    SUBMITTED = "submitted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    SUPERSEDED = "superseded"
    IGNORED = "ignored"
    BATCHED = "batched"


class UploadMustWait(Exception):
    """The upload's client is over its rate or its queue is full (or its counters are busy):
    nothing was written; the notification is delivered again later (the inbox queue's
    visibility timeout), and the photo is submitted then."""


@dataclass(frozen=True)
class UploadResult:
    """The outcome, and the task (or a manifest's batch) it made or found (if any)."""

    outcome: UploadOutcome
    task_id: str | None = None
    batch_id: str | None = None


def upload_identity(bucket: str, key: str, etag: str | None, version_id: str | None) -> str:
    """The idempotency key of an upload: same bucket, key and bytes (ETag) = same upload."""
    marker = etag or version_id or ""
    return "s3:" + hashlib.sha256(f"{bucket}\0{key}\0{marker}".encode()).hexdigest()


def edit_upload(inbox: InboxDependencies, created: ObjectCreated) -> UploadResult:
    """Turn one "Object Created" notification into one task (or a counted skip).

    Transient failures (S3 or DynamoDB errors worth retrying) propagate, so the queue delivers the
    notification again; everything about the upload itself ends as a failed task instead.
    """
    deps = inbox.core
    client_id = inbox.settings.client_id
    log = {"bucket": created.bucket, "key": created.key}
    if created.bucket != inbox.settings.bucket_name:
        logger.warning("notification for another bucket ignored", extra=log)
        return UploadResult(UploadOutcome.IGNORED)
    if is_manifest(created.key):
        return _batch(inbox, created)
    if is_manifest_reply(created.key):  # written by a manifest's batch: nothing to do
        logger.info("upload skipped: a manifest's results or errors file", extra=log)
        return UploadResult(UploadOutcome.SKIPPED)
    kind = classify_key(created.key)
    if not kind.edited:
        logger.info("upload skipped: not a photo", extra={**log, "kind": kind.value})
        return UploadResult(UploadOutcome.SKIPPED)

    identity = upload_identity(created.bucket, created.key, created.etag, created.version_id)
    task_id, duplicate = _claim(inbox, identity)
    if duplicate:
        logger.info("duplicate upload", extra={**log, "task_id": task_id})
        return UploadResult(UploadOutcome.DUPLICATE, task_id)
    source = SourceObject(
        bucket=created.bucket, key=created.key, version_id=created.version_id, etag=created.etag
    )
    prompt = _NO_PROMPT
    owner = client_id
    try:
        obj = inbox.objects.head(created)
        source = SourceObject(
            bucket=obj.bucket, key=obj.key, version_id=obj.version_id, etag=obj.etag
        )
        prompt = obj.metadata.get(PROMPT_METADATA_KEY) or prompt
        rule = inbox.rules.current().rule_for(obj.key)
        if rule is None:
            raise UploadRejected(f"no inbox rule matches {obj.key}", code="no_rule")
        prompt = obj.metadata.get(PROMPT_METADATA_KEY) or rule.prompt
        owner = rule.client or client_id  # two teams' drops need not share one limit
        request = _edit_request(inbox, rule, obj, prompt, task_id, owner)
    except SourceSuperseded:
        logger.info("upload superseded by a newer one", extra=log)
        return UploadResult(UploadOutcome.SUPERSEDED)
    except GatewayError as error:
        return _rejected(
            inbox, task_id, source, prompt, error, request_id=created.event_id, owner=owner
        )
    try:
        submit_task(
            deps,
            request,
            client_id=owner,
            task_id=task_id,
            source=source,
            request_id=created.event_id,
            output_key_stem=rule.output_key_stem(source.key, client_id=owner, task_id=task_id),
        )
    except GatewayError as error:  # the API's validation, routing and limits refused it
        if _passes_with_time(error):  # a drop folder never fails a photo for such a limit
            logger.info("upload waits for its client's limits", extra={**log, "code": error.code})
            raise UploadMustWait(error.message) from error
        return _rejected(
            inbox,
            task_id,
            source,
            request.prompt,
            error,
            request=request,
            request_id=created.event_id,
            owner=owner,
        )
    logger.info("upload submitted", extra={**log, "task_id": task_id})
    return UploadResult(UploadOutcome.SUBMITTED, task_id)


def _batch(inbox: InboxDependencies, created: ObjectCreated) -> UploadResult:
    """A manifest under ``batches/``: one batch (:mod:`image_gateway.service.inbox_batches`)."""
    # Imported here: the batch modules (batch input, batch models) are a tenth of the inbox
    # function's import on the built layer, and most uploads are photos.
    from image_gateway.service.inbox_batches import batch_from_manifest

    identity = upload_identity(created.bucket, created.key, created.etag, created.version_id)
    try:
        batch_id, duplicate = batch_from_manifest(inbox, created, identity)
    except SourceSuperseded:
        return UploadResult(UploadOutcome.SUPERSEDED)
    outcome = UploadOutcome.DUPLICATE if duplicate else UploadOutcome.BATCHED
    return UploadResult(outcome, batch_id=batch_id)


def _passes_with_time(error: GatewayError) -> bool:
    """Busy counters, the minute's rate, a full queue: the same upload passes later."""
    if isinstance(error, ServiceBusy):
        return True
    return isinstance(error, TooManyRequests) and error.passes_with_time


_ENDED_WITHOUT_IMAGE = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.EXPIRED})


def _claim(inbox: InboxDependencies, identity: str) -> tuple[str, bool]:
    """The task id this upload gets, and whether it is an earlier task's duplicate.

    The same bytes at the same key count as a duplicate of an earlier task that is open or
    succeeded; an earlier task that failed, was cancelled or expired gives the upload a new
    task (a re-upload is how a user tries again). An earlier delivery that stopped before
    writing its task is finished under the id it claimed.
    """
    deps, client_id = inbox.core, inbox.settings.client_id
    task_id = new_task_id()
    earlier = deps.idempotency.claim(client_id, identity, identity, task_id)
    if earlier is None:
        return task_id, False
    task = deps.tasks.get(earlier)
    if task is None:
        return earlier, False
    if task.status not in _ENDED_WITHOUT_IMAGE:
        return earlier, True
    deps.idempotency.release(client_id, identity, earlier)
    again = deps.idempotency.claim(client_id, identity, identity, task_id)
    if again is None:
        logger.info(
            "re-upload of an upload whose task ended without an image: a new task",
            extra={"earlier": earlier, "task_id": task_id},
        )
        return task_id, False
    return again, True  # another delivery of this re-upload claimed it first


def _edit_request(
    inbox: InboxDependencies,
    rule: InboxRule,
    obj: InboxObject,
    prompt: str,
    task_id: str,
    client_id: str,
) -> ImageRequest:
    """Stage the photo (and its mask and references) in the images bucket; build the request.

    Each is checked like an API input (:class:`InputCheck`, the inbox's pixel limit; the mask
    against the photo's size); when one is refused, the ones already staged are deleted again.
    """
    stem = f"inputs/{client_id}/{task_id}"
    companions = find_companions(obj.key, inbox.objects.siblings(photo_stem(obj.key)))
    if rule.mask == "required" and companions.mask is None:
        raise UploadRejected(
            f"the rule for {rule.prefix!r} needs a mask: upload {photo_stem(obj.key)}.mask.png "
            "before the photo",
            code="mask_missing",
        )
    check = InputCheck(inbox.settings.max_pixels)
    with discarded_on_failure(lambda: inbox.staging) as written:
        photo = _stage(inbox, obj, f"{stem}/0", what="the upload", check=check)
        written.append(photo.key)
        images = [_ref(photo)]
        for index, key in enumerate(companions.references, start=1):
            reference = _stage(
                inbox, inbox.objects.companion(key), f"{stem}/{index}", what=key, check=check
            )
            written.append(reference.key)
            images.append(_ref(reference))
        mask: str | None = None
        if companions.mask is not None:
            staged_mask = _stage(
                inbox,
                inbox.objects.companion(companions.mask),
                f"{stem}/mask",
                what=companions.mask,
                check=replace(check, mask_of=(photo.width, photo.height)),
            )
            written.append(staged_mask.key)
            mask = _ref(staged_mask)
        try:
            return rule.edit_request(prompt=prompt, images=images, mask=mask)
        except ValueError as exc:  # e.g. a metadata prompt that is too long
            raise UploadRejected(
                f"the edit request is invalid: {exc}", code="invalid_request"
            ) from None


def _stage(
    inbox: InboxDependencies, obj: InboxObject, key_stem: str, *, what: str, check: InputCheck
) -> StoredImage:
    """Copy one inbox object into the images bucket, checking it is an image within limits."""
    limits = inbox.settings
    if obj.size > limits.max_image_bytes:
        raise UploadRejected(
            f"{what} is {obj.size} bytes; the inbox limit is {limits.max_image_bytes}",
            code="image_too_large",
        )
    try:
        return inbox.staging.store(
            inbox.objects.stream(obj),
            key_stem,
            metadata={"source-bucket": obj.bucket, "source-etag": obj.etag},
            check=check,
        )
    except InvalidImage as exc:  # invalid_image, image_too_many_pixels, mask_size_mismatch
        raise UploadRejected(f"{what}: {exc.message}", code=exc.code) from None
    except PayloadTooLarge:
        raise UploadRejected(
            f"{what} is over the inbox limit of {limits.max_image_bytes} bytes",
            code="image_too_large",
        ) from None


def _ref(image: StoredImage) -> str:
    return f"s3://{image.bucket}/{image.key}"


def _rejected(
    inbox: InboxDependencies,
    task_id: str,
    source: SourceObject,
    prompt: str,
    error: GatewayError,
    *,
    request: ImageRequest | None = None,
    request_id: str | None = None,
    owner: str | None = None,
) -> UploadResult:
    """End the upload's task as failed with ``error`` (creating the task if needed)."""
    deps = inbox.core
    task_error = TaskError(code=error.code, message=error.message[:1000])
    logger.info(
        "upload rejected", extra={"key": source.key, "task_id": task_id, "code": error.code}
    )
    if deps.tasks.get(task_id) is not None:  # submit created it, then refused
        fail_task(deps, task_id, task_error, by="submit")
        return UploadResult(UploadOutcome.REJECTED, task_id)
    reject_task(
        deps,
        request or ImageRequest(prompt=prompt.strip()[:MAX_PROMPT_CHARS] or _NO_PROMPT),
        task_error,
        client_id=owner or inbox.settings.client_id,
        task_id=task_id,
        operation=Operation.EDIT,
        source=source,
        request_id=request_id,
    )
    return UploadResult(UploadOutcome.REJECTED, task_id)
