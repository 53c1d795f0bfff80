"""The API's OpenAPI document, telling the truth: every status a route answers, with its schema.

Powertools derives the request side (bodies, query and path parameters) from the routes'
annotations; its response side is wrong for this API (every route is ``Response[str]``, and it
adds a 422 ``HTTPValidationError`` where validation is a 400 ``{"error"}``). :func:`document`
keeps Powertools' request side and replaces every operation's responses, summary, tags and
examples with :data:`OPERATIONS`, adds the bearer security scheme, and drops the unused
validation schemas. Imported by the document's route only, so the API's cold start does not
carry it.
"""

from __future__ import annotations

import json
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from image_gateway.http.examples import (
    LIST_EXAMPLE,
    PROVIDERS_EXAMPLE,
    TASK_EXAMPLE,
    TASK_ID,
    UPLOADS_EXAMPLE,
)
from image_gateway.models.uploads import UploadPlan
from image_gateway.models.views import (
    ProviderList,
    TaskList,
    TaskView,
    WebhookRedelivery,
    WebhookSecretView,
)

TITLE = "Image Task Gateway"
VERSION = "1.0.0"
REF = "#/components/schemas/{model}"
SECURITY_SCHEME = "apiKey"

_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("Bad request", "validation_error", "prompt: Field required"),
    401: ("No API key or an unknown one", "unauthorized", "send 'Authorization: Bearer <key>'"),
    404: ("No such task (or another client's)", "task_not_found", f"no task {TASK_ID}"),
    409: (
        "A conflict: the task has already finished (cancel), or the Idempotency-Key was "
        "used with another body (submit)",
        "idempotency_key_reused",
        "Idempotency-Key was already used with a different request body",
    ),
    413: ("The body is too large", "body_too_large", "the body is larger than 262,144 bytes"),
    415: ("The body is not JSON", "unsupported_media_type", "send application/json"),
    422: (
        "Well-formed, but no chosen provider can honour it",
        "unsupported_by_provider",
        "openai does not support aspect_ratio 21:9",
    ),
    500: (
        "The gateway failed unexpectedly (quote request_id)",
        "internal_error",
        "the gateway failed unexpectedly; try again, and quote request_id if it persists",
    ),
}


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``code`` to branch on and a ``message`` saying what to fix.

    Some errors carry more: ``fields`` (one entry per bad field of a ``validation_error``),
    ``request_id`` (of an ``internal_error``), ``limit_bytes`` (of ``body_too_large``).
    """

    model_config = {"extra": "allow"}

    code: str
    message: str


class ErrorBody(BaseModel):
    """Every answer that is not a success: ``{"error": {"code", "message", ...}}``."""

    error: ErrorDetail


@dataclass(frozen=True)
class Operation:
    """What one route answers, as the document shows it."""

    operation_id: str
    tag: str
    summary: str
    success: dict[int, tuple[str, type[BaseModel] | None, dict[str, Any]]]
    errors: tuple[int, ...]
    description: str = ""
    public: bool = False
    request_example: dict[str, Any] | None = None
    headers: list[dict[str, Any]] = field(default_factory=list)


_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Send the same key again (with the same body) to get the first answer "
    "back (200) instead of a second task.",
    "schema": {"type": "string", "maxLength": 255},
}

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("post", "/v1/images"): Operation(
        "createImage",
        "tasks",
        "Submit a generation or an edit",
        {
            202: ("The task, recorded and queued for a provider", TaskView, TASK_EXAMPLE),
            200: (
                "A replay: the task an earlier request with this Idempotency-Key made",
                TaskView,
                TASK_EXAMPLE,
            ),
        },
        (400, 401, 404, 409, 413, 415, 422, 500),
        request_example={
            "prompt": "a lighthouse at dawn",
            "aspect_ratio": "16:9",
            "resolution": "2K",
            "metadata": {"order": "42"},
        },
        headers=[_IDEMPOTENCY_HEADER],
        description="A generation (no `images`) or an edit (`images`, optional `mask`). The task "
        "is recorded `queued` and its first provider attempt queued; no provider is called "
        "before the answer. Give `size` (WxH) or `aspect_ratio` + `resolution`; `provider` or "
        "`providers` (a fallback list) choose who makes it. Images are `https://` URLs, "
        "`data:image/...;base64,` URLs or `s3://` refs from `POST /v1/uploads`.",
    ),
    ("get", "/v1/tasks/{task_id}"): Operation(
        "getTask",
        "tasks",
        "A task: status, timings, error, outputs with download URLs",
        {200: ("The task", TaskView, TASK_EXAMPLE)},
        (401, 404, 500),
        description="Another client's task is a 404 like an unknown one. `outputs[].url` are "
        "presigned download URLs, valid for a limited time: read the task again for fresh ones.",
    ),
    ("get", "/v1/tasks"): Operation(
        "listTasks",
        "tasks",
        "The caller's tasks, newest first",
        {
            200: (
                "A page of tasks; pass next_cursor as cursor for the next",
                TaskList,
                LIST_EXAMPLE,
            )
        },
        (400, 401, 500),
        description="`limit` 1-100 (20 by default); `cursor` is the `next_cursor` of the page "
        "before (null on the last page).",
    ),
    ("post", "/v1/tasks/{task_id}/cancel"): Operation(
        "cancelTask",
        "tasks",
        "Cancel a task that has not finished",
        {200: ("The task, cancelled", TaskView, {**TASK_EXAMPLE, "status": "cancelled"})},
        (401, 404, 409, 500),
        description="A task that has not finished becomes `cancelled` (a provider may still "
        "finish it; its result is then discarded). A finished task answers 409.",
    ),
    ("post", "/v1/uploads"): Operation(
        "createUploads",
        "uploads",
        "Presigned PUT URLs for input images too large to send inline",
        {201: ("One upload slot per file, in the order asked", UploadPlan, UPLOADS_EXAMPLE)},
        (400, 401, 413, 415, 500),
        request_example={"files": [{"content_type": "image/png", "bytes": 5242880}]},
        description="One slot per file (up to 17: sixteen images and a mask): PUT the file's "
        "exact bytes to `url` with `headers`, then name it by `ref` in `images` or `mask` of "
        "`POST /v1/images`.",
    ),
    ("get", "/v1/providers"): Operation(
        "listProviders",
        "providers",
        "Every provider: enabled or not, default order, capabilities, prices, health",
        {200: ("The providers", ProviderList, PROVIDERS_EXAMPLE)},
        (401, 500),
        description="Capabilities and prices as configured (the providers parameter); "
        "`health` is the provider's circuit breaker (`closed`, `open` until `until`, "
        "`half_open`) and its success rate over its recent calls.",
    ),
    ("post", "/v1/tasks/{task_id}/webhooks/redeliver"): Operation(
        "redeliverWebhook",
        "webhooks",
        "Send the task's latest webhook again",
        {
            202: (
                "A new attempt of the same webhook-id is queued",
                WebhookRedelivery,
                {"webhook_id": "msg_tsk_0123456789abcdef0123456789abcdef_succeeded", "attempt": 4},
            )
        },
        (401, 404, 500),
        description="The latest delivery of the task (same `webhook-id`, so receivers "
        "deduplicate it) is sent once more, signed with the current secret(s). A task without "
        "a delivery yet answers 404 `no_delivery`.",
    ),
    ("get", "/v1/webhook-secret"): Operation(
        "getWebhookSecret",
        "webhooks",
        "The caller's webhook signing secret",
        {
            200: (
                "The current whsec_ secret (made on first use)",
                WebhookSecretView,
                {
                    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    "previous_secret_valid_until": None,
                },
            )
        },
        (401, 500),
        description="Verify deliveries to your `callback_url` with it (Standard Webhooks: "
        "`webhook-id`, `webhook-timestamp`, `webhook-signature`).",
    ),
    ("post", "/v1/webhook-secret/rotate"): Operation(
        "rotateWebhookSecret",
        "webhooks",
        "A new webhook signing secret",
        {
            200: (
                "The new secret; the previous one also signs deliveries until the time given",
                WebhookSecretView,
                {
                    "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                    "previous_secret_valid_until": "2026-12-02T12:00:00Z",
                },
            )
        },
        (401, 500),
        description="For 24 h every delivery carries two signatures (new and previous), so "
        "receivers can switch over.",
    ),
    ("get", "/v1/openapi.json"): Operation(
        "getOpenApiDocument",
        "meta",
        "This document (no key needed)",
        {200: ("The OpenAPI document", None, {"openapi": "3.1.0", "info": {"title": TITLE}})},
        (),
        public=True,
        description="OpenAPI 3.1; Swagger UI renders it at `/docs`.",
    ),
}

TAGS = [
    {"name": "tasks", "description": "Submit image tasks, read them, list them, cancel them."},
    {"name": "uploads", "description": "Upload large input images straight to the bucket."},
    {"name": "providers", "description": "The providers this gateway routes to."},
    {"name": "webhooks", "description": "Signed deliveries to your callback_url."},
    {"name": "meta", "description": "This API's own description."},
]
DESCRIPTION = (
    "GPT-Image-2 generation and editing through third-party providers, as tasks. Submit with "
    "`POST /v1/images` (202 and the task, queued), then read `GET /v1/tasks/{task_id}` until "
    "its status is `succeeded` (outputs carry presigned download URLs), `failed`, `cancelled` "
    "or `expired`. Every request but this document's needs `Authorization: Bearer <key>`. "
    'Every answer that is not a success is `{"error": {"code", "message", ...}}` with a '
    "stable `code`."
)


def document(powertools_document: str) -> dict[str, Any]:
    """The truthful document, from the one Powertools generated (``get_openapi_json_schema``)."""
    doc: dict[str, Any] = json.loads(powertools_document)
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    schemas.update(response_schemas())
    doc["info"] = {"title": TITLE, "version": VERSION, "description": DESCRIPTION}
    doc["tags"] = TAGS
    doc["components"]["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "The API key the operator issued: `Authorization: Bearer <key>`.",
        }
    }
    doc["security"] = [{SECURITY_SCHEME: []}]
    for (method, path), spec in OPERATIONS.items():
        operation = doc["paths"][path][method]
        _describe(operation, spec)
    return doc


def response_schemas() -> dict[str, Any]:
    """JSON Schemas of every response body, named as their models, refs into components."""
    models: list[type[BaseModel]] = [
        TaskView,
        TaskList,
        ProviderList,
        UploadPlan,
        WebhookSecretView,
        WebhookRedelivery,
        ErrorBody,
    ]
    _, top = models_json_schema([(m, "serialization") for m in models], ref_template=REF)
    return dict(top.get("$defs", {}))


def _describe(operation: dict[str, Any], spec: Operation) -> None:
    operation.update(
        operationId=spec.operation_id,
        tags=[spec.tag],
        summary=spec.summary,
        description=" ".join((spec.description or spec.summary).split()),
    )
    if spec.public:
        operation["security"] = []
    if spec.headers:
        operation["parameters"] = [*operation.get("parameters", []), *deepcopy(spec.headers)]
    if spec.request_example is not None:
        content = operation["requestBody"]["content"]["application/json"]
        content["example"] = spec.request_example
    responses: dict[str, Any] = {}
    for status, (text, model, example) in spec.success.items():
        schema = {"type": "object"} if model is None else {"$ref": REF.format(model=model.__name__)}
        responses[str(status)] = {
            "description": text,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    for status in spec.errors:
        text, code, message = _ERRORS[status]
        responses[str(status)] = {
            "description": text,
            "content": {
                "application/json": {
                    "schema": {"$ref": REF.format(model=ErrorBody.__name__)},
                    "example": {"error": {"code": code, "message": message}},
                }
            },
        }
    operation["responses"] = responses
