"""SqsDispatchQueue beyond the contract (tests/contract/test_dispatch_queue.py)."""

from __future__ import annotations

import pytest
from image_gateway.adapters.sqs_dispatch import SqsDispatchQueue
from image_gateway.ports import QueueUnavailable


class NoCallsExpected:
    """An SQS client that must not be used."""

    def send_message(self, **_: object) -> None:
        raise AssertionError("SQS was called although no queue is configured")


def test_given_no_queue_url_when_sending_then_queue_unavailable_without_calling_sqs() -> None:
    queue = SqsDispatchQueue(NoCallsExpected(), None)

    with pytest.raises(QueueUnavailable, match="DISPATCH_QUEUE_URL"):
        queue.send("task-1", "mountsea-compat")
