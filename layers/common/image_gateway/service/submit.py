"""submit_task: validate, record, stage inputs, call the provider, start what finishes the task."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

from aws_lambda_powertools import Logger

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
from image_gateway.providers.base import Provider, ProviderInputs
from image_gateway.providers.registry import get_provider
from image_gateway.service.dependencies import Dependencies
from image_gateway.service.lifecycle import change_status

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
    candidates = _candidate_providers(deps, request)
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
        provider=candidates[0].name,
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
    return Submission(task=_hand_to_provider(deps, task, candidates, inputs, callback_base_url))


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


def _candidate_providers(deps: Dependencies, request: ImageRequest) -> list[Provider]:
    """The providers to try, in order, that are enabled and can honour the request."""
    names = (
        [request.provider]
        if request.provider
        else request.providers or deps.settings.default_providers
    )
    providers = [get_provider(name) for name in names]
    usable: list[Provider] = []
    refusals: list[Unprocessable] = []
    for provider in providers:
        endpoint = deps.settings.provider_endpoint(provider.name)
        if endpoint is None or not endpoint.enabled:
            continue
        try:  # a dry run of the create call: capability checks happen before any spend
            provider.create_call(request, _placeholder_inputs(request), None)
        except Unprocessable as refusal:
            refusals.append(refusal)
            continue
        usable.append(provider)
    if usable:
        return usable
    if refusals:
        raise refusals[0]
    raise Unprocessable(
        f"none of the providers {', '.join(names)} is enabled in this stack",
        code="no_provider_available",
    )


def _placeholder_inputs(request: ImageRequest) -> ProviderInputs:
    return ProviderInputs(
        images=["https://placeholder.invalid/image.png"] * len(request.images),
        mask="https://placeholder.invalid/mask.png" if request.mask else None,
    )


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


def _hand_to_provider(
    deps: Dependencies,
    task: Task,
    candidates: list[Provider],
    inputs: ProviderInputs,
    callback_base_url: str | None,
) -> Task:
    """Try each candidate in order; retryable failures move on, others end the task."""
    attempts: list[ProviderAttempt] = []
    last_error: ProviderError | None = None
    for provider in candidates:
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
            attempts.append(
                ProviderAttempt(
                    provider=provider.name,
                    at=utc_now(),
                    outcome="failed",
                    error=TaskError.from_provider_error(error),
                )
            )
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
        return _submitted(deps, task, provider, provider_task_id, attempts, callback_url)
    assert last_error is not None
    final_error = TaskError.from_provider_error(last_error)

    def record_failure(t: Task) -> None:
        t.error = final_error
        t.attempts = attempts
        t.provider = attempts[-1].provider

    failed = change_status(deps, task.task_id, TaskStatus.FAILED, by="api", change=record_failure)
    return failed or deps.tasks.require(task.task_id)


def _submitted(
    deps: Dependencies,
    task: Task,
    provider: Provider,
    provider_task_id: str,
    attempts: list[ProviderAttempt],
    callback_url: str | None,
) -> Task:
    expected = provider.expected_latency_seconds(task.request)
    uses_callback = callback_url is not None

    def record(t: Task) -> None:
        t.provider = provider.name
        t.provider_task_id = provider_task_id
        t.attempts = attempts
        t.submitted_at = utc_now()
        if uses_callback:  # the sweeper polls once if the callback is late
            grace = deps.settings.scaled(expected * CALLBACK_GRACE_FACTOR)
            t.check_at = t.submitted_at + timedelta(seconds=grace)

    submitted = change_status(deps, task.task_id, TaskStatus.SUBMITTED, by="api", change=record)
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
