"""mountsea-async simulator: one create endpoint for generate/edit and a task query.

Wire format as in mountsea's docs (`mountsea-async-task-api.txt`), served under `/mountsea`:

- `POST /openai/images` (snake_case JSON) -> `{"taskId": "<uuid>"}`
- `GET /openai/tasks?taskId=...` -> the task, whose `result` is the upstream OpenAI images
  response (`{"created", "data": [{"b64_json"}], "usage", ...}`) once completed.

Error bodies are undocumented; the simulator answers `{"errorCode": <int>, "errorMessage": str}`.
mountsea's synchronous OpenAI clone (`/openai/v1/images/...`, provider `mountsea-compat`) shares
this prefix and is served by `openai_compat.py`.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any, Final

from devstack.simulator.faults import Faults, create_fault_response
from devstack.simulator.render import RenderSpec, is_image_reference
from devstack.simulator.tasks import (
    MOUNTSEA_LATENCY_S,
    Phase,
    SimTask,
    TaskStore,
    iso_timestamp,
    scaled_latency,
)
from devstack.simulator.wire import (
    BASE64_SLOT,
    SimRequest,
    SimResponse,
    json_response,
    json_with_base64,
)

PROVIDER: Final = "mountsea-async"
PREFIX: Final = "/mountsea"

SIZES: Final = {
    "auto": (1024, 1024),
    "1024x1024": (1024, 1024),
    "1024x1536": (1024, 1536),
    "1536x1024": (1536, 1024),
}

ENUM_FIELDS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    # field: (allowed values, default)
    "size": (tuple(SIZES), "1024x1024"),
    "quality": (("auto", "low", "medium", "high", "standard"), "auto"),
    "background": (("transparent", "opaque", "auto"), "auto"),
    "output_format": (("png", "jpeg", "webp"), "png"),
    "moderation": (("auto", "low"), "auto"),
    "response_format": (("url", "b64_json"), "b64_json"),
    "input_fidelity": (("high", "low"), "low"),
}

KNOWN_FIELDS: Final = frozenset(
    {"prompt", "model", "n", "output_compression", "image", "mask", *ENUM_FIELDS}
)
MAX_INPUT_IMAGES: Final = 16
QUEUED_FRACTION: Final = 0.1
"""Share of the latency a task spends `pending` before `processing`."""

# Output tokens of a 1024x1024 image per quality, as OpenAI reports them for gpt-image models.
_OUTPUT_TOKENS: Final = {"low": 272, "medium": 1056, "auto": 1056, "standard": 1056, "high": 4160}
_IMAGE_INPUT_TOKENS: Final = 323

INVALID: Final = 40001
MODERATION: Final = 40003
UNAUTHORIZED: Final = 40100
NOT_FOUND: Final = 40400


@dataclass(frozen=True)
class ImageRequest:
    """A valid request of an OpenAI-shaped dialect: mountsea-async, pmock, the OpenAI clone."""

    prompt: str
    options: dict[str, Any]
    """The enum fields (`size`, `quality`, `background`, ...), named as on the wire."""
    compression: int | None
    images: tuple[str, ...] = ()
    mask: str | None = None

    def render_spec(self, output_format: str, faults: Faults) -> RenderSpec:
        """What to draw: the size, background and inputs asked for, encoded as `output_format`."""
        width, height = SIZES[self.options["size"]]
        return RenderSpec(
            prompt=self.prompt,
            width=width,
            height=height,
            output_format=output_format,
            quality=self.compression,
            transparent=self.options["background"] == "transparent",
            inputs=self.images,
            mask=self.mask,
            noise="noise" in faults,
        )

    def latency_s(self, time_scale: float, faults: Faults) -> float:
        """How long the request takes: mountsea's latency for its quality."""
        return scaled_latency(MOUNTSEA_LATENCY_S[self.options["quality"]], time_scale, faults)


class MountseaAsyncSimulator:
    """Answers mountsea's async OpenAI image endpoints."""

    def __init__(
        self, *, store: TaskStore, api_key: str, time_scale: float, stop: threading.Event
    ) -> None:
        self._store = store
        self._api_key = api_key
        self._time_scale = time_scale
        self._stop = stop

    def handle(self, request: SimRequest) -> SimResponse:
        """Route one request below `/mountsea`."""
        if request.bearer_token() != self._api_key:
            return _error(401, UNAUTHORIZED, "invalid api key")
        if request.method == "POST" and request.path == "/openai/images":
            return self._create(request)
        if request.method == "GET" and request.path == "/openai/tasks":
            return self._query(request)
        return _error(404, NOT_FOUND, f"no route for {request.method} {request.path}")

    def _create(self, request: SimRequest) -> SimResponse:
        try:
            body = request.json()
        except ValueError:
            return _error(400, INVALID, "request body must be valid JSON")
        faults = Faults.parse(
            body.get("prompt") if isinstance(body, dict) else None, "mountsea-async"
        )
        forced = create_fault_response(faults, self._stop)
        if forced is not None:
            return forced
        parsed = _parse_create(body)
        if isinstance(parsed, str):
            return _error(400, INVALID, parsed)
        if "moderation" in faults:
            return _error(400, MODERATION, "request rejected by moderation")
        options = parsed.options
        spec = parsed.render_spec(options["output_format"], faults)
        width, height = spec.width, spec.height
        result_fields = {
            "size": f"{width}x{height}",
            "quality": options["quality"],
            "background": options["background"],
            "output_format": options["output_format"],
            "usage": openai_usage(
                parsed.prompt, len(parsed.images), width * height, options["quality"]
            ),
        }
        task = SimTask(
            provider=PROVIDER,
            task_id=str(uuid.uuid4()),
            spec=spec,
            faults=faults,
            latency_s=parsed.latency_s(self._time_scale, faults),
            queued_fraction=QUEUED_FRACTION,
            details=result_fields,
        )
        self._store.add(task)
        return json_response(200, {"taskId": task.task_id})

    def _query(self, request: SimRequest) -> SimResponse:
        task_id = request.query.get("taskId")
        if not task_id:
            return _error(400, INVALID, "taskId is required")
        task = self._store.get(PROVIDER, task_id)
        if task is None:
            return _error(404, NOT_FOUND, "task not found")
        response = self._task_response(task)
        if task.outcome is not None and "poll-garbage" in task.faults:
            return response.truncated()
        return response

    def _task_response(self, task: SimTask) -> SimResponse:
        outcome = self._store.outcome(task)
        payload: dict[str, Any] = {
            "taskId": task.task_id,
            "status": "pending" if task.phase() is Phase.QUEUED else "processing",
            "result": None,
            "errorMessage": None,
            "errorCode": None,
            "createdAt": iso_timestamp(task.created_at),
            "finishedAt": None,
            "traceId": task.trace_id,
        }
        if outcome is None:
            return json_response(200, payload)
        payload["status"] = outcome.status
        payload["errorMessage"] = outcome.error_message
        payload["errorCode"] = outcome.error_code
        payload["finishedAt"] = iso_timestamp(task.finished_at)
        payload["duration"] = int(task.latency_s * 1000)
        image = self._store.image(task) if outcome.completed else None
        if image is None:
            if outcome.completed:  # Expired between the two looks.
                return _error(404, NOT_FOUND, "task not found")
            return json_response(200, payload)
        details = task.details
        payload["result"] = {
            "created": int(task.finished_at),
            "background": details.get("background"),
            "data": [{"b64_json": BASE64_SLOT}],
            "output_format": details.get("output_format"),
            "quality": details.get("quality"),
            "size": details.get("size"),
            "usage": details.get("usage"),
        }
        return json_with_base64(200, payload, image)


def _parse_create(body: Any) -> ImageRequest | str:
    """The create request, or a message saying what is wrong with it."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    unknown = sorted(set(body) - KNOWN_FIELDS)
    if unknown:
        return f"unknown field(s): {', '.join(unknown)}"
    body = {key: value for key, value in body.items() if value is not None}  # null = absent
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt is required and must be a non-empty string"
    if body.get("model", "gpt-image-2") != "gpt-image-2":
        return "model must be 'gpt-image-2'"
    n = body.get("n", 1)
    if isinstance(n, bool) or n != 1:
        return "n must be 1"
    options: dict[str, Any] = {}
    for name, (allowed, default) in ENUM_FIELDS.items():
        options[name] = body.get(name, default)
        if options[name] not in allowed:
            return f"{name} must be one of {', '.join(allowed)}"
    compression = body.get("output_compression")
    if compression is not None and not is_compression(compression):
        return "output_compression must be an integer from 0 to 100"
    image = body.get("image")
    images: tuple[str, ...] = ()
    if image is not None:
        images = tuple(image) if isinstance(image, list) else (image,)
        if not images or len(images) > MAX_INPUT_IMAGES or not all(map(is_image_reference, images)):
            return (
                "image must be an http(s) URL or base64 data URL, "
                f"or a list of at most {MAX_INPUT_IMAGES} of them"
            )
    mask = body.get("mask")
    if mask is not None:
        if not images:
            return "mask requires image"
        if not is_image_reference(mask):
            return "mask must be an http(s) URL or base64 data URL"
    if options["background"] == "transparent" and options["output_format"] == "jpeg":
        return "background transparent requires output_format png or webp"
    return ImageRequest(prompt, options, compression, images, mask)


def is_compression(value: object) -> bool:
    """True for an `output_compression`: an integer (not a bool) from 0 to 100."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100


def openai_usage(prompt: str, input_images: int, pixels: int, quality: str) -> dict[str, Any]:
    """A plausible, deterministic OpenAI `usage` block for one image of `pixels` pixels."""
    text_tokens = max(1, len(prompt) // 4)
    image_tokens = input_images * _IMAGE_INPUT_TOKENS
    output_tokens = round(_OUTPUT_TOKENS[quality] * pixels / (1024 * 1024))
    return {
        "total_tokens": text_tokens + image_tokens + output_tokens,
        "input_tokens": text_tokens + image_tokens,
        "output_tokens": output_tokens,
        "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
    }


def _error(status: int, code: int, message: str) -> SimResponse:
    return json_response(status, {"errorCode": code, "errorMessage": message})
