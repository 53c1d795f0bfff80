"""Client API: POST /v1/images, GET /v1/tasks[/{id}] (and ?ids=a,b,...), POST /v1/tasks/{id}/cancel,
GET /v1/providers, GET /v1/usage, POST /v1/uploads, the webhook secret routes, OpenAPI.

Every request passes the gate (``image_gateway.http.gate``) first: the API key (401 before any
body is read), then, for the JSON routes, the media type, size and bytes of the body. The router
(``image_gateway.http.router``, chosen over Powertools' resolver for the cold start: see there)
finds the handler by API Gateway's route key; bodies and queries are validated by their pydantic
models. Every answer that is not a success is ``{"error": {"code", "message", ...}}``:
deliberate errors, validation, unknown routes, and unexpected failures (500 ``internal_error``
with the request id, logged).
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_gateway import log_context
from image_gateway.adapters.aws import lazy_dependencies
from image_gateway.errors import GatewayError, NotFound
from image_gateway.http.gate import (
    RoutePolicy,
    admit,
    error_result,
    internal_error,
    request_id,
)
from image_gateway.http.router import Reply, Request, Router
from image_gateway.metrics import expect_invocations_without_metrics
from image_gateway.models.request import ImageRequest
from image_gateway.models.task import Task
from image_gateway.models.task_query import MAX_TASK_ID_CHARS, TaskListQuery
from image_gateway.models.uploads import UploadRequest
from image_gateway.models.views import (
    TaskBatch,
    TaskList,
    TaskSummary,
    TaskView,
    WebhookRedelivery,
)
from image_gateway.service.lifecycle import cancel_task
from image_gateway.service.limits import client_usage
from image_gateway.service.progress import expected_seconds
from image_gateway.service.submit import submit_task
from image_gateway.service.uploads import plan_uploads
from image_gateway.webhooks.delivery import current_secret, redeliver, rotate_secret

if TYPE_CHECKING:  # the batch routes import their models and flow when they are called
    from image_gateway.batches.ports import Batch
    from image_gateway.models.batches import BatchView

logger = Logger()
log_context.follow(logger)  # every line names its task and the request behind it
metrics = Metrics()
expect_invocations_without_metrics(metrics)  # most invocations count nothing
router = Router()
DEPS = lazy_dependencies()
ROUTES = RoutePolicy(
    public=frozenset({"GET /v1/openapi.json"}),
    json_body=frozenset({"POST /v1/images", "POST /v1/uploads", "POST /v1/batches"}),
)


def _base_url(request: Request) -> str:
    context = request.event.get("requestContext") or {}
    stage = context.get("stage")
    prefix = "" if stage in ("$default", "", None) else f"/{stage}"
    return f"https://{context.get('domainName', '')}{prefix}"


def _presign(key: str) -> str:
    deps = DEPS.get()
    return deps.images.presigned_get_url(key, deps.settings.output_url_ttl_seconds)


def _view(task: Task) -> TaskView:
    return TaskView.from_task(
        task,
        presign=_presign,
        base_path="",
        expected_seconds=expected_seconds(DEPS.get().settings, task),
        images_bucket=DEPS.get().images.bucket,
    )


def _own_task(request: Request) -> Task:
    task_id = request.params.get("taskId", "")
    # An id longer than any task id is not looked up (DynamoDB refuses keys over 2048 bytes).
    task = None if len(task_id) > MAX_TASK_ID_CHARS else DEPS.get().tasks.get(task_id)
    if task is None or task.client_id != request.caller:  # another client's task does not exist
        raise NotFound(f"no task {task_id[:MAX_TASK_ID_CHARS]}", code="task_not_found")
    return task


def _own_tasks(caller: str, task_ids: list[str]) -> TaskBatch:
    found = DEPS.get().tasks.get_many(task_ids)
    mine = {i: t for i, t in found.items() if t.client_id == caller}  # others' are not found
    return TaskBatch(
        tasks=[_view(mine[i]) for i in task_ids if i in mine],
        not_found=[i for i in task_ids if i not in mine],
    )


@router.route("POST /v1/images")
def create_image(request: Request) -> Reply:
    """Submit a generation (no images) or an edit (images, optional mask); 202 + the task."""
    submission = submit_task(
        DEPS.get(),
        request.json(ImageRequest),
        client_id=request.caller,
        idempotency_key=request.headers.get("idempotency-key"),
        callback_base_url=_base_url(request),
        request_id=request_id(request.event),
    )
    metrics.add_metric("TasksSubmitted", "Count", 1)
    return Reply.of(200 if submission.replayed else 202, _view(submission.task))


@router.route("GET /v1/tasks/{taskId}")
def get_task(request: Request) -> Reply:
    """A task with its status, timings, error and outputs (presigned download URLs)."""
    return Reply.of(200, _view(_own_task(request)))


@router.route("GET /v1/tasks")
def list_tasks(request: Request) -> Reply:
    """The caller's tasks, newest first, paginated with ``cursor``; with ``ids``, those tasks
    in full (one BatchGetItem per 100) and the ids that are not the caller's tasks."""
    query = request.query_as(TaskListQuery)
    if query.ids is not None:
        return Reply.of(200, _own_tasks(request.caller, query.id_list()))
    page = DEPS.get().tasks.list_for_client(request.caller, limit=query.limit, cursor=query.cursor)
    body = TaskList(
        tasks=[TaskSummary.from_task(t, presign=_presign) for t in page.tasks],
        next_cursor=page.next_cursor,
    )
    return Reply.of(200, body)


@router.route("POST /v1/tasks/{taskId}/cancel")
def cancel(request: Request) -> Reply:
    """Cancel a task that has not finished (409 once it has)."""
    return Reply.of(200, _view(cancel_task(DEPS.get(), _own_task(request))))


@router.route("POST /v1/tasks/{taskId}/webhooks/redeliver")
def redeliver_webhook(request: Request) -> Reply:
    """Send the task's latest webhook again: a new attempt of the same webhook-id (202)."""
    message = redeliver(DEPS.get(), _own_task(request))
    return Reply.of(202, WebhookRedelivery(webhook_id=message.webhook_id, attempt=message.attempt))


def _batch_view(batch: Batch) -> BatchView:
    # The batch routes import their models and flow here, not at import: the submit route (a
    # cold start's usual first event) does not need them (47 M instructions, 0.07x of boto3).
    from image_gateway.models.batches import BatchView

    return BatchView.from_batch(batch, presign=_presign)


@router.route("POST /v1/batches")
def create_batch_route(request: Request) -> Reply:
    """Submit many image requests at once (202 + the batch); its tasks are made in chunks."""
    from image_gateway.models.batches import BatchCreateRequest
    from image_gateway.service.batches import create_batch

    submission = create_batch(
        DEPS.get(),
        request.json(BatchCreateRequest),
        client_id=request.caller,
        idempotency_key=request.headers.get("idempotency-key"),
        request_id=request_id(request.event),
    )
    return Reply.of(200 if submission.replayed else 202, _batch_view(submission.batch))


@router.route("GET /v1/batches/{batchId}")
def get_batch(request: Request) -> Reply:
    """A batch's status, counts, costs and (once final) its results file."""
    from image_gateway.service.batches import own_batch

    return Reply.of(
        200, _batch_view(own_batch(DEPS.get(), request.caller, request.params["batchId"]))
    )


@router.route("GET /v1/batches")
def list_batches(request: Request) -> Reply:
    """The caller's batches, newest first, paginated with ``cursor``."""
    from image_gateway.models.batches import BatchList, BatchListQuery

    query = request.query_as(BatchListQuery)
    page = DEPS.get().batches.store.list_for_client(
        request.caller, limit=query.limit, cursor=query.cursor
    )
    body = BatchList(batches=[_batch_view(b) for b in page.batches], next_cursor=page.next_cursor)
    return Reply.of(200, body)


@router.route("POST /v1/batches/{batchId}/cancel")
def cancel_batch_route(request: Request) -> Reply:
    """Cancel a batch: lines not yet tasks and queued tasks are cancelled, running ones finish."""
    from image_gateway.service.batches import cancel_batch

    batch = cancel_batch(DEPS.get(), request.caller, request.params["batchId"])
    return Reply.of(200, _batch_view(batch))


@router.route("GET /v1/webhook-secret")
def get_webhook_secret(request: Request) -> Reply:
    """The caller's ``whsec_`` secret for verifying deliveries (created on first use)."""
    return Reply.of(200, current_secret(DEPS.get(), request.caller))


@router.route("POST /v1/webhook-secret/rotate")
def rotate_webhook_secret(request: Request) -> Reply:
    """A new secret; for 24 h deliveries are signed with the new and the previous one."""
    return Reply.of(200, rotate_secret(DEPS.get(), request.caller))


@router.route("POST /v1/uploads")
def create_uploads(request: Request) -> Reply:
    """Presigned PUT URLs for input images too large to send inline (201); name each upload
    in ``images`` or ``mask`` of ``POST /v1/images`` by its ``ref``."""
    plan = plan_uploads(DEPS.get(), request.json(UploadRequest), client_id=request.caller)
    return Reply.of(201, plan)


@router.route("GET /v1/providers")
def list_providers(request: Request) -> Reply:
    """Every provider this gateway knows: enabled or not, default order, capabilities, prices,
    its circuit breaker's state and recent success rate, and what its calls measured."""
    from image_gateway.service.provider_listing import provider_list  # see there: not at import

    return Reply.of(200, provider_list(DEPS.get()))


@router.route("GET /v1/usage")
def get_usage(request: Request) -> Reply:
    """The caller's day: spend against its budget, open tasks, the current rate window."""
    return Reply.of(200, client_usage(DEPS.get(), request.caller))


@router.route("GET /v1/openapi.json")
def openapi(request: Request) -> Reply:
    """This API's OpenAPI document: every status each route answers, with its schema."""
    return Reply(200, _openapi_document())


@cache
def _openapi_document() -> str:
    # Imported here: the document is built on its first request, never at cold start.
    from image_gateway.http.contract import document

    return json.dumps(document())


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway HTTP API (payload 2.0) entry point: the gate, then the route."""
    try:
        deps = DEPS.get()
        admitted = admit(
            event,
            ROUTES,
            authenticate=deps.api_keys.client_for,
            max_body_bytes=deps.settings.max_request_body_bytes,
        )
        reply = router.dispatch(admitted.event, admitted.client_id)
    except GatewayError as refused:  # the gate's refusals
        return error_result(refused)
    except Exception:  # a bug or an outage: 500 with the request id, the traceback logged
        logger.exception("request failed unexpectedly")
        return error_result(internal_error(event))
    if reply.status >= 500:
        logger.warning("request failed", extra={"code": json.loads(reply.body)["error"]["code"]})
    return reply.result()
