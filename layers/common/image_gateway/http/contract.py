"""The API's OpenAPI document, telling the truth: every status a route answers, with its schema.

The document's source is :data:`~image_gateway.http.operations.OPERATIONS`: per route, the
models of its body and query string (the same models the handlers validate with, so the request
side cannot drift), its path parameters, every success and error status with its schema and an
example, a summary, tags and a description. :func:`document` renders it with the bearer
security scheme. Tests check that it names exactly the routes the API function serves and
template.yaml declares. Imported by the document's route only, so the API's cold start does not
carry it.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from image_gateway.http.examples import BATCH_ID, TASK_ID
from image_gateway.http.operations import (
    DESCRIPTION,
    OPERATIONS,
    TAGS,
    TITLE,
    VERSION,
    Operation,
)
from image_gateway.models.batches import BatchList, BatchView
from image_gateway.models.provider_views import ProviderList
from image_gateway.models.uploads import UploadPlan
from image_gateway.models.usage import UsageView
from image_gateway.models.views import (
    TaskBatch,
    TaskList,
    TaskView,
    WebhookRedelivery,
    WebhookSecretView,
)
from image_gateway.providers.registry import PROVIDER_NAMES

__all__ = ["OPERATIONS", "ErrorBody", "ErrorDetail", "document"]

REF = "#/components/schemas/{model}"
_RETRY_AFTER = {"description": "Seconds to wait", "required": True, "schema": {"type": "integer"}}
SECURITY_SCHEME = "apiKey"

_ERRORS: dict[int, tuple[str, str, str]] = {
    400: (
        "Bad request: a field or a rule between fields (validation_error), an input image "
        "(invalid_image...), or a cursor the gateway did not give (bad_cursor)",
        "validation_error",
        "prompt: Field required",
    ),
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
        "Well-formed, but refused once looked at: no chosen provider can honour it, or "
        "callback_url's host is private or does not exist (callback_url_refused)",
        "unsupported_by_provider",
        "openai does not support aspect_ratio 21:9",
    ),
    429: ("Over a client limit (see code): nothing written", "rate_limited", "retry after 42 s"),
    500: (
        "The gateway failed unexpectedly (quote request_id)",
        "internal_error",
        "the gateway failed unexpectedly; try again, and quote request_id if it persists",
    ),
}
# A 404 names what was not found: a batch route's is batch_not_found (service/batches.py), a
# submit's an input ref that is not the client's upload (service/staging.py), else the task's.
_NOT_FOUND: dict[tuple[str, str], tuple[str, str, str]] = {
    ("post", "/v1/images"): (
        "An `images` or `mask` ref that is not one of your uploads (or does not exist)",
        "input_not_found",
        "s3://bucket/inputs/other/a.png is not one of your inputs: refer to "
        "s3://bucket/inputs/<you>/... (a ref from POST /v1/uploads)",
    ),
    **{
        (method, path): (
            "No such batch (or another client's)",
            "batch_not_found",
            f"no batch {BATCH_ID}",
        )
        for method, path in OPERATIONS
        if "{batch_id}" in path
    },
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


def document() -> dict[str, Any]:
    """The API's OpenAPI 3.1 document."""
    schemas = request_schemas()
    schemas.update(response_schemas())
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), spec in OPERATIONS.items():
        operation = _request_side(path, spec)
        _describe(operation, spec, not_found=_NOT_FOUND.get((method, path), _ERRORS[404]))
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The API key the operator issued: "
                    "`Authorization: Bearer <key>`.",
                }
            },
        },
        "security": [{SECURITY_SCHEME: []}],
    }


def request_schemas() -> dict[str, Any]:
    """JSON Schemas of the request bodies (as the handlers validate them), refs into components."""
    models = [spec.body for spec in OPERATIONS.values() if spec.body is not None]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas = dict(top.get("$defs", {}))
    _name_the_providers(schemas["ImageRequest"]["properties"])
    return schemas


def _name_the_providers(fields: dict[str, Any]) -> None:
    """``provider`` and ``providers`` take the registry's names (else 400 unknown_provider)."""
    names = {"type": "string", "enum": list(PROVIDER_NAMES)}
    fields["provider"]["anyOf"][0] = names
    fields["providers"]["anyOf"][0]["items"] = names


def _request_side(path: str, spec: Operation) -> dict[str, Any]:
    """Path and query parameters and the body of one operation."""
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _path_parameters(path)
    ]
    if spec.query is not None:
        schema = spec.query.model_json_schema()
        for name, field_schema in schema["properties"].items():
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in schema.get("required", ()),
                    "description": field_schema.pop("description", ""),
                    "schema": field_schema,
                }
            )
    operation: dict[str, Any] = {}
    if parameters:
        operation["parameters"] = parameters
    if spec.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model=spec.body.__name__)}}
            },
        }
    return operation


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def response_schemas() -> dict[str, Any]:
    """JSON Schemas of every response body, named as their models, refs into components."""
    models: list[type[BaseModel]] = [
        TaskView,
        TaskList,
        TaskBatch,
        ProviderList,
        UploadPlan,
        WebhookSecretView,
        WebhookRedelivery,
        UsageView,
        BatchView,
        BatchList,
        ErrorBody,
    ]
    _, top = models_json_schema([(m, "serialization") for m in models], ref_template=REF)
    return dict(top.get("$defs", {}))


def _describe(
    operation: dict[str, Any], spec: Operation, *, not_found: tuple[str, str, str]
) -> None:
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
        schema: dict[str, Any]
        if model is None:
            schema = {"type": "object"}
        elif isinstance(model, tuple):
            schema = {"anyOf": [{"$ref": REF.format(model=m.__name__)} for m in model]}
        else:
            schema = {"$ref": REF.format(model=model.__name__)}
        responses[str(status)] = {
            "description": text,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    for status in spec.errors:
        text, code, message = not_found if status == 404 else _ERRORS[status]
        responses[str(status)] = {
            "description": text,
            "content": {
                "application/json": {
                    "schema": {"$ref": REF.format(model=ErrorBody.__name__)},
                    "example": {"error": {"code": code, "message": message}},
                }
            },
        }
    if "429" in responses:  # schemathesis checks the header is there
        responses["429"]["headers"] = {"Retry-After": _RETRY_AFTER}
    operation["responses"] = responses
