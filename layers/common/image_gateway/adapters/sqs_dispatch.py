"""SqsDispatchQueue: hand-offs to providers on the dispatch queue (``ports.DispatchQueue``)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from image_gateway.ports import QueueUnavailable


class SqsDispatchQueue:
    """One ``{"task_id", "provider"}`` message per attempt at a provider (``"hedge": true``
    for a hedge)."""

    def __init__(self, sqs_client: Any, queue_url: str | None) -> None:
        self._sqs = sqs_client
        self._url = queue_url

    def send(
        self, task_id: str, provider: str, *, delay_seconds: int = 0, hedge: bool = False
    ) -> None:
        """Queue the attempt (SQS delays up to 15 minutes); QueueUnavailable when refused.
        A hedge's message says so (``"hedge": true``)."""
        if not self._url:
            raise QueueUnavailable("DISPATCH_QUEUE_URL is not configured for this function")
        body: dict[str, object] = {"task_id": task_id, "provider": provider}
        if hedge:
            body["hedge"] = True
        try:
            self._sqs.send_message(
                QueueUrl=self._url,
                MessageBody=json.dumps(body),
                DelaySeconds=max(0, min(900, delay_seconds)),
            )
        except (BotoCoreError, ClientError) as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc
