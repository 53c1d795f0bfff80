"""Presigned uploads of input images: ``POST /v1/uploads`` asks, the caller PUTs, a request refers.

A batch's JSONL file (``application/x-ndjson``) is uploaded the same way and named in
``input_file`` of ``POST /v1/batches``.

A request body is small (API Gateway takes 10 MB, a Lambda event 6 MB), so a caller with large
input images asks for one upload slot per file, PUTs each file's bytes to its slot's URL, and
names it in ``images`` or ``mask`` of ``POST /v1/images`` by the slot's ``ref``
(``s3://{bucket}/inputs/{client}/uploads/...``), which submit accepts as the caller's own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from image_gateway.images.inputs import DEFAULT_MAX_IMAGE_BYTES
from image_gateway.models.request import MAX_REFERENCE_IMAGES

UploadContentType = Literal["image/png", "image/jpeg", "image/webp", "application/x-ndjson"]
EXTENSIONS: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "application/x-ndjson": "jsonl",
}
BATCH_FILE_TYPE = "application/x-ndjson"
"""A JSONL file of batch lines (``input_file`` of ``POST /v1/batches``), not an image."""
MAX_BATCH_FILE_BYTES = 50 * 1024 * 1024
"""The largest batch input file (50,000 lines of about 1 KB)."""
MAX_UPLOAD_FILES = MAX_REFERENCE_IMAGES + 1
"""Sixteen reference images and a mask."""


class UploadFile(BaseModel):
    """One file the caller means to upload."""

    model_config = ConfigDict(extra="forbid")

    content_type: UploadContentType
    bytes: int = Field(
        gt=0,
        description="its exact size: the URL accepts this many bytes only (an image at most "
        "the stack's input image limit, 50 MiB by default: else 413 image_too_large; a batch "
        "file at most 50 MiB: else 413 input_file_too_large)",
        json_schema_extra={"maximum": DEFAULT_MAX_IMAGE_BYTES},
    )


class UploadRequest(BaseModel):
    """``POST /v1/uploads``: the files to make slots for, in order."""

    model_config = ConfigDict(extra="forbid")

    files: list[UploadFile] = Field(min_length=1, max_length=MAX_UPLOAD_FILES)


class UploadSlot(BaseModel):
    """Where one file goes (``PUT url`` with ``headers``) and how a request names it (``ref``)."""

    ref: str = Field(description="put this in images or mask of POST /v1/images")
    url: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str] = Field(description="send exactly these headers with the PUT")
    expires_at: datetime


class UploadPlan(BaseModel):
    """The answer of ``POST /v1/uploads``: one slot per file, in the order asked."""

    upload_id: str
    uploads: list[UploadSlot]
