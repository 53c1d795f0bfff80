"""SQS batches with partial batch responses, for the functions behind a queue.

Each record is handed to a record handler; the ones that raised are reported back as
``{"batchItemFailures": [{"itemIdentifier": <messageId>}]}`` (the event sources have
``ReportBatchItemFailures``), so SQS delivers only those again. As in Powertools'
``BatchProcessor``, a batch whose every record failed raises :class:`BatchFailed` instead
(Lambda then retries the whole batch, and the invocation counts as an error). On a FIFO queue
with ``skip_group_on_error``, a record whose message group already failed in this batch is not
handled but reported failed too, so a task's messages stay in order (Powertools'
``SqsFifoPartialProcessor(skip_group_on_error=True)``).

Why not Powertools' batch utility: importing ``aws_lambda_powertools.utilities.batch`` costs
about 45 ms of CPU on the built layer with Python 3.13 (it loads asyncio and every event data
class), a third of a bare ``import boto3``, in the cold start of each of the four functions
behind a queue; this module is what those functions use of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(child=True)


class BatchFailed(Exception):
    """Every record of the batch failed: the whole batch is retried."""


@dataclass(frozen=True)
class SqsRecord:
    """One SQS message as Lambda's event source hands it over."""

    message_id: str
    body: str
    event_source_arn: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> SqsRecord:
        """A record of the event's ``Records``."""
        return cls(
            message_id=str(raw["messageId"]),
            body=str(raw.get("body") or ""),
            event_source_arn=str(raw.get("eventSourceARN") or ""),
            attributes=dict(raw.get("attributes") or {}),
        )

    @property
    def json_body(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` when it is not)."""
        return json.loads(self.body)

    @property
    def message_group_id(self) -> str | None:
        """The FIFO message group (None on a standard queue)."""
        return self.attributes.get("MessageGroupId")

    @property
    def sent_timestamp(self) -> str | None:
        """When the message was sent, epoch milliseconds as SQS gives it."""
        return self.attributes.get("SentTimestamp")


def process_batch(
    event: Mapping[str, Any],
    handler: Callable[[SqsRecord], None],
    *,
    skip_group_on_error: bool = False,
) -> dict[str, list[dict[str, str]]]:
    """Hand each record to ``handler``; the partial batch response naming those that failed."""
    records = [SqsRecord.of(raw) for raw in event.get("Records") or []]
    failed: list[str] = []
    failed_groups: set[str] = set()
    for record in records:
        group = record.message_group_id if skip_group_on_error else None
        if group is not None and group in failed_groups:
            failed.append(record.message_id)  # after a failure of its group: kept in order
            continue
        try:
            handler(record)
        except Exception:
            logger.warning(  # SQS delivers it again
                "record failed", extra={"message_id": record.message_id}, exc_info=True
            )
            failed.append(record.message_id)
            if group is not None:
                failed_groups.add(group)
    if records and len(failed) == len(records):
        raise BatchFailed(f"all {len(records)} records of the batch failed")
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
