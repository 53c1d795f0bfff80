"""Accept a provider callback: check its token, hand the task to the finalize queue, answer.

A callback is only a hint, and the provider is waiting for the answer (apimart calls again when
it has none within about 10 s), so nothing slow happens here: no task read, no provider call,
no download. The finalize function does those (:func:`image_gateway.service.refresh.
refresh_task`), one message at a time per task. The body is never parsed; its digest makes the
copies of one callback a single message, while a different callback of the same task (another
status) is queued behind the first.
"""

from __future__ import annotations

import hashlib
from enum import Enum

from image_gateway.ports import CallbackDependencies, QueueUnavailable

DIGEST_LENGTH = 32
"""Hex characters of the body's SHA-256 kept in the deduplication id (128 bits)."""


class CallbackOutcome(Enum):
    """What the webhook answers: 202, 401 or 503."""

    QUEUED = "queued"
    """The token is right and the task is on the finalize queue."""
    REFUSED = "refused"
    """No or a wrong token: nothing was queued."""
    UNAVAILABLE = "unavailable"
    """The token is right but the queue did not take it: the provider should call again."""


def callback_digest(body: str | bytes | None) -> str:
    """A short digest of the callback's body, as it arrived (copies give the same one)."""
    raw = body.encode() if isinstance(body, str) else (body or b"")
    return hashlib.sha256(raw).hexdigest()[:DIGEST_LENGTH]


def accept_callback(
    deps: CallbackDependencies,
    provider: str,
    task_id: str,
    token: str,
    body: str | bytes | None = None,
) -> CallbackOutcome:
    """Verify the per-task token (constant time), then queue the task for finalisation."""
    if not (provider and task_id and token) or not deps.signer.verify(provider, task_id, token):
        return CallbackOutcome.REFUSED
    try:
        deps.finalize_queue.send(task_id, provider, callback_digest(body))
    except QueueUnavailable:
        return CallbackOutcome.UNAVAILABLE
    return CallbackOutcome.QUEUED
