"""apimodels simulator: gpt-image-2-all, sync (inline image) or async (task, poll, callback).

Wire format as in apimodels' docs (`apimodels-gpt-image-2.txt`), served under `/apimodels`:

- `POST /api/v1/images/generations` (JSON) and `POST /api/v1/images/edits` (multipart/form-data:
  text fields, `image` / `image[]` file parts, an optional `mask` file part).
- Sync mode, a `size` WxH and no `callback_url`: the answer is held for the task's latency, then
  `{"created", "data": [{"b64_json", "url"}]}`.
- Async mode, `aspect_ratio` + `resolution` (or `size` with a `callback_url`):
  `{"code": 200, "data": {"taskId"}}`; `GET /api/v1/images/generations?task_id=...` answers
  `{"code": 200, "data": {"taskId", "status", "result", "error", "createdAt", "completedAt"}}`
  (statuses `pending`, `processing`, `completed`, `failed`), and the same JSON is POSTed to
  `callback_url` (exactly that URL) once the task is terminal.
- `GET /files/{task_id}/0.png` (no auth): the result image a `url` points at.

Undocumented, and chosen here: the poll and callback bodies; timestamps as ISO 8601 strings;
errors in OpenAI's shape `{"error": {"message", "type", "code"}}`; unknown fields are ignored;
every reference field may be a URL, a data URL or raw base64; several reference fields add up
(16 at most); `response_format` is checked but a sync answer always carries both `b64_json` and
`url`; when `size` is given it decides the pixels and `aspect_ratio` / `resolution` are ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from devstack.simulator.callbacks import CallbackScheduler, WebhookSender
from devstack.simulator.faults import CREATE_TIMEOUT_S, Faults, create_fault_response
from devstack.simulator.render import RenderSpec, is_image_reference
from devstack.simulator.tasks import (
    APIMODELS_LATENCY_S,
    INPUT_IMAGE_ERROR,
    SIMULATED_FAILURE,
    Phase,
    SimTask,
    TaskStore,
    iso_timestamp,
    scaled_latency,
)
from devstack.simulator.wire import (
    BASE64_SLOT,
    FormData,
    SimRequest,
    SimResponse,
    json_response,
    json_with_base64,
    raw_response,
)

PROVIDER: Final = "apimodels"
PREFIX: Final = "/apimodels"

MODEL: Final = "gpt-image-2-all"
QUALITIES: Final = ("low", "medium", "high", "auto")
BACKGROUNDS: Final = ("transparent", "opaque", "auto")
RESPONSE_FORMATS: Final = ("b64_json", "url")
ASPECT_RATIOS: Final = (
    "1:1",
    "3:2",
    "2:3",
    "4:3",
    "3:4",
    "5:4",
    "4:5",
    "16:9",
    "9:16",
    "2:1",
    "1:2",
    "3:1",
    "1:3",
    "21:9",
    "9:21",
)
TIER_LONG_EDGE: Final = {"1K": 1536, "2K": 2048, "4K": 3840}
"""Long edge of a derived size per resolution tier (1:1 at 1K is 1024x1024)."""

SIDE_MULTIPLE: Final = 16
MAX_LONG_EDGE: Final = 3840
MAX_ASPECT_RATIO: Final = 3
MIN_PIXELS: Final = 655_360
MAX_PIXELS: Final = 8_294_400
"""The documented limits on an arbitrary WxH size."""

MAX_REFERENCES: Final = 16
QUEUED_FRACTION: Final = 0.1
"""Share of the latency a task spends `pending` before `processing`."""

MODERATION_MESSAGE: Final = "prompt rejected by content moderation"
SINGLE_REFERENCE_FIELDS: Final = ("image", "image_base64", "image_url")
LIST_REFERENCE_FIELDS: Final = ("image_urls", "images")
MASK_FIELDS: Final = ("mask_url", "mask_base64")

_PIXEL_SIZE: Final = re.compile(r"(\d{1,5})[xX](\d{1,5})")


@dataclass(frozen=True)
class _CreateRequest:
    prompt: str
    width: int
    height: int
    quality: str
    transparent: bool
    references: tuple[str, ...]
    mask: str | None
    callback_url: str | None
    sync: bool


class ApimodelsSimulator:
    """Answers apimodels' image endpoints (sync and async) and sends its callbacks."""

    def __init__(
        self,
        *,
        store: TaskStore,
        scheduler: CallbackScheduler,
        sender: WebhookSender,
        base_url: Callable[[], str],
        api_key: str,
        time_scale: float,
        stop: threading.Event,
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self._sender = sender
        self._base_url = base_url
        self._api_key = api_key
        self._time_scale = time_scale
        self._stop = stop

    def handle(self, request: SimRequest) -> SimResponse:
        """Route one request below `/apimodels`."""
        method, path = request.method, request.path
        if method == "GET" and path.startswith("/files/"):
            return self._file(path)
        if request.bearer_token() != self._api_key:
            return _error(401, "invalid api key", "authentication_error", "invalid_api_key")
        if method == "POST" and path == "/api/v1/images/generations":
            return self._create(request, edits=False)
        if method == "POST" and path == "/api/v1/images/edits":
            return self._create(request, edits=True)
        if method == "GET" and path == "/api/v1/images/generations":
            return self._query(request)
        return _error(404, f"no route for {method} {path}", "not_found")

    def _create(self, request: SimRequest, *, edits: bool) -> SimResponse:
        body: FormData | Any
        try:
            body = request.form() if edits else request.json()
        except ValueError as exc:
            if edits:
                return _invalid(f"the edits endpoint takes multipart/form-data: {exc}")
            return _invalid("request body must be valid JSON")
        prompt = body.get("prompt") if isinstance(body, FormData | dict) else None
        faults = Faults.parse(prompt, PROVIDER)
        unavailable = _error(503, "upstream unavailable", "server_error")
        forced = create_fault_response(faults, self._stop, unavailable)
        if forced is not None:
            return forced
        parsed = _parse_form(body) if isinstance(body, FormData) else _parse_json(body)
        if isinstance(parsed, str):
            return _invalid(parsed)
        if "moderation" in faults:
            return _error(400, MODERATION_MESSAGE, "moderation_blocked", "moderation_blocked")
        spec = RenderSpec(
            prompt=parsed.prompt,
            width=parsed.width,
            height=parsed.height,
            transparent=parsed.transparent,
            inputs=parsed.references,
            mask=parsed.mask,
            noise="noise" in faults,
        )
        latency_s = scaled_latency(APIMODELS_LATENCY_S[parsed.quality], self._time_scale, faults)
        task = SimTask(
            provider=PROVIDER,
            task_id=str(uuid.uuid4()),
            spec=spec,
            faults=faults,
            latency_s=latency_s,
            queued_fraction=QUEUED_FRACTION,
            webhook=parsed.callback_url,
        )
        if parsed.sync:
            return self._generate_now(task)
        self._store.add(task)
        if task.webhook and not {"no-callback", "never"} & faults.markers:
            self._scheduler.call_later(task.seconds_until_done(), lambda: self._callback(task))
        return json_response(200, {"code": 200, "data": {"taskId": task.task_id}})

    def _generate_now(self, task: SimTask) -> SimResponse:
        """Sync mode: hold the request for the task's latency, then answer the image inline."""
        if "never" in task.faults:
            self._stop.wait(CREATE_TIMEOUT_S)
            return _error(504, "generation timed out (simulated)", "server_error")
        self._store.add(task)  # Kept, so the answer's `url` serves the image.
        if not task.wait_until_done(self._stop):
            return _error(503, "simulator stopping", "server_error")
        outcome = self._store.outcome(task)
        if outcome is None or not outcome.completed:
            message = outcome.error_message if outcome else None
            if outcome is not None and outcome.error_code == INPUT_IMAGE_ERROR:
                return _invalid(message or "invalid input image")
            return _error(500, message or SIMULATED_FAILURE, "server_error")
        image = self._store.image(task)
        if image is None:  # Expired at once: the store is full of larger images.
            return _error(500, "result expired", "server_error")
        payload = {
            "created": int(task.finished_at),
            "data": [{"b64_json": BASE64_SLOT, "url": self._file_url(task)}],
        }
        return json_with_base64(200, payload, image)

    def _query(self, request: SimRequest) -> SimResponse:
        task_id = request.query.get("task_id")
        if not task_id:
            return _invalid("task_id is required")
        task = self._store.get(PROVIDER, task_id)
        if task is None:
            return json_response(404, {"error": {"message": "task not found", "type": "not_found"}})
        response = json_response(200, self._task_payload(task))
        if task.outcome is not None and "poll-garbage" in task.faults:
            return response.truncated()
        return response

    def _task_payload(self, task: SimTask) -> dict[str, Any]:
        """The poll answer for a task (also the callback's body)."""
        outcome = self._store.outcome(task)
        data: dict[str, Any] = {
            "taskId": task.task_id,
            "status": "pending" if task.phase() is Phase.QUEUED else "processing",
            "result": None,
            "error": None,
            "createdAt": iso_timestamp(task.created_at),
            "completedAt": None,
        }
        if outcome is not None:
            data["completedAt"] = iso_timestamp(task.finished_at)
            if outcome.completed:
                data["status"] = "completed"
                data["result"] = {
                    "created": int(task.finished_at),
                    "data": [{"url": self._file_url(task)}],
                }
            else:  # apimodels has no cancelled or timeout status.
                data["status"] = "failed"
                data["error"] = {"message": outcome.error_message}
        return {"code": 200, "data": data}

    def _file(self, path: str) -> SimResponse:
        parts = path.split("/")  # ["", "files", task_id, "0.png"]
        task = self._store.get(PROVIDER, parts[2]) if len(parts) == 4 else None
        outcome = self._store.outcome(task) if task is not None else None
        image = self._store.image(task) if task is not None and outcome is not None else None
        if image is None or parts[3] != "0.png":
            return _error(404, "file does not exist or has expired", "not_found")
        return raw_response(200, image, "image/png")

    def _file_url(self, task: SimTask) -> str:
        return f"{self._base_url()}/files/{task.task_id}/0.png"

    def _callback(self, task: SimTask) -> None:
        """POST the terminal task to its callback_url (and again if the faults ask for it)."""
        if self._store.outcome(task) is None:
            self._scheduler.call_later(
                task.seconds_until_done() + 0.01, lambda: self._callback(task)
            )
            return
        assert task.webhook is not None
        body = json.dumps(self._task_payload(task)).encode()
        extra_delays: list[float] = []
        if "duplicate-callback" in task.faults:
            extra_delays.append(0.0)
        if "late-callback" in task.faults:
            extra_delays.append(max(0.2, 2.0 * self._time_scale))
        self._sender.deliver_series(task.webhook, body, task.task_id, extra_delays)


def derived_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """The pixels apimodels derives for an aspect ratio (`16:9`) and a tier (`1K`|`2K`|`4K`).

    The long edge is the tier's (1536, 2048, 3840; but 1:1 at 1K is 1024x1024), the short one
    the long one times the ratio, rounded to a multiple of 16. A size over 8,294,400 pixels is
    scaled down to fit, both sides floored to multiples of 16 (1:1 at 4K is 2880x2880).
    """
    tier = resolution.upper()
    first, second = (int(part) for part in aspect_ratio.split(":"))
    if tier == "1K" and first == second:
        return 1024, 1024
    long_edge = TIER_LONG_EDGE[tier]
    short_edge = round(long_edge * min(first, second) / max(first, second) / SIDE_MULTIPLE)
    short_edge *= SIDE_MULTIPLE
    width, height = (long_edge, short_edge) if first >= second else (short_edge, long_edge)
    if width * height > MAX_PIXELS:
        # Exact integer scaling: width * sqrt(MAX / (width * height)) = sqrt(MAX * width / height).
        width, height = (
            _floor_to_multiple(math.isqrt(MAX_PIXELS * width // height)),
            _floor_to_multiple(math.isqrt(MAX_PIXELS * height // width)),
        )
    return width, height


def size_problem(width: int, height: int) -> str | None:
    """What breaks the documented rules for an arbitrary WxH size, or None when it is valid."""
    long_edge, short_edge = max(width, height), min(width, height)
    if short_edge <= 0 or width % SIDE_MULTIPLE or height % SIDE_MULTIPLE:
        return f"size sides must be positive multiples of {SIDE_MULTIPLE}"
    if long_edge > MAX_LONG_EDGE:
        return f"size long edge must be at most {MAX_LONG_EDGE}"
    if long_edge > MAX_ASPECT_RATIO * short_edge:
        return f"size aspect ratio must be at most {MAX_ASPECT_RATIO}:1"
    if not MIN_PIXELS <= width * height <= MAX_PIXELS:
        return f"size must have {MIN_PIXELS:,} to {MAX_PIXELS:,} pixels"
    return None


def _floor_to_multiple(value: int) -> int:
    return value // SIDE_MULTIPLE * SIDE_MULTIPLE


def _parse_json(body: Any) -> _CreateRequest | str:
    """A generations request (JSON, references as strings), or what is wrong with it."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    body = {key: value for key, value in body.items() if value is not None}  # null = absent
    references: list[str] = []
    for name in SINGLE_REFERENCE_FIELDS:
        if name in body:
            reference = _reference(body[name])
            if reference is None:
                return f"{name} must be an http(s) URL, a base64 data URL or base64"
            references.append(reference)
    for name in LIST_REFERENCE_FIELDS:
        if name in body:
            value = body[name]
            listed = [_reference(item) for item in value] if isinstance(value, list) else [None]
            if not all(listed):
                return f"{name} must be a list of http(s) URLs, base64 data URLs or base64"
            references.extend(reference for reference in listed if reference)
    masks = [name for name in MASK_FIELDS if name in body]
    if len(masks) > 1:
        return f"give only one of {', '.join(MASK_FIELDS)}"
    mask = _reference(body[masks[0]]) if masks else None
    if masks and mask is None:
        return f"{masks[0]} must be an http(s) URL, a base64 data URL or base64"
    return _parse_fields(body, tuple(references), mask)


def _parse_form(form: FormData) -> _CreateRequest | str:
    """An edits request (multipart, images as file parts), or what is wrong with it."""
    images = form.files_named("image", "image[]")
    if not images:
        return "image is required: one or more `image` file parts"
    masks = form.files_named("mask")
    if len(masks) > 1:
        return "give at most one mask file part"
    fields: dict[str, str] = {}
    for name, value in form.fields:
        fields.setdefault(name, value)
    references = tuple(image.data_url() for image in images)
    return _parse_fields(fields, references, masks[0].data_url() if masks else None)


def _parse_fields(
    fields: Mapping[str, Any], references: tuple[str, ...], mask: str | None
) -> _CreateRequest | str:
    """Check the fields both endpoints share and pick sync or async mode."""
    if fields.get("model") != MODEL:
        return f"model must be '{MODEL}'"
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt is required and must be a non-empty string"
    if _integer(fields.get("n", 1)) != 1:
        return "n must be 1"
    quality = fields.get("quality", "medium")
    if quality not in QUALITIES:
        return f"quality must be one of {', '.join(QUALITIES)}"
    background = fields.get("background", "auto")
    if background not in BACKGROUNDS:
        return f"background must be one of {', '.join(BACKGROUNDS)}"
    if fields.get("response_format", "b64_json") not in RESPONSE_FORMATS:
        return f"response_format must be one of {', '.join(RESPONSE_FORMATS)}"
    if len(references) > MAX_REFERENCES:
        return f"at most {MAX_REFERENCES} reference images in all"
    if mask is not None and not references:
        return "a mask requires a reference image"
    callback_url = fields.get("callback_url")
    if callback_url is not None and not (
        isinstance(callback_url, str) and callback_url.startswith(("http://", "https://"))
    ):
        return "callback_url must be an http(s) URL"
    pixels = _pixels(fields)
    if isinstance(pixels, str):
        return pixels
    return _CreateRequest(
        prompt=prompt,
        width=pixels[0],
        height=pixels[1],
        quality=quality,
        transparent=background == "transparent",
        references=references,
        mask=mask,
        callback_url=callback_url,
        sync="size" in fields and callback_url is None,
    )


def _pixels(fields: Mapping[str, Any]) -> tuple[int, int] | str:
    """Output pixels from `size` WxH, else from `aspect_ratio` + `resolution`."""
    size = fields.get("size")
    if size is not None:
        match = _PIXEL_SIZE.fullmatch(size.strip()) if isinstance(size, str) else None
        if match is None:
            return "size must be WxH (e.g. 2048x1152); or give aspect_ratio and resolution"
        width, height = int(match.group(1)), int(match.group(2))
        problem = size_problem(width, height)
        return problem if problem is not None else (width, height)
    aspect_ratio, resolution = fields.get("aspect_ratio"), fields.get("resolution")
    if aspect_ratio is None and resolution is None:
        return "give size WxH, or aspect_ratio and resolution"
    if aspect_ratio not in ASPECT_RATIOS:
        return f"aspect_ratio must be one of {', '.join(ASPECT_RATIOS)}"
    if not isinstance(resolution, str) or resolution.upper() not in TIER_LONG_EDGE:
        return f"resolution must be one of {', '.join(TIER_LONG_EDGE)}"
    return derived_size(aspect_ratio, resolution)


def _reference(value: object) -> str | None:
    """An image reference as a URL or data URL (raw base64 gets a data URL), or None."""
    if not isinstance(value, str):
        return None
    if is_image_reference(value):
        return value
    try:
        decoded = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return f"data:image/png;base64,{value}" if decoded else None


def _integer(value: object) -> int | None:
    """A JSON integer or a form field's decimal digits as an int, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value)
    return None


def _error(status: int, message: str, error_type: str, code: str | None = None) -> SimResponse:
    return json_response(status, {"error": {"message": message, "type": error_type, "code": code}})


def _invalid(message: str) -> SimResponse:
    return _error(400, message, "invalid_request_error")
