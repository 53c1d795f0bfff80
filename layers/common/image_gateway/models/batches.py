"""``/v1/batches``: the request body, the query and the answers (mapped from ``batches.ports``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from image_gateway.batches.ports import MAX_BATCH_LINES, Batch, BatchStatus
from image_gateway.models.request import CALLBACK_URL_PATTERN, NOT_SPACE

MAX_INLINE_LINES = 1_000
"""The most ``requests`` one POST may carry inline (the API's 6 MB body stays the bound)."""
INPUT_FILE_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/inputs/[A-Za-z0-9._:/-]{1,900}$"
"""``input_file``: an upload's ``ref`` (``POST /v1/uploads`` with ``application/x-ndjson``)."""


class BatchLineRequest(BaseModel):
    """One line: the caller's id for it and a ``POST /v1/images`` body."""

    model_config = ConfigDict(extra="forbid")

    custom_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="unique in the batch",
    )
    body: dict[str, Any] = Field(description="a POST /v1/images body, validated like one")


class BatchCreateRequest(BaseModel):
    """``POST /v1/batches``: requests inline or an uploaded JSONL ``input_file`` (exactly one),
    with optional metadata and callback_url."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["requests"], "not": {"required": ["input_file"]}},
                {"required": ["input_file"], "not": {"required": ["requests"]}},
            ]
        },
    )

    requests: list[BatchLineRequest] = Field(
        default_factory=list,
        max_length=MAX_INLINE_LINES,
        description=f"1 to {MAX_INLINE_LINES:,} lines inline (or input_file)",
        json_schema_extra={"minItems": 1},
    )
    input_file: str | SkipJsonSchema[None] = Field(
        default=None,
        max_length=1024,
        description=f"the ref of a JSONL file of up to {MAX_BATCH_LINES:,} lines uploaded "
        "through POST /v1/uploads (content_type application/x-ndjson), one {custom_id, body} "
        "object a line; read after the answer (the batch starts validating): a file that "
        "cannot be read as one (missing, another client's, too large, too many lines, a line "
        "that is not such an object, a repeated custom_id) makes the batch failed with its "
        "error",
        json_schema_extra={"pattern": INPUT_FILE_PATTERN},
    )
    metadata: dict[str, str] = Field(
        default_factory=dict,
        max_length=16,
        description="up to 16 keys of 1-64 characters, values of at most 256",
        json_schema_extra={
            "propertyNames": {"minLength": 1, "maxLength": 64, "pattern": NOT_SPACE},
            "additionalProperties": {"type": "string", "maxLength": 256},
        },
    )
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        description="https URL for the signed batch.completed webhook (SSRF-checked: 422 "
        "callback_url_refused for a private address or a host that does not exist)",
        json_schema_extra={"pattern": CALLBACK_URL_PATTERN},
    )

    @field_validator("requests")
    @classmethod
    def _unique_ids(cls, lines: list[BatchLineRequest]) -> list[BatchLineRequest]:
        if not lines:
            raise ValueError("requests must hold at least one line (or send input_file instead)")
        repeated = repeated_ids(line.custom_id for line in lines)
        if repeated:
            raise ValueError(f"custom_id must be unique in a batch; repeated: {repeated}")
        return lines

    @field_validator("input_file", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:  # before the length check, which a null would make a TypeError (500)
            raise ValueError("input_file must be a string: the ref of an upload, or left out")
        return value

    @field_validator("input_file")
    @classmethod
    def _a_ref(cls, value: str | None) -> str | None:
        if value is None or not re.match(INPUT_FILE_PATTERN, value):
            raise ValueError(
                "input_file must be the ref of an upload (s3://BUCKET/inputs/...): ask "
                "POST /v1/uploads for a slot of content_type application/x-ndjson"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> BatchCreateRequest:
        if ("requests" in self.model_fields_set) == (self.input_file is not None):
            raise ValueError("send either requests (inline) or input_file, not both or neither")
        return self

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not key.strip() or len(key) > 64 or len(item) > 256:  # a blank key is none
                raise ValueError("metadata keys must be 1-64 characters, values at most 256")
        return value

    @field_validator("callback_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not re.match(CALLBACK_URL_PATTERN, value):
            raise ValueError("callback_url must be an https:// URL")
        return value


def repeated_ids(custom_ids: Iterable[str]) -> str:
    """The custom_ids seen more than once (up to five, sorted), or ''."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for custom_id in custom_ids:
        (repeated if custom_id in seen else seen).add(custom_id)
    return ", ".join(sorted(repeated)[:5])


class BatchCountsView(BaseModel):
    """How many of the batch's lines are where."""

    total: int
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    expired: int
    invalid: int


class BatchErrorView(BaseModel):
    """Why a batch failed: a stable ``code`` and a message saying what to change."""

    code: str
    message: str


class BatchView(BaseModel):
    """``GET /v1/batches/{batch_id}``."""

    batch_id: str
    status: BatchStatus
    counts: BatchCountsView
    metadata: dict[str, str]
    estimated_cost_usd: float
    final_cost_usd: float
    created_at: datetime
    completed_at: datetime | None
    results_url: str | None = Field(description="presigned GET of results.jsonl once final")
    input_file: str | None = Field(
        default=None, description="the JSONL file its lines were read from, if not inline"
    )
    error: BatchErrorView | None = Field(
        default=None, description="why a failed batch failed (its input file was refused)"
    )

    @classmethod
    def from_batch(cls, batch: Batch, *, presign: Callable[[str], str]) -> BatchView:
        """The caller's view (the results URL presigned now)."""
        c = batch.counts
        return cls(
            batch_id=batch.batch_id,
            status=batch.status,
            counts=BatchCountsView(
                total=c.total,
                queued=c.queued,
                running=c.running,
                succeeded=c.succeeded,
                failed=c.failed,
                cancelled=c.cancelled,
                expired=c.expired,
                invalid=c.invalid,
            ),
            metadata=batch.metadata,
            estimated_cost_usd=round(batch.estimated_cost_usd, 6),
            final_cost_usd=round(batch.final_cost_usd, 6),
            created_at=batch.created_at,
            completed_at=batch.completed_at,
            results_url=presign(batch.results_key) if batch.results_key else None,
            input_file=batch.input_file.ref if batch.input_file else None,
            error=None
            if batch.error is None
            else BatchErrorView(code=batch.error.code, message=batch.error.message),
        )


class BatchList(BaseModel):
    """A page of the caller's batches, newest first."""

    batches: list[BatchView]
    next_cursor: str | None


class BatchListQuery(BaseModel):
    """``GET /v1/batches``'s query string."""

    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=2048)


class BatchResultOutput(BaseModel):
    """One image of a results line."""

    bucket: str
    key: str
    size: int
    sha256: str
    url: str


class BatchResultLine(BaseModel):
    """One line of results.jsonl."""

    custom_id: str
    task_id: str | None
    status: str
    outputs: list[BatchResultOutput]
    error: dict[str, Any] | None
