"""pmock simulator: the async gpt-image-2 create endpoint and a task query, in pmock's envelope.

Wire format as in pmock's docs (`pmock-generate-async.txt`), served under `/pmock`:

- `POST /api/ai/openai/images/generate` (camelCase JSON; `image` present = edit)
  -> `{"code": 200, "message": "success", "data": {"taskId": "<uuid>"}, "traceId": "<hex>"}`
- `GET /api/ai/openai/tasks?taskId=...` (undocumented: the simulator's chosen shape)
  -> the envelope with `data` = `{"taskId", "status", "result", "errorMessage", "errorCode",
  "createdAt", "finishedAt"}`; statuses as mountsea-async's: `pending`, `processing`, then
  `completed`, `failed`, `cancelled` or `timeout`. `result` is the OpenAI images response
  `{"created", "data": [{"b64_json"}], "size", "quality", "output_format", "background"}`.

Every answer is the envelope `{"code", "message", "data", "traceId"}`. As the docs say a
non-200 `code` is an error even on HTTP 200, invalid input and moderation answer HTTP 200 with
`code` 400, and an unknown task HTTP 200 with `code` 404; only a bad key is HTTP 401 (code 401).
No callbacks.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Final

from devstack.simulator import mountsea
from devstack.simulator.faults import Faults, create_fault_response
from devstack.simulator.render import is_image_reference
from devstack.simulator.tasks import (
    Phase,
    SimTask,
    TaskStore,
    iso_timestamp,
)
from devstack.simulator.wire import (
    BASE64_SLOT,
    SimRequest,
    SimResponse,
    json_response,
    json_with_base64,
)

PROVIDER: Final = "pmock"
PREFIX: Final = "/pmock"

MODEL: Final = "gpt-image-2"
SIZES: Final = mountsea.SIZES

CAMEL_CASE: Final = {
    "output_format": "outputFormat",
    "response_format": "responseFormat",
    "input_fidelity": "inputFidelity",
}
"""mountsea's snake_case enum field -> pmock's camelCase name (the others are spelled alike)."""

ENUM_FIELDS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    # field: (allowed values, default): mountsea's, camelCased. The defaults are undocumented;
    # OpenAI's are used, so size defaults to auto where mountsea's is 1024x1024.
    **{CAMEL_CASE.get(name, name): spec for name, spec in mountsea.ENUM_FIELDS.items()},
    "size": (tuple(SIZES), "auto"),
}

KNOWN_FIELDS: Final = frozenset(
    {"prompt", "model", "n", "outputCompression", "image", "mask", *ENUM_FIELDS}
)
MAX_INPUT_IMAGES: Final = 16
QUEUED_FRACTION: Final = 0.1
"""Share of the latency a task spends `pending` before `processing`."""

SUCCESS_MESSAGE: Final = "success"
MODERATION_MESSAGE: Final = "prompt rejected by content moderation"


class PmockSimulator:
    """Answers pmock's async OpenAI image endpoints."""

    def __init__(
        self, *, store: TaskStore, api_key: str, time_scale: float, stop: threading.Event
    ) -> None:
        self._store = store
        self._api_key = api_key
        self._time_scale = time_scale
        self._stop = stop

    def handle(self, request: SimRequest) -> SimResponse:
        """Route one request below `/pmock`."""
        if request.bearer_token() != self._api_key:
            return envelope(401, "invalid api key", http_status=401)
        if request.method == "POST" and request.path == "/api/ai/openai/images/generate":
            return self._create(request)
        if request.method == "GET" and request.path == "/api/ai/openai/tasks":
            return self._query(request)
        return envelope(404, f"no route for {request.method} {request.path}", http_status=404)

    def _create(self, request: SimRequest) -> SimResponse:
        try:
            body = request.json()
        except ValueError:
            return envelope(400, "request body must be valid JSON")
        faults = Faults.parse(body.get("prompt") if isinstance(body, dict) else None, PROVIDER)
        unavailable = envelope(503, "upstream unavailable", http_status=503)
        forced = create_fault_response(faults, self._stop, unavailable)
        if forced is not None:
            return forced
        parsed = _parse_create(body)
        if isinstance(parsed, str):
            return envelope(400, parsed)
        if "moderation" in faults:
            return envelope(400, MODERATION_MESSAGE)
        options = parsed.options
        spec = parsed.render_spec(options["outputFormat"], faults)
        task = SimTask(
            provider=PROVIDER,
            task_id=str(uuid.uuid4()),
            spec=spec,
            faults=faults,
            latency_s=parsed.latency_s(self._time_scale, faults),
            queued_fraction=QUEUED_FRACTION,
            details={
                "size": f"{spec.width}x{spec.height}",
                "quality": options["quality"],
                "output_format": options["outputFormat"],
                "background": options["background"],
            },
        )
        self._store.add(task)
        return envelope(200, SUCCESS_MESSAGE, {"taskId": task.task_id})

    def _query(self, request: SimRequest) -> SimResponse:
        task_id = request.query.get("taskId")
        if not task_id:
            return envelope(400, "taskId is required")
        task = self._store.get(PROVIDER, task_id)
        if task is None:
            return envelope(404, "task not found")
        response = self._task_response(task)
        if task.outcome is not None and "poll-garbage" in task.faults:
            return response.truncated()
        return response

    def _task_response(self, task: SimTask) -> SimResponse:
        outcome = self._store.outcome(task)
        data: dict[str, Any] = {
            "taskId": task.task_id,
            "status": "pending" if task.phase() is Phase.QUEUED else "processing",
            "result": None,
            "errorMessage": None,
            "errorCode": None,
            "createdAt": iso_timestamp(task.created_at),
            "finishedAt": None,
        }
        if outcome is None:
            return envelope(200, SUCCESS_MESSAGE, data)
        data["status"] = outcome.status
        data["errorMessage"] = outcome.error_message
        data["errorCode"] = outcome.error_code
        data["finishedAt"] = iso_timestamp(task.finished_at)
        image = self._store.image(task) if outcome.completed else None
        if image is None:
            if outcome.completed:  # Expired between the two looks.
                return envelope(404, "task not found")
            return envelope(200, SUCCESS_MESSAGE, data)
        data["result"] = {
            "created": int(task.finished_at),
            "data": [{"b64_json": BASE64_SLOT}],
            **task.details,
        }
        return json_with_base64(200, _envelope_payload(200, SUCCESS_MESSAGE, data), image)


def envelope(
    code: int, message: str, data: dict[str, Any] | None = None, *, http_status: int = 200
) -> SimResponse:
    """pmock's answer: `{"code", "message", "data", "traceId"}`, HTTP 200 unless told."""
    return json_response(http_status, _envelope_payload(code, message, data))


def _envelope_payload(code: int, message: str, data: dict[str, Any] | None) -> dict[str, Any]:
    return {"code": code, "message": message, "data": data, "traceId": uuid.uuid4().hex}


def _parse_create(body: Any) -> mountsea.ImageRequest | str:
    """The create request, or a message saying what is wrong with it."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    unknown = sorted(set(body) - KNOWN_FIELDS)
    if unknown:
        return f"unknown field(s): {', '.join(unknown)}"
    body = {key: value for key, value in body.items() if value is not None}  # null = absent
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or len(prompt) < 1:
        return "prompt is required and must be at least 1 character"
    if body.get("model") != MODEL:
        return f"model is required and must be '{MODEL}'"
    n = body.get("n", 1)
    if isinstance(n, bool) or n != 1:
        return "n must be 1"
    options: dict[str, Any] = {}
    for name, (allowed, default) in ENUM_FIELDS.items():
        options[name] = body.get(name, default)
        if options[name] not in allowed:
            return f"{name} must be one of {', '.join(allowed)}"
    compression = body.get("outputCompression")
    if compression is not None and not mountsea.is_compression(compression):
        return "outputCompression must be an integer from 0 to 100"
    image = body.get("image")
    images: tuple[str, ...] = ()
    if image is not None:
        if (
            not isinstance(image, list)
            or not 1 <= len(image) <= MAX_INPUT_IMAGES
            or not all(map(is_image_reference, image))
        ):
            return f"image must be a list of 1-{MAX_INPUT_IMAGES} http(s) URLs or base64 data URLs"
        images = tuple(image)
    mask = body.get("mask")
    if mask is not None:
        if not images:
            return "mask requires image"
        if not is_image_reference(mask):
            return "mask must be an http(s) URL or base64 data URL"
    if options["background"] == "transparent" and options["outputFormat"] == "jpeg":
        return "background transparent requires outputFormat png or webp"
    return mountsea.ImageRequest(prompt, options, compression, images, mask)
