"""SqsBatchQueue: the batch function's work on its SQS queue (``batches.ports.BatchQueue``)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from image_gateway.batches.ports import IngestProgress
from image_gateway.ports import QueueUnavailable


class SqsBatchQueue:
    """One message per piece of work: ``{"kind": "create" | "finish" | "cancel" | "ingest",
    ...}``."""

    def __init__(self, sqs_client: Any, queue_url: str | None) -> None:
        self._sqs = sqs_client
        self._url = queue_url

    def create_lines(self, batch_id: str, start: int, *, delay_seconds: int = 0) -> None:
        """Queue a chunk of lines to make into tasks."""
        self._send({"kind": "create", "batch_id": batch_id, "start": start}, delay_seconds)

    def finish(self, batch_id: str) -> None:
        """Queue the results file of a batch whose tasks have all ended."""
        self._send({"kind": "finish", "batch_id": batch_id}, 0)

    def cancel(self, batch_id: str) -> None:
        """Queue the cancellation of a batch's queued tasks."""
        self._send({"kind": "cancel", "batch_id": batch_id}, 0)

    def ingest(self, batch_id: str, progress: IngestProgress) -> None:
        """Queue the reading of a segment of the batch's input file."""
        self._send({"kind": "ingest", "batch_id": batch_id, **progress.model_dump()}, 0)

    def _send(self, body: dict[str, Any], delay_seconds: int) -> None:
        if not self._url:
            raise QueueUnavailable("BATCH_QUEUE_URL is not configured for this function")
        try:
            self._sqs.send_message(
                QueueUrl=self._url,
                MessageBody=json.dumps(body),
                DelaySeconds=max(0, min(900, delay_seconds)),
            )
        except (BotoCoreError, ClientError) as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc
