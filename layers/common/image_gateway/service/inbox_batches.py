"""A JSONL manifest dropped into the inbox under ``batches/`` becomes a batch.

The manifest (``batches/<path>.jsonl``, one ``{"custom_id", "body"}`` line per image, as
``input_file`` of ``POST /v1/batches``) belongs to the client the inbox rules name for its key
(the rule with the longest matching prefix, its ``client``), else to the inbox's own client.
It is copied into the images bucket (``inputs/<client>/batches/<batch_id>.jsonl``) and read by
the batch function like an uploaded file. When the batch ends, its results file is written to
``batches/<client>/inbox/<path>.<batch_id>.results.jsonl`` in the images bucket (the batch's
``results_url``) and, for the drop-folder user, next to the manifest in the inbox:
``batches/<path>.results.jsonl`` (the same lines) and ``batches/<path>.errors.jsonl`` (the lines
that did not succeed: ``custom_id``, ``task_id``, ``status``, ``error``). Those two are not
manifests (``inbox.naming.is_manifest``): their own notifications are skipped. A manifest that
cannot be a batch (too large, not JSONL...) ends as a ``failed`` batch with its ``Image Batch
Completed`` event and an errors file saying why, never as a retried notification. The same bytes
dropped again (or a notification delivered twice) find the batch they made.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from image_gateway.batches.ports import Batch, InboxManifest, new_batch_id
from image_gateway.errors import GatewayError, PayloadTooLarge
from image_gateway.inbox.naming import results_key_of
from image_gateway.inbox.objects import ObjectCreated
from image_gateway.inbox.ports import InboxDependencies
from image_gateway.models.task import TaskError, utc_now
from image_gateway.models.uploads import MAX_BATCH_FILE_BYTES
from image_gateway.service.batch_input import fail_batch
from image_gateway.service.batches import new_file_batch

logger = Logger(child=True)


def batch_from_manifest(
    inbox: InboxDependencies, created: ObjectCreated, identity: str
) -> tuple[str, bool]:
    """The batch the manifest makes, or made before (True). Raises ``SourceSuperseded`` when a
    newer upload replaced it before it was read (its own notification makes the batch)."""
    deps, inbox_client = inbox.core, inbox.settings.client_id
    batch_id = new_batch_id()
    earlier = deps.idempotency.claim(f"{inbox_client}#batches", identity, identity, batch_id)
    if earlier is not None and deps.batches.store.get(earlier) is not None:
        return earlier, True
    batch_id = earlier or batch_id  # an earlier delivery claimed it and stopped: finish it
    owner = inbox_client
    problem: GatewayError | None = None
    try:
        rule = inbox.rules.current().rule_for(created.key)
        owner = (rule.client if rule else None) or inbox_client
    except GatewayError as refused:  # a broken rules document: the batch says so
        problem = refused
    obj = inbox.objects.head(created)  # SourceSuperseded: the caller skips it
    log = {"key": created.key, "batch_id": batch_id, "client_id": owner}
    copy = f"inputs/{owner}/batches/{batch_id}.jsonl"
    results_to = results_key_of(created.key, client_id=owner, batch_id=batch_id)
    manifest = InboxManifest(bucket=created.bucket, key=created.key)
    if problem is None and obj.size > MAX_BATCH_FILE_BYTES:
        problem = PayloadTooLarge(
            f"the manifest is {obj.size} bytes; a batch file may have {MAX_BATCH_FILE_BYTES}: "
            "split it",
            code="input_file_too_large",
        )
    if problem is not None:
        batch = Batch(
            batch_id=batch_id,
            client_id=owner,
            created_at=utc_now(),
            metadata={"inbox_key": created.key[:256]},
            request_id=created.event_id,
            results_to=results_to,
            inbox_manifest=manifest,
        )
        deps.batches.store.create(batch, [])
        fail_batch(deps, batch, TaskError(code=problem.code, message=problem.message))
        logger.warning("inbox manifest refused", extra={**log, "code": problem.code})
        return batch_id, False
    body = b"".join(inbox.objects.stream(obj))
    deps.images.put_file(copy, body, content_type="application/x-ndjson")
    new_file_batch(
        deps,
        client_id=owner,
        batch_id=batch_id,
        ref=f"s3://{deps.images.bucket}/{copy}",
        metadata={"inbox_key": created.key[:256]},
        request_id=created.event_id,
        results_to=results_to,
        inbox_manifest=manifest,
    )
    logger.info("inbox manifest became a batch", extra=log)
    return batch_id, False
