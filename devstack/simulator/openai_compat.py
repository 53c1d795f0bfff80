"""The synchronous OpenAI Images API dialect, mounted twice: `openai` and `mountsea-compat`.

- `openai`, under `/openai`: `POST /v1/images/generations` and `POST /v1/images/edits`.
- `mountsea-compat`, inside mountsea's base (`/mountsea`): `POST /openai/v1/images/generations`
  and `POST /openai/v1/images/edits` (`mountsea-overview-async-and-compat.txt`: the official
  `openai` SDK works against `{base}/openai/v1`).

generations takes JSON, edits multipart/form-data (`image` / `image[]` file parts, up to 16,
and an optional `mask` file part: a PNG with alpha whose transparent pixels are repainted).
Both hold the request for the task's latency (`tasks.MOUNTSEA_LATENCY_S` per quality, times
`time_scale`) and then answer `{"created", "background", "output_format", "quality", "size",
"data": [{"b64_json"}], "usage"}`, with `auto` background and quality resolved to what was drawn
(`opaque`, `medium`), as OpenAI reports them. Errors are OpenAI's
`{"error": {"message", "type", "param", "code"}}`; unknown fields are rejected (400).
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

from PIL import Image

from devstack.simulator.faults import CREATE_TIMEOUT_S, Faults, create_fault_response
from devstack.simulator.mountsea import ImageRequest, is_compression, openai_usage
from devstack.simulator.tasks import (
    INPUT_IMAGE_ERROR,
    SIMULATED_FAILURE,
    SimTask,
    TaskStore,
)
from devstack.simulator.wire import (
    BASE64_SLOT,
    FormData,
    FormFile,
    SimRequest,
    SimResponse,
    json_response,
    json_with_base64,
)

OPENAI: Final = "openai"
OPENAI_PREFIX: Final = "/openai"
OPENAI_API_ROOT: Final = "/v1"
MOUNTSEA_COMPAT: Final = "mountsea-compat"
MOUNTSEA_COMPAT_API_ROOT: Final = "/openai/v1"
"""Below mountsea's prefix (`mountsea.PREFIX`), which the compat API shares with mountsea-async."""

MODEL: Final = "gpt-image-2"
SIZES: Final = {
    "auto": (1024, 1024),
    "1024x1024": (1024, 1024),
    "1536x1024": (1536, 1024),
    "1024x1536": (1024, 1536),
}
"""`mountsea.SIZES` (which `ImageRequest.render_spec` draws), in the order OpenAI lists them."""
GENERATION_ENUMS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    # field: (allowed values, default)
    "size": (tuple(SIZES), "auto"),
    "quality": (("auto", "low", "medium", "high"), "auto"),
    "background": (("transparent", "opaque", "auto"), "auto"),
    "output_format": (("png", "jpeg", "webp"), "png"),
    "moderation": (("auto", "low"), "auto"),
}
EDIT_ENUMS: Final = {**GENERATION_ENUMS, "input_fidelity": (("high", "low"), "low")}
GENERATION_FIELDS: Final = frozenset(
    {"prompt", "model", "n", "output_compression", "user", *GENERATION_ENUMS}
)
EDIT_FIELDS: Final = frozenset({"prompt", "model", "n", "output_compression", "user", *EDIT_ENUMS})
"""Text fields of an edit; its files are `image` / `image[]` and `mask`."""
IMAGE_PARTS: Final = ("image", "image[]")
MASK_PART: Final = "mask"
MAX_INPUT_IMAGES: Final = 16

RESOLVED_AUTO: Final = {"background": "opaque", "quality": "medium"}
"""What `auto` turns into in the answer (what was drawn, as OpenAI reports it)."""

MODERATION_MESSAGE: Final = (
    "Your request was rejected as a result of our safety system (simulated)."
)
_BLOCKED: Final = "moderation_blocked"
_MISSING: Final = "missing_required_parameter"


@dataclass(frozen=True)
class _Problem:
    """A 400 answer: what is wrong, which param, OpenAI's code for it."""

    message: str
    param: str | None = None
    code: str | None = "invalid_value"


class OpenAICompatSimulator:
    """Answers the OpenAI Images API (generations, edits) synchronously, for one provider."""

    def __init__(
        self,
        *,
        provider: str,
        api_root: str,
        store: TaskStore,
        api_key: str,
        time_scale: float,
        stop: threading.Event,
    ) -> None:
        self._provider = provider
        self._api_root = api_root
        self._store = store
        self._api_key = api_key
        self._time_scale = time_scale
        self._stop = stop

    def handle(self, request: SimRequest) -> SimResponse:
        """Route one request below the provider's prefix (the paths start with `api_root`)."""
        if request.bearer_token() != self._api_key:
            return _error(
                401, "Incorrect API key provided.", "invalid_request_error", None, "invalid_api_key"
            )
        if request.method == "POST" and request.path == self._api_root + "/images/generations":
            return self._generate(request, edit=False)
        if request.method == "POST" and request.path == self._api_root + "/images/edits":
            return self._generate(request, edit=True)
        message = f"Invalid URL ({request.method} {request.path})"
        return _error(404, message, "invalid_request_error")

    def _generate(self, request: SimRequest, *, edit: bool) -> SimResponse:
        body: FormData | Any
        try:
            body = request.form() if edit else request.json()
        except ValueError as exc:
            if edit:
                return _invalid(_Problem(f"Invalid multipart/form-data body: {exc}", code=None))
            return _invalid(_Problem("We could not parse the JSON body of your request.", None))
        prompt = body.get("prompt") if isinstance(body, FormData | dict) else None
        faults = Faults.parse(prompt, self._provider)
        unavailable = _error(503, "upstream unavailable", "server_error")
        forced = create_fault_response(faults, self._stop, unavailable)
        if forced is not None:
            return forced
        parsed = _parse_edit(body) if isinstance(body, FormData) else _parse_generation(body)
        if isinstance(parsed, _Problem):
            return _invalid(parsed)
        if "moderation" in faults:
            return _error(400, MODERATION_MESSAGE, "image_generation_user_error", None, _BLOCKED)
        if "never" in faults:
            self._stop.wait(CREATE_TIMEOUT_S)
            return _error(504, "generation timed out (simulated)", "server_error")
        return self._render(parsed, faults)

    def _render(self, parsed: ImageRequest, faults: Faults) -> SimResponse:
        """Hold the request for the latency, draw the image, answer it inline."""
        options = parsed.options
        spec = parsed.render_spec(options["output_format"], faults)
        width, height = spec.width, spec.height
        task = SimTask(
            provider=self._provider,
            task_id=str(uuid.uuid4()),
            spec=spec,
            faults=faults,
            latency_s=parsed.latency_s(self._time_scale, faults),
            queued_fraction=0.0,  # Never polled: a sync request has no visible queue.
        )
        if not task.wait_until_done(self._stop):
            return _error(503, "simulator stopping", "server_error")
        outcome, image = self._store.finish_unkept(task)
        if image is None:
            message = outcome.error_message or SIMULATED_FAILURE
            if outcome.error_code == INPUT_IMAGE_ERROR:
                param = "mask" if message.startswith("mask") else "image"
                return _invalid(_Problem(message, param, "invalid_image"))
            return _error(500, message, "server_error")
        quality = _resolved("quality", options["quality"])
        payload = {
            "created": int(time.time()),
            "background": _resolved("background", options["background"]),
            "output_format": options["output_format"],
            "quality": quality,
            "size": f"{width}x{height}",
            "data": [{"b64_json": BASE64_SLOT}],
            "usage": openai_usage(parsed.prompt, len(parsed.images), width * height, quality),
        }
        return json_with_base64(200, payload, image)


def _parse_generation(body: Any) -> ImageRequest | _Problem:
    """A generations request (JSON), or what is wrong with it."""
    if not isinstance(body, dict):
        return _Problem("The request body must be a JSON object.", code=None)
    unknown = sorted(set(body) - GENERATION_FIELDS)
    if unknown:
        return _Problem(f"Unknown parameter: '{unknown[0]}'.", unknown[0], "unknown_parameter")
    body = {key: value for key, value in body.items() if value is not None}  # null = absent
    return _parse_fields(body, GENERATION_ENUMS)


def _parse_edit(form: FormData) -> ImageRequest | _Problem:
    """An edits request (multipart/form-data), or what is wrong with it."""
    for name, _ in form.fields:
        if name in (*IMAGE_PARTS, MASK_PART):
            return _Problem(f"'{name}' must be a file part.", name)
        if name not in EDIT_FIELDS:
            return _Problem(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    for part in form.files:
        if part.field not in (*IMAGE_PARTS, MASK_PART):
            return _Problem(f"Unknown parameter: '{part.field}'.", part.field, "unknown_parameter")
    images = form.files_named(*IMAGE_PARTS)
    if not images:
        return _Problem("Missing required parameter: 'image'.", "image", _MISSING)
    if len(images) > MAX_INPUT_IMAGES:
        return _Problem(f"At most {MAX_INPUT_IMAGES} images can be edited together.", "image")
    masks = form.files_named(MASK_PART)
    if len(masks) > 1:
        return _Problem("Only one mask can be given.", MASK_PART)
    mask_problem = _mask_problem(masks[0]) if masks else None
    if mask_problem is not None:
        return _Problem(mask_problem, MASK_PART, "invalid_image")
    fields: dict[str, Any] = {}
    for name, value in form.fields:
        fields.setdefault(name, value)
    for name in ("n", "output_compression"):  # Form fields are text; these are integers.
        if name in fields:
            number = fields[name].strip()
            fields[name] = int(number) if number.isdecimal() else number
    parsed = _parse_fields(fields, EDIT_ENUMS)
    if isinstance(parsed, _Problem):
        return parsed
    return ImageRequest(
        parsed.prompt,
        parsed.options,
        parsed.compression,
        tuple(image.data_url() for image in images),
        masks[0].data_url() if masks else None,
    )


def _parse_fields(
    body: dict[str, Any], enums: dict[str, tuple[tuple[str, ...], str]]
) -> ImageRequest | _Problem:
    """Check the fields both endpoints share (files aside)."""
    prompt = body.get("prompt")
    if prompt is None:
        return _Problem("Missing required parameter: 'prompt'.", "prompt", _MISSING)
    if not isinstance(prompt, str) or not prompt.strip():
        return _Problem("'prompt' must be a non-empty string.", "prompt")
    if "model" not in body:
        return _Problem("Missing required parameter: 'model'.", "model", _MISSING)
    if body["model"] != MODEL:
        return _Problem(f"'model' must be '{MODEL}'.", "model")
    n = body.get("n", 1)
    if isinstance(n, bool) or n != 1:
        return _Problem("'n' must be 1.", "n")
    options: dict[str, Any] = {}
    for name, (allowed, default) in enums.items():
        options[name] = body.get(name, default)
        if options[name] not in allowed:
            return _Problem(f"'{name}' must be one of {', '.join(allowed)}.", name)
    compression = body.get("output_compression")
    if compression is not None and not is_compression(compression):
        return _Problem(
            "'output_compression' must be an integer from 0 to 100.", "output_compression"
        )
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        return _Problem("'user' must be a string.", "user")
    if options["background"] == "transparent" and options["output_format"] == "jpeg":
        return _Problem("Transparent background requires output_format png or webp.", "background")
    return ImageRequest(prompt, options, compression)


def _mask_problem(mask: FormFile) -> str | None:
    """What is wrong with a mask file (it must be a PNG with an alpha channel), or None."""
    try:
        picture = Image.open(io.BytesIO(mask.data))
        picture.load()
    except Exception:  # Pillow decoders raise many unrelated exception types.
        return "Invalid mask image: not a decodable image."
    if picture.format != "PNG":
        return f"Invalid mask image format: {picture.format}; the mask must be a PNG."
    if picture.mode not in ("RGBA", "LA", "PA") and "transparency" not in picture.info:
        return "Invalid mask image format: the mask image has no alpha channel."
    return None


def _resolved(name: str, value: str) -> str:
    return RESOLVED_AUTO[name] if value == "auto" else value


def _error(
    status: int,
    message: str,
    error_type: str,
    param: str | None = None,
    code: str | None = None,
) -> SimResponse:
    payload = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return json_response(status, payload)


def _invalid(problem: _Problem) -> SimResponse:
    return _error(400, problem.message, "invalid_request_error", problem.param, problem.code)
