"""submit_task: validate, record, stage inputs, call the provider, start what finishes the task."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from image_gateway.errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
    ProviderError,
    Unprocessable,
)
from image_gateway.models.request import (
    ImageRequest,
    ImageSourceKind,
    Operation,
    classify_image_source,
    parse_s3_ref,
)
from image_gateway.models.task import (
    ProviderAttempt,
    SourceObject,
    Task,
    TaskError,
    TaskStatus,
    utc_now,
)
from image_gateway.providers.base import Mode, Provider, ProviderInputs, SizePlan
from image_gateway.service.dependencies import Dependencies
from image_gateway.service.lifecycle import change_status, fail_task

logger = Logger(child=True)

# A callback provider that has not called back by this many expected latencies gets polled once
# by the sweeper (cheaper than a state machine per task).
CALLBACK_GRACE_FACTOR = 2.0


@dataclass(frozen=True)
class Submission:
    """What submit_task did: the task, and whether it is an earlier one (Idempotency-Key)."""

    task: Task
    replayed: bool = False


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
) -> Submission:
    """Create a task and hand it to the first provider that takes it.

    Entry points other than the API may bring their own ``task_id`` (claimed beforehand for
    deduplication), the ``source`` object the task was made from, and where its output goes.
    """
    candidates = candidate_providers(deps, request)
    task_id = task_id or new_task_id()
    if idempotency_key is not None:
        earlier = deps.idempotency.claim(
            client_id,
            idempotency_key,
            deps.idempotency.fingerprint(request.model_dump_json()),
            task_id,
        )
        if earlier is not None:
            task = deps.tasks.get(earlier)
            if task is None:  # claimed, but the first request died before writing its task
                raise InvalidRequest(
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                    code="idempotency_in_progress",
                )
            return Submission(task=task, replayed=True)

    stored_request, inputs = _stage_inputs(deps, request, client_id=client_id, task_id=task_id)
    now = utc_now()
    task = Task(
        task_id=task_id,
        client_id=client_id,
        operation=request.operation,
        model=request.model,
        provider=candidates[0].provider.name,
        size_requested=candidates[0].plan.requested,
        request=stored_request,
        created_at=now,
        updated_at=now,
        deadline_at=now
        + timedelta(seconds=deps.settings.scaled(deps.settings.task_deadline_seconds)),
        check_at=now + timedelta(seconds=deps.settings.scaled(deps.settings.task_deadline_seconds)),
        idempotency_key=idempotency_key,
        source=source,
        output_key_stem=output_key_stem,
    )
    deps.tasks.create(task)
    logger.info("task created", extra={"task_id": task_id, "client_id": client_id})
    return Submission(task=hand_to_provider(deps, task, candidates, inputs, callback_base_url))


def reject_task(
    deps: Dependencies,
    request: ImageRequest,
    error: TaskError,
    *,
    client_id: str,
    task_id: str,
    operation: Operation,
    source: SourceObject | None = None,
) -> Task:
    """Record a task that could not be submitted, as failed with ``error`` (and its event).

    For entry points without a caller to answer (the S3 inbox): a bad upload still gets a task
    and an ``Image Task Failed`` event saying why.
    """
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
    )
    deps.tasks.create(task)
    logger.info("task rejected", extra={"task_id": task_id, "code": error.code})

    def record(t: Task) -> None:
        t.error = error

    failed = change_status(deps, task_id, TaskStatus.FAILED, by="submit", change=record)
    return failed or deps.tasks.require(task_id)


@dataclass(frozen=True)
class Candidate:
    """A provider that can honour the request, and how it will make the size."""

    provider: Provider
    plan: SizePlan


def candidate_providers(deps: Dependencies, request: ImageRequest) -> list[Candidate]:
    """The providers to try, in order: enabled, and able to honour the request.

    A pinned provider or the caller's list, else the configured default order. Capability and
    size checks run here, before anything is written or spent; when no provider qualifies the
    422 names every provider's reason (and, for sizes, what each one supports).
    """
    names = [request.provider] if request.provider else request.providers or deps.directory.order()
    usable, refusals, disabled = qualify(deps, names, request)
    if usable:
        return usable
    if len(refusals) == 1 and not disabled:
        raise refusals[0]
    if refusals:
        reasons = "; ".join(r.message for r in refusals)
        raise Unprocessable(
            f"no enabled provider can honour this request: {reasons}"
            + (f" (disabled: {', '.join(disabled)})" if disabled else ""),
            code="no_provider_can_honour",
            refusals=[{"message": r.message, **r.details} for r in refusals],
        )
    raise Unprocessable(
        f"none of the providers {', '.join(names)} is enabled in this stack",
        code="no_provider_available",
    )


def qualify(
    deps: Dependencies, names: list[str], request: ImageRequest
) -> tuple[list[Candidate], list[Unprocessable], list[str]]:
    """Split ``names`` into usable candidates (in order), refusals, and disabled providers."""
    usable: list[Candidate] = []
    refusals: list[Unprocessable] = []
    disabled: list[str] = []
    for name in names:
        provider = deps.directory.provider(name)  # 400 for an unknown name
        if not deps.directory.enabled(name):
            disabled.append(name)
            continue
        try:
            usable.append(Candidate(provider, provider.check(request)))
        except Unprocessable as refusal:
            refusals.append(refusal)
    return usable, refusals, disabled


def _stage_inputs(
    deps: Dependencies, request: ImageRequest, *, client_id: str, task_id: str
) -> tuple[ImageRequest, ProviderInputs]:
    """Store client data URLs in S3; hand providers URLs (presigned for our objects)."""
    stored: list[str] = []
    for_provider: list[str] = []
    for index, value in enumerate(request.images):
        ref, url = _stage_one(deps, value, client_id, f"inputs/{client_id}/{task_id}/{index}")
        stored.append(ref)
        for_provider.append(url)
    mask_ref = mask_url = None
    if request.mask is not None:
        mask_ref, mask_url = _stage_one(
            deps, request.mask, client_id, f"inputs/{client_id}/{task_id}/mask"
        )
    normalised = request.model_copy(update={"images": stored, "mask": mask_ref})
    return normalised, ProviderInputs(images=for_provider, mask=mask_url)


def _stage_one(deps: Dependencies, value: str, client_id: str, key_stem: str) -> tuple[str, str]:
    kind = classify_image_source(value)
    ttl = int(deps.settings.input_url_ttl_seconds)
    if kind is ImageSourceKind.URL:
        return value, value
    if kind is ImageSourceKind.DATA_URL:
        image = deps.images.store_base64([value], key_stem)
        return f"s3://{image.bucket}/{image.key}", deps.images.presigned_get_url(image.key, ttl)
    bucket, key = parse_s3_ref(value)
    if bucket != deps.settings.bucket_name or not key.startswith(f"inputs/{client_id}/"):
        raise InvalidRequest(
            f"s3 references must point into s3://{deps.settings.bucket_name}/inputs/{client_id}/",
            code="s3_reference_forbidden",
        )
    if not deps.images.exists(key):
        raise NotFound(f"{value} does not exist", code="input_not_found")
    return value, deps.images.presigned_get_url(key, ttl)


def provider_inputs(deps: Dependencies, stored: ImageRequest) -> ProviderInputs:
    """What a provider is handed for a stored request: its https URLs, and presigned URLs of
    our own objects (client data URLs were stored in S3 at submit)."""
    ttl = int(deps.settings.input_url_ttl_seconds)

    def url(ref: str) -> str:
        if ref.startswith("s3://"):
            return deps.images.presigned_get_url(parse_s3_ref(ref)[1], ttl)
        return ref

    return ProviderInputs(
        images=[url(ref) for ref in stored.images],
        mask=None if stored.mask is None else url(stored.mask),
    )


class _TaskEnded(Exception):
    """The task ended (cancelled) while we were talking to a provider."""


def hand_to_provider(
    deps: Dependencies,
    task: Task,
    candidates: list[Candidate],
    inputs: ProviderInputs,
    callback_base_url: str | None,
    *,
    by: str = "api",
) -> Task:
    """Try each candidate in order; retryable failures move on, others end the task.

    Async providers get their create call here; sync providers are queued for the dispatch
    function (their retryable failures fall back from there, with the names left in
    ``fallbacks``). Every try is added to ``task.attempts``.
    """
    attempts = list(task.attempts)
    last_error: ProviderError | None = None
    for index, candidate in enumerate(candidates):
        provider = candidate.provider
        remaining = [c.provider.name for c in candidates[index + 1 :]]
        if provider.mode(task.request) is Mode.SYNC:
            return _queue_sync(deps, task, candidate, remaining, attempts, by=by)
        callback_url = None
        base = deps.settings.public_base_url or callback_base_url
        if provider.supports_callback and base:
            token = deps.signer.token(provider.name, task.task_id)
            callback_url = f"{base.rstrip('/')}/webhooks/{provider.name}/{task.task_id}/{token}"
        try:
            provider_task_id = deps.provider_client(provider.name).create(
                task.request, inputs, callback_url
            )
        except ProviderError as error:
            logger.warning(
                "provider refused the task",
                extra={"task_id": task.task_id, "provider": provider.name, "code": error.code},
            )
            last_error = error
            attempts.append(_failed_attempt(provider.name, error))
            if error.retryable:
                continue
            break
        attempts.append(
            ProviderAttempt(
                provider=provider.name,
                provider_task_id=provider_task_id,
                at=utc_now(),
                outcome="submitted",
            )
        )
        return _submitted(
            deps, task, candidate, provider_task_id, attempts, callback_url, remaining, by=by
        )
    assert last_error is not None
    return fail_with_attempts(deps, task.task_id, last_error, attempts, by=by)


def fail_with_attempts(
    deps: Dependencies,
    task_id: str,
    error: ProviderError,
    attempts: list[ProviderAttempt],
    *,
    by: str,
) -> Task:
    """End the task as failed by ``error``, keeping the record of every attempt."""
    final_error = TaskError.from_provider_error(error)

    def record_failure(t: Task) -> None:
        t.error = final_error
        t.attempts = attempts
        t.provider = attempts[-1].provider if attempts else t.provider

    failed = change_status(deps, task_id, TaskStatus.FAILED, by=by, change=record_failure)
    return failed or deps.tasks.require(task_id)


def _failed_attempt(provider: str, error: ProviderError) -> ProviderAttempt:
    return ProviderAttempt(
        provider=provider,
        at=utc_now(),
        outcome="failed",
        error=TaskError.from_provider_error(error),
    )


def _record_submission(
    deps: Dependencies, task_id: str, record: Callable[[Task], None], *, by: str
) -> Task | None:
    """Apply ``record``: queued -> submitted (with its event), or in place for a fallback made
    after submission (the dispatch function). None when the task ended meanwhile."""
    current = deps.tasks.require(task_id)
    if current.status is TaskStatus.QUEUED:
        return change_status(deps, task_id, TaskStatus.SUBMITTED, by=by, change=record)

    def guarded(t: Task) -> None:
        if t.status.terminal:
            raise _TaskEnded
        record(t)

    try:
        return deps.tasks.update(task_id, guarded)
    except _TaskEnded:
        return None


def _queue_sync(
    deps: Dependencies,
    task: Task,
    candidate: Candidate,
    remaining: list[str],
    attempts: list[ProviderAttempt],
    *,
    by: str,
) -> Task:
    """Hand a sync provider's call to the dispatch queue (never made inside an API request)."""
    provider = candidate.provider
    if not deps.settings.dispatch_queue_url:
        raise GatewayError("DISPATCH_QUEUE_URL is not configured for this function")

    def record(t: Task) -> None:
        t.provider = provider.name
        t.provider_task_id = None
        t.path = "sync"
        t.size_sent = candidate.plan.sent
        t.fallbacks = remaining
        t.attempts = attempts
        t.cost_estimate_usd = deps.directory.estimate(provider.name, t.request, candidate.plan)
        t.submitted_at = t.submitted_at or utc_now()

    queued = _record_submission(deps, task.task_id, record, by=by)
    if queued is None:
        return deps.tasks.require(task.task_id)
    try:
        deps.sqs.send_message(
            QueueUrl=deps.settings.dispatch_queue_url,
            MessageBody=json.dumps({"task_id": task.task_id, "provider": provider.name}),
        )
    except (BotoCoreError, ClientError) as exc:  # nothing was spent: end it, with its event
        logger.exception("dispatch queue unavailable", extra={"task_id": task.task_id})
        error = TaskError(
            code="dispatch_unavailable",
            message=f"the task could not be queued for {provider.name}: {type(exc).__name__}",
            provider=provider.name,
            retryable=True,
        )
        return fail_task(deps, task.task_id, error, by=by) or deps.tasks.require(task.task_id)
    logger.info("queued for dispatch", extra={"task_id": task.task_id, "provider": provider.name})
    return queued


def _submitted(
    deps: Dependencies,
    task: Task,
    candidate: Candidate,
    provider_task_id: str,
    attempts: list[ProviderAttempt],
    callback_url: str | None,
    remaining: list[str],
    *,
    by: str,
) -> Task:
    provider = candidate.provider
    expected = provider.expected_latency_seconds(task.request)
    uses_callback = callback_url is not None

    def record(t: Task) -> None:
        t.provider = provider.name
        t.provider_task_id = provider_task_id
        t.path = "callback" if uses_callback else "poll"
        t.size_sent = candidate.plan.sent
        t.fallbacks = remaining
        t.attempts = attempts
        t.cost_estimate_usd = deps.directory.estimate(provider.name, t.request, candidate.plan)
        t.submitted_at = t.submitted_at or utc_now()
        if uses_callback:  # the sweeper polls once if the callback is late
            grace = deps.settings.scaled(expected * CALLBACK_GRACE_FACTOR)
            t.check_at = utc_now() + timedelta(seconds=grace)

    submitted = _record_submission(deps, task.task_id, record, by=by)
    if submitted is None:  # cancelled while we were talking to the provider
        return deps.tasks.require(task.task_id)
    if not uses_callback:
        _start_poll_loop(deps, submitted, expected)
    return submitted


def _start_poll_loop(deps: Dependencies, task: Task, expected_seconds: float) -> None:
    """One Standard execution per task, named after it (a duplicate start is refused by AWS)."""
    if not deps.settings.state_machine_arn:
        raise GatewayError("STATE_MACHINE_ARN is not configured for this function")
    wait = max(1, round(deps.settings.scaled(expected_seconds)))
    try:
        deps.stepfunctions.start_execution(
            stateMachineArn=deps.settings.state_machine_arn,
            name=task.task_id,
            input=json.dumps({"task_id": task.task_id, "wait_seconds": wait, "attempt": 0}),
        )
    except deps.stepfunctions.exceptions.ExecutionAlreadyExists:
        logger.info("poll loop already running", extra={"task_id": task.task_id})
