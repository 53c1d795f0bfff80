"""apimart simulator: gpt-image-2 create, task query, batch query, webhooks and result files.

Wire format as in apimart's docs (`apimart-gpt-image-2.txt`), served under `/apimart`:

- `POST /v1/images/generations` -> `{"code": 200, "data": [{"status": "submitted", "task_id"}]}`
- `GET /v1/tasks/{task_id}` -> `{"code": 200, "data": {<task>}}`
- `POST /v1/tasks/batch` `{"task_ids": [...]}` -> `{"code": 200, "data": [<task>, ...]}`
- `GET /files/{task_id}/0.png` (no auth): the result image the task's `url` points at.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from devstack.simulator.callbacks import CallbackScheduler, WebhookSender
from devstack.simulator.faults import Faults, create_fault_response
from devstack.simulator.render import RenderSpec, is_image_reference
from devstack.simulator.tasks import (
    APIMART_LATENCY_S,
    SimTask,
    TaskStore,
    new_apimart_task_id,
    scaled_latency,
    whole_seconds,
)
from devstack.simulator.wire import SimRequest, SimResponse, json_response, raw_response

PROVIDER: Final = "apimart"
PREFIX: Final = "/apimart"

APIMART_SIZES: Final[dict[str, dict[str, tuple[int, int]]]] = {
    # ratio: {tier: (width, height)}; for 1k the docs give "a / b" and a is used.
    "1:1": {"1k": (1024, 1024), "2k": (2048, 2048), "4k": (2880, 2880)},
    "3:2": {"1k": (1536, 1024), "2k": (2048, 1360), "4k": (3520, 2336)},
    "2:3": {"1k": (1024, 1536), "2k": (1360, 2048), "4k": (2336, 3520)},
    "4:3": {"1k": (1024, 768), "2k": (2048, 1536), "4k": (3312, 2480)},
    "3:4": {"1k": (768, 1024), "2k": (1536, 2048), "4k": (2480, 3312)},
    "5:4": {"1k": (1280, 1024), "2k": (2560, 2048), "4k": (3216, 2576)},
    "4:5": {"1k": (1024, 1280), "2k": (2048, 2560), "4k": (2576, 3216)},
    "16:9": {"1k": (1536, 864), "2k": (2048, 1152), "4k": (3840, 2160)},
    "9:16": {"1k": (864, 1536), "2k": (1152, 2048), "4k": (2160, 3840)},
    "2:1": {"1k": (2048, 1024), "2k": (2688, 1344), "4k": (3840, 1920)},
    "1:2": {"1k": (1024, 2048), "2k": (1344, 2688), "4k": (1920, 3840)},
    "3:1": {"1k": (1881, 836), "2k": (3072, 1024), "4k": (3840, 1280)},
    "1:3": {"1k": (887, 1774), "2k": (1024, 3072), "4k": (1280, 3840)},
    "21:9": {"1k": (2016, 864), "2k": (2688, 1152), "4k": (3840, 1648)},
    "9:21": {"1k": (864, 2016), "2k": (1152, 2688), "4k": (1648, 3840)},
}
"""size ratio x resolution tier -> output pixels, from the docs' table (`auto` = 1:1)."""

SIZE_RATIOS: Final = ("auto", *APIMART_SIZES)

PIXEL_SIDE_RANGE: Final = (16, 3840)
MAX_PIXELS: Final = 3840 * 2160
"""Limits on a pixel `size` (undocumented; the largest tier in the table has this many)."""

MAX_IMAGE_URLS: Final = 16
RESULT_URL_TTL_S: Final = 24 * 3600
QUEUED_FRACTION: Final = 0.2
"""Share of the latency a task spends `submitted` before `processing`."""

_PIXEL_SIZE: Final = re.compile(r"(\d{1,5})[xX](\d{1,5})")


@dataclass(frozen=True)
class _CreateRequest:
    prompt: str
    width: int
    height: int
    resolution: str
    image_urls: tuple[str, ...]
    webhook: str | None


class ApimartSimulator:
    """Answers apimart's endpoints and sends its webhooks."""

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
        self._stalled: set[str] = set()  # tasks whose first file download was held
        self._stalled_lock = threading.Lock()

    def handle(self, request: SimRequest) -> SimResponse:
        """Route one request below `/apimart`."""
        method, path = request.method, request.path
        if method == "GET" and path.startswith("/files/"):
            return self._file(path)
        if request.bearer_token() != self._api_key:
            return _error(401, "invalid api key", "authentication_error")
        if method == "POST" and path == "/v1/images/generations":
            return self._create(request)
        if method == "POST" and path == "/v1/tasks/batch":
            return self._batch(request)
        if method == "GET" and path.startswith("/v1/tasks/"):
            return self._query(path.removeprefix("/v1/tasks/"))
        return _error(404, f"no route for {method} {path}", "not_found")

    def _create(self, request: SimRequest) -> SimResponse:
        try:
            body = request.json()
        except ValueError:
            return _invalid("request body must be valid JSON")
        faults = Faults.parse(body.get("prompt") if isinstance(body, dict) else None, "apimart")
        forced = create_fault_response(faults, self._stop)
        if forced is not None:
            return forced
        parsed = _parse_create(body)
        if isinstance(parsed, str):
            return _invalid(parsed)
        if "moderation" in faults:
            return _error(400, "prompt rejected by content moderation", "moderation_blocked")
        spec = RenderSpec(
            prompt=parsed.prompt,
            width=parsed.width,
            height=parsed.height,
            inputs=parsed.image_urls,
            noise="noise" in faults,
        )
        latency_s = scaled_latency(APIMART_LATENCY_S[parsed.resolution], self._time_scale, faults)
        task = SimTask(
            provider=PROVIDER,
            task_id=new_apimart_task_id(),
            spec=spec,
            faults=faults,
            latency_s=latency_s,
            queued_fraction=QUEUED_FRACTION,
            webhook=parsed.webhook,
        )
        self._store.add(task)
        if task.webhook and not {"no-callback", "never"} & faults.markers:
            self._scheduler.call_later(task.seconds_until_done(), lambda: self._callback(task))
        return json_response(
            200, {"code": 200, "data": [{"status": "submitted", "task_id": task.task_id}]}
        )

    def _query(self, task_id: str) -> SimResponse:
        task = self._store.get(PROVIDER, task_id)
        if task is None:
            return _error(404, "task does not exist or has expired", "not_found")
        response = json_response(200, {"code": 200, "data": self._task_data(task)})
        if task.outcome is not None and "poll-garbage" in task.faults:
            return response.truncated()
        return response

    def _batch(self, request: SimRequest) -> SimResponse:
        try:
            body = request.json()
        except ValueError:
            return _invalid("request body must be valid JSON")
        task_ids = body.get("task_ids") if isinstance(body, dict) else None
        if not isinstance(task_ids, list) or not all(isinstance(i, str) for i in task_ids):
            return _invalid("task_ids must be a list of task ids")
        tasks = [self._store.get(PROVIDER, task_id) for task_id in task_ids]
        data = [self._task_data(task) for task in tasks if task is not None]
        return json_response(200, {"code": 200, "data": data})

    def _file(self, path: str) -> SimResponse:
        parts = path.split("/")  # ["", "files", task_id, "0.png"]
        task = self._store.get(PROVIDER, parts[2]) if len(parts) == 4 else None
        if task is None or parts[3] != "0.png":
            return _error(404, "file does not exist or has expired", "not_found")
        stall = task.faults.first_download_stall_s
        if stall is not None:
            with self._stalled_lock:
                first = task.task_id not in self._stalled
                self._stalled.add(task.task_id)
            if first:
                self._stop.wait(stall)
        outcome = self._store.outcome(task)
        image = self._store.image(task) if outcome is not None and outcome.completed else None
        if image is None:
            return _error(404, "file does not exist or has expired", "not_found")
        return raw_response(200, image, "image/png")

    def _task_data(self, task: SimTask) -> dict[str, Any]:
        """The `data` object of a task query (also the callback body's)."""
        outcome = self._store.outcome(task)
        created = int(task.created_at)
        data: dict[str, Any] = {"id": task.task_id}
        if outcome is None:
            progress = min(99, task.progress())
            data["status"] = "submitted" if progress == 0 else "processing"
            data["progress"] = progress
            data["created"] = created
            data["estimated_time"] = whole_seconds(task.latency_s)
            return data
        # apimart has no timeout status: a timed-out task is a failed one.
        status = "failed" if outcome.status == "timeout" else outcome.status
        completed = max(created, int(task.finished_at))
        data["status"] = status
        data["progress"] = 100
        if outcome.completed:
            url = f"{self._base_url()}/files/{task.task_id}/0.png"
            if "unreachable-result" in task.faults:  # port 1: nothing listens, refused at once
                url = f"http://127.0.0.1:1/files/{task.task_id}/0.png"
            data["result"] = {
                "images": [
                    {
                        "url": url if "url-string" in task.faults else [url],
                        "expires_at": completed + RESULT_URL_TTL_S,
                    }
                ]
            }
        data["created"] = created
        data["completed"] = completed
        data["estimated_time"] = whole_seconds(task.latency_s)
        data["actual_time"] = completed - created
        if status == "failed":
            data["error"] = {"message": outcome.error_message}
        return data

    def _callback(self, task: SimTask) -> None:
        """Deliver the terminal-state webhook (and the extra ones the faults ask for)."""
        if self._store.outcome(task) is None:
            self._scheduler.call_later(
                task.seconds_until_done() + 0.01, lambda: self._callback(task)
            )
            return
        assert task.webhook is not None
        url = task.webhook + "/callback"
        body = json.dumps({"code": 200, "data": self._task_data(task)}).encode()
        extra_delays: list[float] = []
        if "duplicate-callback" in task.faults:
            extra_delays.append(0.0)
        if "late-callback" in task.faults:
            extra_delays.append(max(0.2, 2.0 * self._time_scale))
        self._sender.deliver_series(url, body, task.task_id, extra_delays)


def _parse_create(body: Any) -> _CreateRequest | str:
    """The create request, or a message saying what is wrong with it."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    body = {key: value for key, value in body.items() if value is not None}  # null = absent
    if body.get("model") != "gpt-image-2":
        return "model must be 'gpt-image-2'"
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt is required and must be a non-empty string"
    n = body.get("n", 1)
    if isinstance(n, bool) or n != 1:
        return "n must be 1"
    resolution = body.get("resolution", "1k")
    if not isinstance(resolution, str) or resolution.lower() not in APIMART_LATENCY_S:
        return "resolution must be one of 1k, 2k, 4k"
    pixels = _pixels(body.get("size", "auto"), resolution.lower())
    if isinstance(pixels, str):
        return pixels
    image_urls = body.get("image_urls") or []
    if (
        not isinstance(image_urls, list)
        or len(image_urls) > MAX_IMAGE_URLS
        or not all(is_image_reference(url) for url in image_urls)
    ):
        return f"image_urls must be a list of at most {MAX_IMAGE_URLS} http(s) or data URLs"
    if not isinstance(body.get("official_fallback", False), bool):
        return "official_fallback must be a boolean"
    webhook = body.get("webhook")
    if webhook is not None and not (
        isinstance(webhook, str) and webhook.startswith(("http://", "https://"))
    ):
        return "webhook must be an http(s) URL"
    return _CreateRequest(
        prompt, pixels[0], pixels[1], resolution.lower(), tuple(image_urls), webhook
    )


def _pixels(size: Any, resolution: str) -> tuple[int, int] | str:
    """Output pixels for a size (ratio or WxH) and tier, or a message saying what is wrong."""
    if not isinstance(size, str):
        return "size must be a string"
    ratio = "1:1" if size == "auto" else size
    if ratio in APIMART_SIZES:
        return APIMART_SIZES[ratio][resolution]
    match = _PIXEL_SIZE.fullmatch(size.strip())
    if match is None:
        return f"size must be one of {', '.join(SIZE_RATIOS)} or a pixel size WxH"
    width, height = int(match.group(1)), int(match.group(2))
    low, high = PIXEL_SIDE_RANGE
    if not (low <= width <= high and low <= height <= high) or width * height > MAX_PIXELS:
        return f"pixel size sides must be {low}-{high} and at most {MAX_PIXELS} pixels in all"
    return width, height


def _error(status: int, message: str, error_type: str) -> SimResponse:
    return json_response(
        status, {"code": status, "error": {"message": message, "type": error_type}}
    )


def _invalid(message: str) -> SimResponse:
    return _error(400, message, "invalid_request_error")
