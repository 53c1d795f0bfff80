"""``/v1/batches``: the request body, the query and the answers (mapped from ``batches.ports``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from image_gateway.batches.ports import Batch, BatchStatus
from image_gateway.models.request import CALLBACK_URL_PATTERN, NOT_SPACE

MAX_INLINE_LINES = 1_000
"""The most ``requests`` one POST may carry inline (the API's 6 MB body stays the bound)."""


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
    """``POST /v1/batches``: requests inline, with optional metadata and callback_url."""

    model_config = ConfigDict(extra="forbid")

    requests: list[BatchLineRequest] = Field(min_length=1, max_length=MAX_INLINE_LINES)
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
        seen: set[str] = set()
        repeated: set[str] = set()
        for line in lines:
            (repeated if line.custom_id in seen else seen).add(line.custom_id)
        if repeated:
            shown = ", ".join(sorted(repeated)[:5])
            raise ValueError(f"custom_id must be unique in a batch; repeated: {shown}")
        return lines

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
