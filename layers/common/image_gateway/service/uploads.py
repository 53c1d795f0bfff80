"""Upload slots: presigned PUT URLs for input images too large to send inline, and for batch
files (JSONL, ``input_file`` of ``POST /v1/batches``).

Each slot is an object key under ``inputs/{client}/uploads/{upload id}/``: the prefix submit
accepts as the caller's own (:mod:`image_gateway.service.staging`) and the one the bucket's
lifecycle rule expires. The URL is signed for the declared type and size, so S3 refuses any
other; nothing is written here, and nothing is stored until the caller PUTs.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from image_gateway.errors import PayloadTooLarge
from image_gateway.models.task import utc_now
from image_gateway.models.uploads import (
    BATCH_FILE_TYPE,
    EXTENSIONS,
    MAX_BATCH_FILE_BYTES,
    UploadPlan,
    UploadRequest,
    UploadSlot,
)
from image_gateway.ports import Dependencies


def plan_uploads(deps: Dependencies, request: UploadRequest, *, client_id: str) -> UploadPlan:
    """One upload slot per file; 413 ``image_too_large`` for a file over the image limit."""
    for index, file in enumerate(request.files):
        if file.content_type == BATCH_FILE_TYPE and file.bytes > MAX_BATCH_FILE_BYTES:
            raise PayloadTooLarge(
                f"files[{index}] is {file.bytes} bytes; a batch file may have "
                f"{MAX_BATCH_FILE_BYTES}",
                code="input_file_too_large",
            )
        limit = deps.settings.max_image_bytes
        if file.content_type != BATCH_FILE_TYPE and file.bytes > limit:
            raise PayloadTooLarge(
                f"files[{index}] is {file.bytes} bytes; an input image may have {limit}",
                code="image_too_large",
            )
    upload_id = "upl_" + uuid.uuid4().hex
    ttl = deps.settings.upload_url_ttl_seconds
    expires_at = utc_now() + timedelta(seconds=ttl)
    slots = []
    for index, file in enumerate(request.files):
        key = f"inputs/{client_id}/uploads/{upload_id}/{index}.{EXTENSIONS[file.content_type]}"
        url = deps.images.presigned_put_url(
            key, content_type=file.content_type, content_length=file.bytes, expires_in=ttl
        )
        slots.append(
            UploadSlot(
                ref=f"s3://{deps.images.bucket}/{key}",
                url=url,
                headers={"Content-Type": file.content_type},
                expires_at=expires_at,
            )
        )
    return UploadPlan(upload_id=upload_id, uploads=slots)
