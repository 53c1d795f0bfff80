"""``Image Batch Completed``: a batch's one announcement on the bus (schema version 1,
published as events/schema/image-batch-event.v1.json), its signed ``batch.completed``
webhook's body, and the ports batches use (their store, queue and bus)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from image_gateway.batches.ports import Batch, BatchQueue, BatchStatus, BatchStore
from image_gateway.models.batches import BatchCountsView, BatchErrorView, BatchView

BATCH_DETAIL_TYPE = "Image Batch Completed"
BATCH_WEBHOOK_TYPE = "batch.completed"


class BatchResultsFile(BaseModel):
    """Where the batch's results.jsonl is."""

    bucket: str
    key: str


class BatchEventDetail(BaseModel):
    """``detail`` of ``Image Batch Completed`` (cancelled, expired and failed batches too)."""

    model_config = ConfigDict(frozen=True)

    version: Literal["1"] = "1"
    event_id: str = Field(description="batch_id:completed; subscribers deduplicate on it")
    batch_id: str
    client_id: str
    status: BatchStatus = Field(description="completed, cancelled, expired or failed")
    counts: BatchCountsView
    metadata: dict[str, str]
    estimated_cost_usd: float
    final_cost_usd: float
    created_at: datetime
    completed_at: datetime
    results: BatchResultsFile | None = Field(
        description="its results file (none for a failed batch: its input file was refused)"
    )
    error: BatchErrorView | None = Field(
        default=None, description="why a failed batch failed (code, message)"
    )

    @classmethod
    def of(
        cls,
        batch: Batch,
        status: BatchStatus,
        completed_at: datetime,
        results: BatchResultsFile | None,
    ) -> BatchEventDetail:
        """The event of a batch that has just ended in ``status``."""
        view = BatchView.from_batch(batch, presign=lambda key: key)
        return cls(
            event_id=f"{batch.batch_id}:completed",
            batch_id=batch.batch_id,
            client_id=batch.client_id,
            status=status,
            counts=view.counts,
            metadata=batch.metadata,
            estimated_cost_usd=view.estimated_cost_usd,
            final_cost_usd=view.final_cost_usd,
            created_at=batch.created_at,
            completed_at=completed_at,
            results=results,
            error=view.error,
        )


class BatchWebhookPayload(BaseModel):
    """The body of a ``batch.completed`` webhook: the batch as ``GET /v1/batches/{id}``."""

    type: Literal["batch.completed"] = "batch.completed"
    timestamp: datetime
    data: BatchView


def batch_event_schema() -> dict[str, object]:
    """The JSON Schema of ``detail`` (events/schema/image-batch-event.v1.json)."""
    schema = BatchEventDetail.model_json_schema()
    schema["$id"] = "https://github.com/image-task-gateway/events/image-batch-event.v1.json"
    schema["title"] = "Image Batch Completed event detail (version 1)"
    return schema


class BatchEvents(Protocol):
    """The bus, for ``Image Batch Completed``."""

    def publish(self, detail: BatchEventDetail) -> None:
        """Emit the event; ``ports.EventPublishError`` when the bus refuses it."""


class ManifestFiles(Protocol):
    """The inbox, for the results and errors files of a manifest's batch (written next to
    the manifest, under ``batches/``)."""

    def put(self, bucket: str, key: str, body: bytes) -> None:
        """Store ``body`` (JSONL) at ``key`` of ``bucket``, replacing what was there."""


class BatchPorts(Protocol):
    """What batches use: their store, the batch function's queue, the bus and the inbox's
    manifest files."""

    @property
    def events(self) -> BatchEvents:
        """``Image Batch Completed`` on the bus."""

    @property
    def store(self) -> BatchStore:
        """Batches, their lines and counters."""

    @property
    def queue(self) -> BatchQueue:
        """Work of the batch function."""

    @property
    def files(self) -> ManifestFiles:
        """Files written next to an inbox manifest."""
