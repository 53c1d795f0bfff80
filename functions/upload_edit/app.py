"""S3 inbox uploads (EventBridge -> SQS): each "Object Created" event becomes one edit task.

Records that fail for a transient reason are reported back (ReportBatchItemFailures) and
delivered again, up to the queue's maxReceiveCount, then parked in the dead-letter queue.
Everything about the upload itself (no rule, not an image, too large...) ends as a failed task.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_gateway import log_context
from image_gateway.adapters.aws import lazy_inbox_dependencies
from image_gateway.inbox.objects import ObjectCreated
from image_gateway.metrics import expect_invocations_without_metrics
from image_gateway.service.upload_edit import UploadMustWait, edit_upload
from image_gateway.sqs_batch import SqsRecord, process_batch

logger = Logger()
log_context.follow(logger)  # every line names its task and the request behind it
metrics = Metrics()
expect_invocations_without_metrics(metrics)  # most invocations count nothing
DEPS = lazy_inbox_dependencies()


def record_handler(record: SqsRecord) -> None:
    """One queued EventBridge event; malformed ones are logged and dropped (a retry cannot help)."""
    try:
        created = ObjectCreated.from_eventbridge(record.json_body)
    except (ValueError, TypeError) as exc:
        logger.warning("not an S3 Object Created event", extra={"why": str(exc)})
        metrics.add_metric(name="InboxMalformed", unit=MetricUnit.Count, value=1)
        return
    try:
        result = edit_upload(DEPS.get(), created)
    except UploadMustWait:  # the record fails: SQS delivers it again after its visibility
        metrics.add_metric(name="InboxWaits", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name=f"Inbox{result.outcome.value.title()}", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """SQS batch entry point (partial batch responses)."""
    return process_batch(event, record_handler)
