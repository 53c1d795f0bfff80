"""The API's operations as its OpenAPI document describes them: one :class:`Operation` per route.

What each route takes (its body and query models, the same the handlers validate with) and
answers (every success and error status, with a model and an example), with its summary, tag and
description. :mod:`image_gateway.http.contract` renders the document from this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from image_gateway.http.examples import (
    BATCH_EXAMPLE,
    LIST_EXAMPLE,
    PROVIDERS_EXAMPLE,
    TASK_EXAMPLE,
    UPLOADS_EXAMPLE,
    USAGE_EXAMPLE,
)
from image_gateway.idempotency import KEY_PATTERN, MAX_KEY_CHARS
from image_gateway.models.batches import BatchCreateRequest, BatchList, BatchListQuery, BatchView
from image_gateway.models.provider_views import ProviderList
from image_gateway.models.request import ImageRequest
from image_gateway.models.task_query import TaskListQuery
from image_gateway.models.uploads import UploadPlan, UploadRequest
from image_gateway.models.usage import UsageView
from image_gateway.models.views import (
    TaskBatch,
    TaskList,
    TaskView,
    WebhookRedelivery,
    WebhookSecretView,
)

TITLE = "Image Task Gateway"
VERSION = "1.0.0"


# A status's body: one model, none, or the models it may be (the document's anyOf).
Body = type[BaseModel] | tuple[type[BaseModel], ...] | None


@dataclass(frozen=True)
class Operation:
    """What one route answers, as the document shows it."""

    operation_id: str
    tag: str
    summary: str
    # A status's body: one model, none, or a tuple of models it may be (the document's anyOf).
    success: dict[
        int, tuple[str, type[BaseModel] | tuple[type[BaseModel], ...] | None, dict[str, Any]]
    ]
    errors: tuple[int, ...]
    description: str = ""
    public: bool = False
    request_example: dict[str, Any] | None = None
    headers: list[dict[str, Any]] = field(default_factory=list)
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None


_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Send the same key again (with the same body) to get the first answer "
    "back (200) instead of a second task. 1-128 printable ASCII characters (else 400 "
    "invalid_idempotency_key).",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_CHARS,
        "pattern": KEY_PATTERN,
    },
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
        (400, 401, 404, 409, 413, 415, 422, 429, 500),
        request_example={
            "prompt": "a lighthouse at dawn",
            "aspect_ratio": "16:9",
            "resolution": "2K",
            "metadata": {"order": "42"},
        },
        headers=[_IDEMPOTENCY_HEADER],
        body=ImageRequest,
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
        "The caller's tasks, newest first; or, with ids, up to 100 tasks in full",
        {
            200: (
                "A page of tasks (TaskList; pass next_cursor as cursor for the next), or with "
                "`ids` the tasks asked for (TaskBatch)",
                (TaskList, TaskBatch),
                LIST_EXAMPLE,
            )
        },
        (400, 401, 500),
        query=TaskListQuery,
        description="`limit` 1-100 (20 by default); `cursor` is the `next_cursor` of the page "
        "before (null on the last page). With `ids` (up to 100 comma-separated task ids, no "
        "`limit` or `cursor`): one call reads them all, each as `GET /v1/tasks/{task_id}` "
        "answers it, in the order asked; ids that are unknown or another client's are in "
        "`not_found` (one call instead of one per task when waiting on many).",
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
        body=UploadRequest,
        description="One slot per file (up to 17: sixteen images and a mask): PUT the file's "
        "exact bytes to `url` with `headers`, then name it by `ref` in `images` or `mask` of "
        "`POST /v1/images`, or, for a JSONL file of batch lines (`application/x-ndjson`), in "
        "`input_file` of `POST /v1/batches`.",
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
    ("get", "/v1/usage"): Operation(
        "getUsage",
        "usage",
        "The caller's day: spend, budget, open tasks, limits, the rate window",
        {200: ("The caller's usage and limits", UsageView, USAGE_EXAMPLE)},
        (401, 500),
        description="Spend: the UTC day's estimates (reserved at submit, failed tasks cost 0).",
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
    ("post", "/v1/batches"): Operation(
        "createBatch",
        "batches",
        "Submit many image requests as one batch",
        {
            202: ("The batch, validating: its tasks are made in chunks", BatchView, BATCH_EXAMPLE),
            200: (
                "A replay: the batch an earlier request with this Idempotency-Key made",
                BatchView,
                BATCH_EXAMPLE,
            ),
        },
        (400, 401, 409, 413, 415, 422, 429, 500),
        request_example={
            "requests": [
                {"custom_id": "sku-1", "body": {"prompt": "a red mug", "size": "1024x1024"}},
                {"custom_id": "sku-2", "body": {"prompt": "a blue mug", "size": "1536x1024"}},
            ],
            "metadata": {"shop": "42"},
        },
        headers=[_IDEMPOTENCY_HEADER],
        body=BatchCreateRequest,
        description="Up to 1,000 `requests` inline (within the 256 KB body), each a "
        "`custom_id` unique in the batch and a `POST /v1/images` body. Every line is validated "
        "like a single request: a bad one becomes an `invalid` row of the results (and spends "
        "nothing), not a refusal of the batch. The estimate of the good lines is reserved in "
        "the client's daily budget at once: over it, 429 `budget_exceeded` with "
        "`estimated_cost_usd` and nothing is made. Each good line becomes an ordinary task "
        "(`batch_id`, `custom_id`), with the same routing, fallback and limits; over the "
        "client's running limit tasks wait their turn. Or `input_file`: the `ref` of a JSONL "
        "file of up to 50,000 lines uploaded through `POST /v1/uploads` (content_type "
        "`application/x-ndjson`). It is read after the answer (the batch starts "
        "`validating`), its lines checked the same way; a file that cannot be a batch's lines "
        "(`input_file_not_found`, `input_file_too_large`, `input_file_too_many_lines`, "
        "`invalid_input_file`, `duplicate_custom_id`) or over the budget (`budget_exceeded`) "
        "makes the batch `failed` with that `error`, and spends nothing. docs/batches.md.",
    ),
    ("get", "/v1/batches"): Operation(
        "listBatches",
        "batches",
        "The caller's batches, newest first",
        {
            200: (
                "A page of batches; pass next_cursor as cursor for the next",
                BatchList,
                {"batches": [BATCH_EXAMPLE], "next_cursor": None},
            )
        },
        (400, 401, 500),
        query=BatchListQuery,
        description="`limit` 1-100 (20 by default); `cursor` is the `next_cursor` of the page "
        "before (null on the last page).",
    ),
    ("get", "/v1/batches/{batch_id}"): Operation(
        "getBatch",
        "batches",
        "A batch: status, counts, costs, and its results file once final",
        {200: ("The batch", BatchView, BATCH_EXAMPLE)},
        (401, 404, 500),
        description="`status`: `validating` (lines being made into tasks), `in_progress`, "
        "`completed`, `cancelling`, `cancelled` or `expired` (every task expired). Counts are "
        "kept as each task changes, never by reading the tasks. `results_url` (presigned) "
        "once final: one JSON line per request, in order: `custom_id`, `task_id`, `status`, "
        "`outputs` (bucket, key, size, sha256, url) and `error`.",
    ),
    ("post", "/v1/batches/{batch_id}/cancel"): Operation(
        "cancelBatch",
        "batches",
        "Cancel a batch: what is still queued is cancelled, running tasks finish",
        {200: ("The batch, cancelling", BatchView, {**BATCH_EXAMPLE, "status": "cancelling"})},
        (401, 404, 409, 500),
        description="Lines not yet made into tasks and tasks still waiting in the client's "
        "queue are cancelled (their estimates given back); tasks at a provider finish. The "
        "batch is `cancelled` once they have. A final batch answers 409 "
        "`batch_not_cancellable`.",
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
    {"name": "batches", "description": "Many image requests under one id, with a results file."},
    {"name": "uploads", "description": "Upload large input images straight to the bucket."},
    {"name": "providers", "description": "The providers this gateway routes to."},
    {"name": "webhooks", "description": "Signed deliveries to your callback_url."},
    {"name": "usage", "description": "The caller's limits and the day's spend."},
    {"name": "meta", "description": "This API's own description."},
]
DESCRIPTION = (
    "GPT-Image-2 generation and editing through third-party providers, as tasks. Submit with "
    "`POST /v1/images` (202 and the task, queued), then read `GET /v1/tasks/{task_id}` until "
    "its status is `succeeded` (outputs carry presigned download URLs), `failed`, `cancelled` "
    "or `expired`. Every request but this document's needs `Authorization: Bearer <key>`. "
    'Every answer that is not a success is `{"error": {"code", "message", ...}}` with a '
    "stable `code`. Not described here: the OpenAI-compatible surface for the official `openai` "
    "SDK (`POST /openai/v1/images/generations` and `POST /openai/v1/images/edits`, OpenAI's "
    "fields, answers and error shape), which is served by its own Lambda function URL (stack "
    "output `OpenAiBaseUrl`) so that a call may wait for its image; its tasks are ordinary "
    'tasks of this API (`x-task-id`). See the README, "OpenAI-compatible API".'
)
