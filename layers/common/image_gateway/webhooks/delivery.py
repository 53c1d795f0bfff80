"""Signed webhooks to callers: queue a delivery when a status change is announced, then make
each attempt (off the request path, in the delivery function).

A delivery is one status change of one task to its ``callback_url``; its ``webhook-id`` is
``msg_<task>_<status>``, the same on every attempt, so receivers deduplicate on it. Only the
writer that won a status change queues it (``lifecycle.change_status``). Each attempt is one
queue message: anything but 2xx is tried again after ``timing.webhook_wait`` (waits longer than
SQS's 15 minute delay are chained: a message received before its ``not_before`` is queued again
for the rest), ``410 Gone`` stops at once, and after the last attempt the delivery goes to the
dead-letter queue. The body is built at each attempt from the task as it then stands, so its
presigned download URLs are always fresh.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from image_gateway.errors import (
    DownloadFailed,
    NotFound,
    Unprocessable,
    UnsafeUrl,
)
from image_gateway.log_context import working_on
from image_gateway.models.task import DeliveryRecord, Task, TaskStatus, utc_now
from image_gateway.ports import Dependencies, EventPublishError, QueueUnavailable
from image_gateway.service.progress import expected_seconds
from image_gateway.webhooks.models import (
    DEFAULT_CALLBACK_EVENTS,
    DeliveryMessage,
    WebhookFailedDetail,
    callback_event_of,
    webhook_id,
)
from image_gateway.webhooks.ports import WebhookSecretSet
from image_gateway.webhooks.signing import signed_headers

if TYPE_CHECKING:  # the views are imported where a webhook is rendered (render_body)
    from image_gateway.models.views import WebhookPayload, WebhookSecretView

logger = Logger(child=True)

MAX_SQS_DELAY_SECONDS = 900
MAX_BODY_BYTES = 20_000
WEBHOOK_PROMPT_CHARS = 2_000
"""A prompt longer than the body allows is cut to this in a webhook (GET /v1/tasks has it all)."""
MAX_RECORDS = 50
"""Delivery records kept on a task (the newest)."""


def check_callback_url(deps: Dependencies, url: str | None) -> None:
    """Refuse at submit a ``callback_url`` that could never be delivered to (422: a well-formed
    URL, refused once its host is looked at)."""
    if url is None:
        return
    try:
        deps.webhooks.transport.check_url(url)
    except UnsafeUrl as refused:
        raise Unprocessable(
            f"callback_url refused: {refused.message}", code="callback_url_refused"
        ) from None
    except DownloadFailed as failed:
        if not failed.retryable:  # a name that does not exist; a resolver hiccup is let through
            raise Unprocessable(
                f"callback_url refused: {failed.message}", code="callback_url_refused"
            ) from None


def current_secret(deps: Dependencies, client_id: str) -> WebhookSecretView:
    """The caller's webhook secret (created on first use)."""
    return _secret_view(deps.webhooks.secrets.get(client_id))


def rotate_secret(deps: Dependencies, client_id: str) -> WebhookSecretView:
    """A new secret; deliveries are signed with both for ``webhook_secret_overlap_seconds``."""
    until = utc_now() + timedelta(seconds=deps.timing.webhook_secret_overlap_seconds)
    rotated = deps.webhooks.secrets.rotate(client_id, previous_until=until)
    logger.info("webhook secret rotated", extra={"client_id": client_id})  # never the secret
    return _secret_view(rotated)


def _secret_view(secrets: WebhookSecretSet) -> WebhookSecretView:
    from image_gateway.models.views import WebhookSecretView

    until = secrets.previous_until
    return WebhookSecretView(
        secret=secrets.current,
        previous_secret_valid_until=until if until and until > utc_now() else None,
    )


def event_type(status: TaskStatus) -> str:
    """The Standard Webhooks ``type`` of a status change, e.g. ``image_task.succeeded``."""
    return f"image_task.{status.value}"


def announce(deps: Dependencies, task: Task) -> None:
    """Queue the delivery of the task's new status, when its request asked for it."""
    url = task.request.callback_url
    wanted = task.request.callback_events or list(DEFAULT_CALLBACK_EVENTS)
    if url is None or callback_event_of(task.status) not in wanted:
        return
    message = DeliveryMessage(
        webhook_id=webhook_id(task.task_id, task.status),
        task_id=task.task_id,
        status=task.status,
        attempt=1,
    )
    try:
        deps.webhooks.deliveries.send(message)
    except QueueUnavailable:
        logger.exception("webhook not queued", extra={"task_id": task.task_id})


def redeliver(deps: Dependencies, task: Task) -> DeliveryMessage:
    """Send the task's latest delivery again: one more attempt of the same webhook-id."""
    if not task.deliveries:
        raise NotFound("this task has no webhook delivery to send again", code="no_delivery")
    latest = task.deliveries[-1]
    status = TaskStatus(latest.event.removeprefix("image_task."))
    attempts = [r.attempt for r in task.deliveries if r.webhook_id == latest.webhook_id]
    message = DeliveryMessage(
        webhook_id=latest.webhook_id,
        task_id=task.task_id,
        status=status,
        attempt=max(attempts) + 1,
        retries=False,
    )
    deps.webhooks.deliveries.send(message)
    return message


def render_body(deps: Dependencies, task: Task, status: TaskStatus, at: datetime) -> bytes:
    """The JSON body (``WebhookPayload``: type, timestamp, the task view), under 20 kB."""
    # Imported here: every finaliser imports this module (announce), and the view models cost
    # about 20 ms of a cold start on the built layer that only a delivery needs.
    from image_gateway.models.views import TaskView, WebhookPayload

    settings = deps.settings
    view = TaskView.from_task(
        task,
        presign=lambda key: deps.images.presigned_get_url(key, settings.output_url_ttl_seconds),
        base_path=settings.public_base_url or task.callback_base_url or "",
        expected_seconds=expected_seconds(settings, task),
        images_bucket=deps.images.bucket,
    )
    view.deliveries = []  # the receiver's own log is not its business; GET /v1/tasks has it
    payload = WebhookPayload(type=event_type(status), timestamp=at, data=view)
    body = _dump(payload)
    if len(body) > MAX_BODY_BYTES:  # many fallbacks: the full history stays on GET /v1/tasks
        view.attempts, view.history = view.attempts[-3:], view.history[-3:]
        body = _dump(payload)
    if len(body) > MAX_BODY_BYTES:  # a long prompt: its start says which task it is
        view.prompt = view.prompt[:WEBHOOK_PROMPT_CHARS] + "…"
        body = _dump(payload)
    return body


def _dump(payload: WebhookPayload) -> bytes:
    return payload.model_dump_json(exclude={"data": {"deliveries"}}).encode()


def waits_on(deps: Dependencies, message: DeliveryMessage, started: datetime) -> bool:
    """Pass a chained wait on (queued again for the rest of it); True when it did."""
    if message.not_before is None or started >= message.not_before:
        return False
    remaining = (message.not_before - started).total_seconds()
    deps.webhooks.deliveries.send(
        message, delay_seconds=min(MAX_SQS_DELAY_SECONDS, max(1, math.ceil(remaining)))
    )
    return True


def deliver(
    deps: Dependencies,
    message: DeliveryMessage,
    *,
    now: Callable[[], datetime] = utc_now,
    draw: Callable[[], float] = random.random,
) -> DeliveryRecord | None:
    """Make one attempt (or pass a chained wait on); the record of the attempt, if one was made."""
    started = now()
    if waits_on(deps, message, started):
        return None
    task = deps.tasks.get(message.task_id)
    if task is None or task.request.callback_url is None:
        logger.warning("webhook for a missing task dropped", extra={"task_id": message.task_id})
        return None
    working_on(task.task_id, task.request_id)
    status_at = _status_time(task, message.status) or started
    body = render_body(deps, task, message.status, status_at)
    record = post_signed(
        deps, message, task.client_id, task.request.callback_url, body, started, draw
    )
    http_status = record.http_status
    _record(deps, task, record)
    deps.metrics.put("WebhookAttempts", 1, "Count", {"Outcome": record.outcome})
    if record.outcome == "delivered":  # the status change -> the receiver's 2xx
        seconds = max(0.0, (now() - status_at).total_seconds())
        deps.metrics.put("WebhookDeliverySeconds", seconds, "Seconds", {})
    logger.info(
        "webhook attempt",
        extra={
            "task_id": task.task_id,
            "webhook_id": message.webhook_id,
            "attempt": message.attempt,
            "http_status": http_status,
            "outcome": record.outcome,
        },
    )
    return record


def post_signed(
    deps: Dependencies,
    message: DeliveryMessage,
    client_id: str,
    url: str,
    body: bytes,
    started: datetime,
    draw: Callable[[], float],
) -> DeliveryRecord:
    """Sign and POST ``body``; the attempt's record (the next attempt queued if it failed)."""
    secrets = deps.webhooks.secrets.get(client_id).signing_secrets(started)
    headers = signed_headers(secrets, message.webhook_id, int(started.timestamp()), body)
    http_status: int | None = None
    error: str | None = None
    try:
        http_status = deps.webhooks.transport.post(
            url, body, headers, timeout=deps.timing.webhook_timeout_seconds
        )
    except UnsafeUrl as refused:
        error = f"refused: {refused.message}"
    except DownloadFailed as failed:
        error = failed.message
    return _outcome(deps, message, started, http_status, error, draw)


def _outcome(
    deps: Dependencies,
    message: DeliveryMessage,
    at: datetime,
    http_status: int | None,
    error: str | None,
    draw: Callable[[], float],
) -> DeliveryRecord:
    """What the attempt means, and the next attempt queued (or the dead-letter queue)."""

    def record(outcome: str, next_at: datetime | None = None) -> DeliveryRecord:
        return DeliveryRecord.model_validate(
            {
                "webhook_id": message.webhook_id,
                "event": "batch.completed" if message.batch_id else event_type(message.status),
                "attempt": message.attempt,
                "at": at,
                "http_status": http_status,
                "error": error,
                "next_attempt_at": next_at,
                "outcome": outcome,
            }
        )

    if http_status is not None and 200 <= http_status < 300:
        return record("delivered")
    if http_status == 410:
        return record("gone")
    if error is None:
        error = f"HTTP {http_status}"
    if error.startswith("refused:"):
        return record("refused")
    wait = deps.timing.webhook_wait(message.attempt, draw()) if message.retries else None
    if wait is None:
        if message.retries:
            _give_up(deps, message, error)
        return record("failed")
    seconds = deps.settings.scaled(wait)
    next_at = at + timedelta(seconds=seconds)
    following = message.model_copy(update={"attempt": message.attempt + 1, "not_before": next_at})
    deps.webhooks.deliveries.send(
        following, delay_seconds=min(MAX_SQS_DELAY_SECONDS, math.ceil(seconds))
    )
    return record("retrying", next_at)


def _give_up(deps: Dependencies, message: DeliveryMessage, error: str) -> None:
    """The last attempt failed: to the dead-letter queue, and an event for subscribers (a
    task's; a batch's is in the dead-letter queue and the logs)."""
    try:
        deps.webhooks.deliveries.dead_letter(message)
    except QueueUnavailable:
        logger.exception("webhook not dead-lettered", extra={"task_id": message.task_id})
    if message.batch_id is not None:
        logger.warning("batch webhook gave up", extra={"batch_id": message.batch_id})
        return
    import httpx  # the delivery function's path only: the API imports this module, not httpx

    task = deps.tasks.require(message.task_id)
    url = httpx.URL(task.request.callback_url or "")
    detail = WebhookFailedDetail(
        event_id=f"{message.webhook_id}:failed",
        task_id=task.task_id,
        client_id=task.client_id,
        webhook_id=message.webhook_id,
        event=event_type(message.status),
        attempts=message.attempt,
        last_error=error,
        callback_url=f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}{url.path}",
    )
    try:
        deps.webhooks.failures.publish(detail)
    except EventPublishError:
        logger.exception("webhook failure not announced", extra={"task_id": message.task_id})


def _status_time(task: Task, status: TaskStatus) -> datetime | None:
    for change in reversed(task.history):
        if change.status is status:
            return change.at
    return None


def _record(deps: Dependencies, known: Task, record: DeliveryRecord) -> None:
    """Add the attempt's record to the task, written from the task as the attempt read it (a
    task changed meanwhile, by a status change, is read again by the conditional write)."""

    def add(task: Task) -> None:
        task.deliveries = [*task.deliveries, record][-MAX_RECORDS:]

    deps.tasks.update(known.task_id, add, known=known)
