"""SqsFinalizeQueue: verified callbacks on the FIFO finalize queue (``ports.FinalizeQueue``).

The message group is the task id, so SQS hands out one message of a task at a time (the next
one only after the first is deleted or gone to the dead-letter queue): two finalisers never
work on one task together. The deduplication id is the task id and the callback's digest, so
the copies a provider sends of one callback within SQS's five-minute window are one message.
On the webhook's cold path: imports nothing but botocore's exceptions.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from image_gateway.ports import QueueUnavailable


def deduplication_id(task_id: str, callback_digest: str) -> str:
    """``{task_id}:{digest}``, within SQS's 128 characters."""
    return f"{task_id}:{callback_digest}"[:128]


class SqsFinalizeQueue:
    """One ``{"task_id", "provider"}`` message per distinct callback of a task."""

    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._url = queue_url

    def send(self, task_id: str, provider: str, callback_digest: str) -> None:
        """Queue the task; QueueUnavailable when SQS refused it."""
        try:
            self._sqs.send_message(
                QueueUrl=self._url,
                MessageBody=json.dumps({"task_id": task_id, "provider": provider}),
                MessageGroupId=task_id,
                MessageDeduplicationId=deduplication_id(task_id, callback_digest),
            )
        except (BotoCoreError, ClientError) as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc
