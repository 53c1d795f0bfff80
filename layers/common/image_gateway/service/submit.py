"""Submit and reject: a request becomes a task (or a recorded refusal).

``submit_task`` is storage-first: it checks routing, claims the Idempotency-Key, stages the
inputs, records the task as ``queued`` and queues its first attempt; it never waits on a
provider. ``reject_task`` records a task that could not be submitted, for entry points with no
caller to answer (the S3 inbox).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from aws_lambda_powertools import Logger

from image_gateway.errors import InvalidRequest
from image_gateway.idempotency import fingerprint
from image_gateway.log_context import working_on
from image_gateway.models.request import ImageRequest, Operation
from image_gateway.models.task import SourceObject, Task, TaskError, TaskStatus, utc_now
from image_gateway.ports import Dependencies, TaskExists
from image_gateway.service.handoff import queue_attempt
from image_gateway.service.lifecycle import change_status
from image_gateway.service.limits import (
    ClientRead,
    dispatch_admitted,
    hold_usage,
    release_usage,
    start_queued,
)
from image_gateway.service.parts import submit_parent
from image_gateway.service.routing import route
from image_gateway.service.staging import stage_inputs
from image_gateway.webhooks.delivery import check_callback_url

logger = Logger(child=True)


@dataclass(frozen=True)
class Submission:
    """What submit_task did: the task, and whether it is an earlier one (Idempotency-Key)."""

    task: Task
    replayed: bool = False
    started: bool = False
    """True when the task got a running place at once and its first attempt was queued (with
    ``first_attempt_delay_seconds``); False for a replay or a task waiting its turn."""


def new_task_id() -> str:
    """A random, URL-safe task id."""
    return "tsk_" + uuid.uuid4().hex


def submit_task(
    deps: Dependencies,
    request: ImageRequest,
    *,
    client_id: str,
    idempotency_key: str | None = None,
    callback_base_url: str | None = None,
    task_id: str | None = None,
    source: SourceObject | None = None,
    output_key_stem: str | None = None,
    request_id: str | None = None,
    first_attempt_delay_seconds: int = 0,
    batch: tuple[str, str] | None = None,
    part_of: tuple[str, int] | None = None,
    prepaid: bool = False,
) -> Submission:
    """Record the task (``queued``) and queue its first attempt; no provider is called here.

    Routing and capabilities are checked first (a 422 spends nothing), then the client's limits
    (a 429 writes nothing, ``service.limits``), the inputs are staged, and the dispatch function
    makes every provider call later. Entry points other than the API
    may bring their own ``task_id`` (claimed beforehand for deduplication), the ``source``
    object the task was made from, and where its output goes. ``callback_base_url`` is where
    providers call back when the stack has no ``PUBLIC_BASE_URL`` (the URL the API was called
    on). ``request_id`` is the caller's request (recorded; every log line of the task names it).
    ``first_attempt_delay_seconds`` delays the queued first attempt: an entry point that makes
    the attempt itself (the OpenAI-compatible call) leaves it on the queue as a safety net.
    ``batch`` (batch id, custom id): a line of a batch, whose estimate the batch prepaid.
    A request for ``n`` > 1 images becomes a parent and ``n`` parts (``service.parts``; each part
    comes back here with ``part_of``: its parent's id and its index). ``prepaid``: a part of a
    batch's line, whose estimate the batch prepaid (its budget is not reserved again).
    """
    task_id = task_id or new_task_id()
    client = ClientRead(deps, client_id)  # routing and limits read it once between them
    routed = route(deps, request, client_id=client_id, token=task_id, client=client.overrides)
    candidates = routed.candidates
    check_callback_url(deps, request.callback_url)
    working_on(task_id, request_id)
    if idempotency_key is not None:
        earlier = deps.idempotency.claim(
            client_id, idempotency_key, fingerprint(request.model_dump_json()), task_id
        )
        if earlier is not None:
            task = deps.tasks.get(earlier)
            if task is None:  # claimed, but the first request has not written its task yet
                raise InvalidRequest(
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                    code="idempotency_in_progress",
                )
            return Submission(task=task, replayed=True)
    if request.n > 1:
        try:
            parent = submit_parent(
                deps,
                request,
                submit_task,
                client_id=client_id,
                task_id=task_id,
                idempotency_key=idempotency_key,
                callback_base_url=callback_base_url,
                source=source,
                output_key_stem=output_key_stem,
                request_id=request_id,
                batch=batch,
            )
        except Exception:
            _release_key(deps, client_id, idempotency_key, task_id)
            raise
        return Submission(task=parent)

    now = utc_now()
    # until its first provider attempt only the queue's bound runs (handoff starts the
    # provider deadline then): time spent waiting its turn never counts against a provider
    deadline = now + timedelta(seconds=deps.settings.scaled(deps.settings.queue_timeout_seconds))
    try:  # the client's limits first: a refused request (429) stages and writes nothing
        admission = hold_usage(
            deps,
            request,
            candidates,
            client_id=client_id,
            task_id=task_id,
            prepaid=prepaid or batch is not None,
            client=client,
        )
    except Exception:
        _release_key(deps, client_id, idempotency_key, task_id)
        raise
    first, *rest = [c.provider.name for c in candidates]
    recheck = now + timedelta(seconds=deps.settings.scaled(deps.timing.queue_recheck_seconds))
    try:
        stored_request, _ = stage_inputs(deps, request, client_id=client_id, task_id=task_id)
        task = Task(
            task_id=task_id,
            client_id=client_id,
            operation=request.operation,
            model=request.model,
            provider=first,
            fallbacks=rest,
            routing=routed.decision,
            size_requested=candidates[0].plan.requested,
            request=stored_request,
            created_at=now,
            updated_at=now,
            admitted_at=now if admission.started else None,
            deadline_at=deadline,
            check_at=min(recheck, deadline),
            idempotency_key=idempotency_key,
            request_id=request_id,
            source=source,
            output_key_stem=output_key_stem,
            callback_base_url=callback_base_url,
            usage_hold=admission.hold,
            batch_id=batch[0] if batch else None,
            custom_id=batch[1] if batch else None,
            parent_id=part_of[0] if part_of else None,
            part_index=part_of[1] if part_of else None,
        )
        deps.tasks.create(task)
    except TaskExists:  # made meanwhile by a retried delivery: the hold is that task's own
        raise
    except Exception:  # refused (or failed) before its task exists: a retry must not be blocked
        release_usage(deps, client_id, admission.hold)
        _release_key(deps, client_id, idempotency_key, task_id)
        raise
    if not admission.started:
        logger.info(
            "task queued for its client's limit", extra={"task_id": task_id, "client_id": client_id}
        )
        return Submission(task=_start_if_free(deps, task))
    logger.info("task queued", extra={"task_id": task_id, "client_id": client_id})
    return Submission(
        task=queue_attempt(deps, task, first, delay_seconds=first_attempt_delay_seconds),
        started=True,
    )


def _start_if_free(deps: Dependencies, task: Task) -> Task:
    """A task that must wait: start the client's queue in case a place freed since the
    reservation (its settler found this task's entry missing or its record unwritten), and
    dispatch this task if it was given a place before its record existed."""
    start_queued(deps, task.client_id)
    hold = task.usage_hold
    if hold is not None and deps.usage.is_running(task.client_id, hold):
        dispatch_admitted(deps, task.task_id)
    return deps.tasks.require(task.task_id)


def _release_key(
    deps: Dependencies, client_id: str, idempotency_key: str | None, task_id: str
) -> None:
    if idempotency_key is not None:
        deps.idempotency.release(client_id, idempotency_key, task_id)


def reject_task(
    deps: Dependencies,
    request: ImageRequest,
    error: TaskError,
    *,
    client_id: str,
    task_id: str,
    operation: Operation,
    source: SourceObject | None = None,
    request_id: str | None = None,
) -> Task:
    """Record a task that could not be submitted, as failed with ``error`` (and its event).

    For entry points without a caller to answer (the S3 inbox): a bad upload still gets a task
    and an ``Image Task Failed`` event saying why.
    """
    working_on(task_id, request_id)
    now = utc_now()
    task = Task(
        task_id=task_id,
        client_id=client_id,
        operation=operation,
        model=request.model,
        provider=request.provider or (request.providers or ["none"])[0],
        request=request,
        created_at=now,
        updated_at=now,
        check_at=now,
        source=source,
        request_id=request_id,
    )
    deps.tasks.create(task)
    logger.info("task rejected", extra={"task_id": task_id, "code": error.code})

    def record(t: Task) -> None:
        t.error = error

    return change_status(deps, task_id, TaskStatus.FAILED, by="submit", change=record).task
