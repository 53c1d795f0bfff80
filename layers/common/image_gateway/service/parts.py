"""A request for ``n`` > 1 images: a parent task and ``n`` part tasks, one provider call each.

Every provider makes one image per call (``n`` is 1 everywhere), so ``submit_task`` hands a
request for several to :func:`submit_parent`: the parent is recorded first (``queued``, its
inputs staged once, the caller's ``callback_url`` and Idempotency-Key on it), then each part is
submitted as an ordinary task of one image (``parent_id``, ``part_index``; no callback of its
own) through the same ``submit_task``, so each has its own routing, fallback, limits, dispatch,
poll loop, callback, finalisation and sweeper, in parallel. A part's output lands where the
parent's output of that index goes (``outputs/.../{parent}/{index}.{ext}``).

- **Limits.** Each part is a provider call and counts as one task everywhere: one request in
  the rate window, one running place (or a place in the queue), its own budget reservation.
  Before anything is written the client's counters are read once, and a request that could
  not get all ``n`` (the rate, the queue, the budget: ``n`` x the estimate) is refused with the
  usual 429. Only a race with another submit can still refuse a later part: then the parts
  made are cancelled (none has reached a provider yet, or it is discarded unpaid), the parent
  fails with the refusal's code, and the caller gets the 429.
- **Ending.** ``service.lifecycle.report_to_parent``: the parts' terminal changes are recorded
  on the parent exactly once; the last one ends it (one event, one webhook).
- **Recovery.** The sweeper looks at an open parent (:func:`check_parent`): it ends a parent
  whose parts were all recorded (a crash after the last record), and records a part that was
  never made (a crash mid-submit) as failed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger

from image_gateway.errors import TooManyRequests
from image_gateway.limits.ports import LimitKind, refusal, usd
from image_gateway.models.parts import AlreadyRecorded, part_id, part_ids, record_part
from image_gateway.models.request import ImageRequest
from image_gateway.models.task import SourceObject, Task, TaskError, TaskStatus, utc_now
from image_gateway.ports import Dependencies
from image_gateway.service.lifecycle import change_status, fail_task, finish_parent
from image_gateway.service.limits import client_limits, reserved_estimate
from image_gateway.service.outputs import output_key_stem as stem_of_output
from image_gateway.service.routing import Candidate, route
from image_gateway.service.staging import stage_inputs

logger = Logger(child=True)

PART_MISSING_AFTER = timedelta(minutes=5)
"""A part not made this long after its parent (a crash mid-submit) is recorded as failed."""

SubmitPart = Callable[..., Any]
"""``submit_task`` (passed in: it is the caller, and this module must not import it back)."""


def submit_parent(
    deps: Dependencies,
    request: ImageRequest,
    submit_part: SubmitPart,
    *,
    client_id: str,
    task_id: str,
    idempotency_key: str | None,
    callback_base_url: str | None,
    source: SourceObject | None,
    output_key_stem: str | None,
    request_id: str | None,
    batch: tuple[str, str] | None = None,
) -> Task:
    """Record the parent of ``request.n`` images and submit its parts; the parent.

    ``batch`` (batch id, custom id): the parent is a line of that batch (counted in it once,
    when it ends); the batch prepaid its estimate (n images), so its parts reserve no budget.

    Raises a 429 (``TooManyRequests``) before anything is written when the client's limits
    cannot take all ``n`` parts (see the module).
    """
    one = request.model_copy(update={"n": 1, "callback_url": None, "callback_events": None})
    routed = route(deps, one, client_id=client_id, token=task_id)
    _check_room(
        deps, one, routed.candidates, client_id=client_id, n=request.n, prepaid=batch is not None
    )
    stored, _ = stage_inputs(deps, request, client_id=client_id, task_id=task_id)
    now = utc_now()
    parent = Task(
        task_id=task_id,
        client_id=client_id,
        operation=request.operation,
        model=request.model,
        provider=routed.candidates[0].provider.name,
        routing=routed.decision,
        size_requested=routed.candidates[0].plan.requested,
        request=stored,
        created_at=now,
        updated_at=now,
        check_at=now + PART_MISSING_AFTER,
        idempotency_key=idempotency_key,
        request_id=request_id,
        source=source,
        output_key_stem=output_key_stem,
        callback_base_url=callback_base_url,
        batch_id=batch[0] if batch else None,
        custom_id=batch[1] if batch else None,
    )
    deps.tasks.create(parent)
    part_request = stored.model_copy(update={"n": 1, "callback_url": None, "callback_events": None})
    for index in range(request.n):
        try:
            submit_part(
                deps,
                part_request,
                client_id=client_id,
                callback_base_url=callback_base_url,
                task_id=part_id(task_id, index),
                source=source,
                output_key_stem=stem_of_output(parent, index),
                request_id=request_id,
                part_of=(task_id, index),
                prepaid=batch is not None,
            )
        except Exception as refused:
            _undo(deps, parent, index, refused)
            raise
    logger.info("task of n images queued", extra={"task_id": task_id, "n": request.n})
    return deps.tasks.require(task_id)


def _check_room(
    deps: Dependencies,
    one: ImageRequest,
    candidates: list[Candidate],
    *,
    client_id: str,
    n: int,
    prepaid: bool = False,
) -> None:
    """Refuse (429, nothing written) a request whose ``n`` parts the client's counters, read
    once, cannot all take; each part still reserves its own place, atomically, after this."""
    limits = client_limits(deps, client_id)
    cost = reserved_estimate(deps, one, candidates)
    counts = deps.usage.usage(client_id)
    now = utc_now().timestamp()
    kind: LimitKind | None = None
    places = limits.max_running_tasks + limits.max_queued_tasks
    room = limits.budget_room(cost * n)
    if counts.window_requests + n > limits.requests_per_minute:
        kind = LimitKind.RATE
    elif counts.running + counts.queued + n > places:
        kind = LimitKind.QUEUE_FULL
    elif not prepaid and room is not None and usd(counts.spent_usd) > room:
        kind = LimitKind.BUDGET
    if kind is None:
        return
    retry = refusal(kind, now).retry_after_seconds
    message = {
        LimitKind.RATE: f"{n} images are {n} requests and this client may make "
        f"{limits.requests_per_minute} a minute ({counts.window_requests} made in this one)",
        LimitKind.QUEUE_FULL: f"{n} images need {n} of this client's places (running or "
        f"queued) and only {max(0, places - counts.running - counts.queued)} are free",
        LimitKind.BUDGET: f"{n} images at an estimated ${cost} each would take the client past "
        f"its daily budget of ${limits.daily_budget_usd} (spent ${counts.spent_usd})",
    }[kind]
    raise TooManyRequests(
        f"{message}: ask for fewer images (n), or retry after the Retry-After seconds; "
        "GET /v1/usage shows the counts",
        code=kind.value,
        retry_after_seconds=retry or 1,
    )


def _undo(deps: Dependencies, parent: Task, made: int, refused: Exception) -> None:
    """A part was refused after the check (a race): cancel the parts made, fail the parent."""
    logger.warning("part refused: parent undone", extra={"task_id": parent.task_id, "made": made})
    for index in range(made):
        change_status(deps, part_id(parent.task_id, index), TaskStatus.CANCELLED, by="submit")
    code = getattr(refused, "code", "internal_error")
    error = TaskError(
        code=code, message=f"image {made} of {parent.request.n} was refused: {refused}"
    )
    fail_task(deps, parent.task_id, error, by="submit")


def check_parent(deps: Dependencies, parent: Task) -> Task:
    """The sweeper's look at an open parent: record a part never made (after
    ``PART_MISSING_AFTER``) as failed, and end a parent whose parts are all recorded."""
    recorded = {entry.index for entry in parent.parts}
    if utc_now() - parent.created_at >= PART_MISSING_AFTER:
        found = deps.tasks.get_many(part_ids(parent))
        for index, task_id in enumerate(part_ids(parent)):
            if index in recorded or task_id in found:
                continue
            logger.error("part never made", extra={"task_id": task_id})
            parent = _record_lost(deps, parent, _lost_part(parent, index))
    return finish_parent(deps, parent)


def _record_lost(deps: Dependencies, parent: Task, lost: Task) -> Task:
    try:
        return deps.tasks.update(parent.task_id, lambda t: record_part(t, lost))
    except AlreadyRecorded:
        return deps.tasks.require(parent.task_id)


def _lost_part(parent: Task, index: int) -> Task:
    now = utc_now()
    error = TaskError(
        code="dispatch_failed",
        message="the gateway stopped while submitting this image (no provider was called)",
    )
    return parent.model_copy(
        update={
            "task_id": part_id(parent.task_id, index),
            "status": TaskStatus.FAILED,
            "parent_id": parent.task_id,
            "part_index": index,
            "outputs": [],
            "parts": [],
            "error": error,
            "cost_estimate_usd": 0.0,
            "finished_at": now,
        }
    )
