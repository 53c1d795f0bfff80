"""Client API: POST /v1/images, GET /v1/tasks[/{id}], POST /v1/tasks/{id}/cancel,
GET /v1/providers, POST /v1/uploads, OpenAPI.

Every request passes the gate (``image_gateway.http.gate``) before Powertools resolves it: the
API key first (401 before any body is read), then, for POST /v1/images, the media type, size
and bytes of the body, which Powertools parses once with the safe JSON decoder. Every answer
that is not a success is ``{"error": {"code", "message", ...}}``: deliberate errors, validation,
unknown routes, and unexpected failures (500 ``internal_error`` with the request id, logged).
"""

from __future__ import annotations

import json
from functools import cache
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_gateway.adapters.aws import LazyDependencies
from image_gateway.errors import GatewayError, NotFound, Unauthorized, UnsupportedMediaType
from image_gateway.health.ports import Circuit
from image_gateway.http.gate import RoutePolicy, admit, error_result, internal_error
from image_gateway.http.json_body import decode_json_object
from image_gateway.models.circuits import ProviderHealthView
from image_gateway.models.request import ImageRequest
from image_gateway.models.task import Task
from image_gateway.models.uploads import UploadRequest
from image_gateway.models.views import (
    ProviderList,
    ProviderView,
    TaskList,
    TaskSummary,
    TaskView,
    WebhookRedelivery,
)
from image_gateway.providers.registry import PROVIDER_TYPES
from image_gateway.service.health import read_circuits
from image_gateway.service.lifecycle import cancel_task
from image_gateway.service.progress import expected_seconds
from image_gateway.service.submit import submit_task
from image_gateway.service.uploads import plan_uploads
from image_gateway.service.webhooks import current_secret, redeliver, rotate_secret

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=decode_json_object)
DEPS = LazyDependencies()
MAX_TASK_ID_CHARS = 128
ROUTES = RoutePolicy(
    public=frozenset({"GET /v1/openapi.json"}),
    json_body=frozenset({"POST /v1/images", "POST /v1/uploads"}),
)


def _json(status: int, body: str) -> Response[str]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _error(error: GatewayError) -> Response[str]:
    return _json(error.status_code, json.dumps(error.to_body()))


def _client_id() -> str:
    """The caller the gate authenticated (every route but the OpenAPI document has one)."""
    client_id = app.context.get("client_id")
    if not isinstance(client_id, str):
        raise Unauthorized("send your API key as 'Authorization: Bearer <key>'")
    return client_id


def _base_url() -> str:
    context = app.current_event.request_context
    stage = context.stage
    prefix = "" if stage in ("$default", "", None) else f"/{stage}"
    return f"https://{context.domain_name}{prefix}"


def _presign(key: str) -> str:
    deps = DEPS.get()
    return deps.images.presigned_get_url(key, deps.settings.output_url_ttl_seconds)


def _view(task: Task) -> TaskView:
    return TaskView.from_task(
        task,
        presign=_presign,
        base_path="",
        expected_seconds=expected_seconds(DEPS.get().settings, task),
    )


def _own_task(task_id: str, client_id: str) -> Task:
    # An id longer than any task id is not looked up (DynamoDB refuses keys over 2048 bytes).
    task = None if len(task_id) > MAX_TASK_ID_CHARS else DEPS.get().tasks.get(task_id)
    if task is None or task.client_id != client_id:  # another client's task does not exist
        raise NotFound(f"no task {task_id[:MAX_TASK_ID_CHARS]}", code="task_not_found")
    return task


@app.post("/v1/images")
def create_image(request: Annotated[ImageRequest, Body()]) -> Response[str]:
    """Submit a generation (no images) or an edit (images, optional mask); 202 + the task."""
    client_id = _client_id()
    submission = submit_task(
        DEPS.get(),
        request,
        client_id=client_id,
        idempotency_key=app.current_event.headers.get("idempotency-key"),
        callback_base_url=_base_url(),
    )
    metrics.add_metric("TasksSubmitted", "Count", 1)
    return _json(200 if submission.replayed else 202, _view(submission.task).model_dump_json())


@app.get("/v1/tasks/<task_id>")
def get_task(task_id: str) -> Response[str]:
    """A task with its status, timings, error and outputs (presigned download URLs)."""
    return _json(200, _view(_own_task(task_id, _client_id())).model_dump_json())


@app.get("/v1/tasks")
def list_tasks(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[str]:
    """The caller's tasks, newest first, paginated with ``cursor``."""
    page = DEPS.get().tasks.list_for_client(_client_id(), limit=limit, cursor=cursor)
    body = TaskList(
        tasks=[TaskSummary.from_task(t, presign=_presign) for t in page.tasks],
        next_cursor=page.next_cursor,
    )
    return _json(200, body.model_dump_json())


@app.post("/v1/tasks/<task_id>/cancel")
def cancel(task_id: str) -> Response[str]:
    """Cancel a task that has not finished (409 once it has)."""
    task = cancel_task(DEPS.get(), _own_task(task_id, _client_id()))
    return _json(200, _view(task).model_dump_json())


@app.post("/v1/tasks/<task_id>/webhooks/redeliver")
def redeliver_webhook(task_id: str) -> Response[str]:
    """Send the task's latest webhook again: a new attempt of the same webhook-id (202)."""
    message = redeliver(DEPS.get(), _own_task(task_id, _client_id()))
    body = WebhookRedelivery(webhook_id=message.webhook_id, attempt=message.attempt)
    return _json(202, body.model_dump_json())


@app.get("/v1/webhook-secret")
def get_webhook_secret() -> Response[str]:
    """The caller's ``whsec_`` secret for verifying deliveries (created on first use)."""
    return _json(200, current_secret(DEPS.get(), _client_id()).model_dump_json())


@app.post("/v1/webhook-secret/rotate")
def rotate_webhook_secret() -> Response[str]:
    """A new secret; for 24 h deliveries are signed with the new and the previous one."""
    return _json(200, rotate_secret(DEPS.get(), _client_id()).model_dump_json())


@app.post("/v1/uploads")
def create_uploads(request: Annotated[UploadRequest, Body()]) -> Response[str]:
    """Presigned PUT URLs for input images too large to send inline (201); name each upload
    in ``images`` or ``mask`` of ``POST /v1/images`` by its ``ref``."""
    plan = plan_uploads(DEPS.get(), request, client_id=_client_id())
    return _json(201, plan.model_dump_json())


@app.get("/v1/providers")
def list_providers() -> Response[str]:
    """Every provider this gateway knows: enabled or not, default order, capabilities, prices,
    and its circuit breaker's state and recent success rate."""
    deps = DEPS.get()
    directory = deps.directory
    order = directory.order()
    circuits, now = read_circuits(deps), deps.health.now()
    rows = []
    for name in PROVIDER_TYPES:
        price = directory.price(name)
        rows.append(
            ProviderView(
                name=name,
                enabled=directory.enabled(name),
                default_rank=order.index(name) + 1 if name in order else None,
                capabilities=directory.provider(name).capabilities.describe(),
                price=None if price is None else price.model_dump(),
                health=ProviderHealthView.of(circuits.get(name) or Circuit(name), now),
            )
        )
    return _json(200, ProviderList(default_order=order, providers=rows).model_dump_json())


@app.get("/v1/openapi.json")
def openapi() -> Response[str]:
    """This API's OpenAPI document: every status each route answers, with its schema."""
    return _json(200, _openapi_document())


@cache
def _openapi_document() -> str:
    # Imported here: the document is built on its first request, never at cold start.
    from image_gateway.http.contract import document

    return json.dumps(document(app.get_openapi_json_schema()))


@app.exception_handler(GatewayError)  # type: ignore[untyped-decorator]
def gateway_error(error: GatewayError) -> Response[str]:
    """Every deliberate error: its status and stable code."""
    if error.status_code >= 500:
        logger.warning("request failed", extra={"code": error.code})
    return _error(error)


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def validation_error(error: RequestValidationError) -> Response[str]:
    """Bad fields: 400 ``validation_error`` with one entry per problem."""
    problems: list[dict[str, Any]] = []
    for item in error.errors():
        location = [str(p) for p in item.get("loc", ()) if p != "body"]
        problems.append(
            {
                "field": ".".join(location) or "body",
                "message": str(item.get("msg", "invalid")).removeprefix("Value error, "),
                "type": item.get("type"),
            }
        )
    body = {
        "error": {
            "code": "validation_error",
            "message": "; ".join(f"{p['field']}: {p['message']}" for p in problems),
            "fields": problems,
        }
    }
    return _json(400, json.dumps(body))


@app.exception_handler(RequestUnsupportedContentType)  # type: ignore[untyped-decorator]
def unsupported_content_type(_: RequestUnsupportedContentType) -> Response[str]:
    """A body Powertools cannot read (the gate refuses these first): 415, our shape."""
    return _error(UnsupportedMediaType("send the body as JSON (Content-Type: application/json)"))


@app.not_found
def not_found(_: Exception) -> Response[str]:
    """Unknown route (also a known path with another method: Powertools has no 405)."""
    return _error(NotFound("no such route", code="route_not_found"))


@app.exception_handler(ServiceError)  # type: ignore[untyped-decorator]
def service_error(error: ServiceError) -> Response[str]:
    """Powertools' own HTTP errors, in our shape (code: the status phrase in snake case)."""
    code = HTTPStatus(error.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    gateway = GatewayError(str(error.msg), code=code)
    gateway.status_code = error.status_code
    return _error(gateway)


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def unexpected_error(_: Exception) -> Response[str]:
    """A bug or an outage: 500 ``internal_error`` with the request id, the traceback logged."""
    logger.exception("request failed unexpectedly")
    return _error(internal_error(app.current_event.raw_event))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway HTTP API (payload 2.0) entry point: the gate, then the routes."""
    try:
        deps = DEPS.get()
        admitted = admit(
            event,
            ROUTES,
            authenticate=deps.api_keys.client_for,
            max_body_bytes=deps.settings.max_request_body_bytes,
        )
    except GatewayError as refused:
        return error_result(refused)
    except Exception:
        logger.exception("request gate failed unexpectedly")
        return error_result(internal_error(event))
    app.append_context(client_id=admitted.client_id)  # type: ignore[no-untyped-call]
    try:
        return app.resolve(admitted.event, context)
    except Exception:  # outside the routes (event conversion, response building)
        logger.exception("request failed unexpectedly")
        return error_result(internal_error(event))
