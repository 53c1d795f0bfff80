"""Client API: POST /v1/images, GET /v1/tasks[/{id}], POST /v1/tasks/{id}/cancel,
GET /v1/providers, POST /v1/uploads, OpenAPI."""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_gateway.adapters.aws import LazyDependencies
from image_gateway.errors import GatewayError, NotFound
from image_gateway.models.request import ImageRequest
from image_gateway.models.task import Task
from image_gateway.models.uploads import UploadRequest
from image_gateway.models.views import TaskList, TaskSummary, TaskView
from image_gateway.providers.registry import PROVIDER_TYPES
from image_gateway.service.lifecycle import cancel_task
from image_gateway.service.progress import expected_seconds
from image_gateway.service.submit import submit_task
from image_gateway.service.uploads import plan_uploads

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True)
DEPS = LazyDependencies()


def _json(status: int, body: str) -> Response[str]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _client_id() -> str:
    return DEPS.get().api_keys.client_for(app.current_event.headers.get("authorization"))


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
    task = DEPS.get().tasks.get(task_id)
    if task is None or task.client_id != client_id:  # another client's task does not exist
        raise NotFound(f"no task {task_id}", code="task_not_found")
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


@app.post("/v1/uploads")
def create_uploads(request: Annotated[UploadRequest, Body()]) -> Response[str]:
    """Presigned PUT URLs for input images too large to send inline (201); name each upload
    in ``images`` or ``mask`` of ``POST /v1/images`` by its ``ref``."""
    plan = plan_uploads(DEPS.get(), request, client_id=_client_id())
    return _json(201, plan.model_dump_json())


@app.get("/v1/providers")
def list_providers() -> Response[str]:
    """Every provider this gateway knows: enabled or not, default order, capabilities, prices."""
    _client_id()
    deps = DEPS.get()
    directory = deps.directory
    order = directory.order()
    rows = []
    for name in PROVIDER_TYPES:
        provider = directory.provider(name)
        price = directory.price(name)
        rows.append(
            {
                "name": name,
                "enabled": directory.enabled(name),
                "default_rank": order.index(name) + 1 if name in order else None,
                "capabilities": provider.capabilities.describe(),
                "price": None if price is None else price.model_dump(),
            }
        )
    return _json(200, json.dumps({"default_order": order, "providers": rows}))


@app.get("/v1/openapi.json")
def openapi() -> Response[str]:
    """This API's OpenAPI document."""
    return _json(200, app.get_openapi_json_schema(title="Image Task Gateway", version="1.0.0"))


@app.exception_handler(GatewayError)  # type: ignore[untyped-decorator]
def gateway_error(error: GatewayError) -> Response[str]:
    """Every deliberate error: its status and stable code."""
    if error.status_code >= 500:
        logger.warning("request failed", extra={"code": error.code})
    return _json(error.status_code, json.dumps(error.to_body()))


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def validation_error(error: RequestValidationError) -> Response[str]:
    """Bad JSON or fields: 400 ``validation_error`` with one entry per problem."""
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


@app.not_found
def not_found(_: Exception) -> Response[str]:
    """Unknown route."""
    return _json(404, '{"error": {"code": "route_not_found", "message": "no such route"}}')


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway HTTP API (payload 2.0) entry point."""
    return app.resolve(event, context)
