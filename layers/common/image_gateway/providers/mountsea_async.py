"""mountsea-async: ``POST /openai/images`` then poll ``GET /openai/tasks?taskId=``; no callback.

Documented in shared/providers/mountsea-async-task-api.txt. ``result`` is the upstream OpenAI
images response (``data[].b64_json``); a bare base64 string is accepted too. Undocumented and
chosen here: error bodies are read as ``{"errorCode": N, "errorMessage": "..."}``; code 40003 or
a message mentioning moderation is a moderation refusal.
"""

from __future__ import annotations

from typing import Any, ClassVar

from image_gateway.errors import ProviderError, Unprocessable
from image_gateway.images.json_blobs import Blob
from image_gateway.models.request import ImageRequest
from image_gateway.providers.base import (
    HttpCall,
    Provider,
    ProviderInputs,
    ProviderState,
    ProviderStatus,
    ResultImage,
    looks_like_moderation,
)

SUPPORTED_SIZES = ("auto", "1024x1024", "1024x1536", "1536x1024")
_RATIO_SIZES = {"1:1": "1024x1024", "2:3": "1024x1536", "3:2": "1536x1024"}
_STATES = {
    "pending": ProviderState.PENDING,
    "ready": ProviderState.PENDING,
    "assigned": ProviderState.PENDING,
    "processing": ProviderState.RUNNING,
    "completed": ProviderState.SUCCEEDED,
    "failed": ProviderState.FAILED,
    "cancelled": ProviderState.FAILED,
    "timeout": ProviderState.FAILED,
}
# Docs: "tasks typically complete in 10-60 seconds depending on quality and size".
_LATENCY = {"low": 15.0, "medium": 30.0, "auto": 30.0, "high": 45.0}
_MODERATION_CODES = {40003}


class MountseaAsyncProvider(Provider):
    """The Mountsea async task dialect."""

    name: ClassVar[str] = "mountsea-async"
    supports_callback: ClassVar[bool] = False
    poll_interval_seconds: ClassVar[float] = 3.0

    def create_call(
        self, request: ImageRequest, inputs: ProviderInputs, callback_url: str | None
    ) -> HttpCall:
        """POST /openai/images with OpenAI field names; ``image`` present means edit."""
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "model": request.model,
            "size": self._size(request),
            "n": 1,
            "quality": request.quality,
            "background": request.background,
            "output_format": request.output_format,
            "moderation": request.moderation,
        }
        if request.output_compression is not None:
            body["output_compression"] = request.output_compression
        if inputs.images:
            body["image"] = inputs.images[0] if len(inputs.images) == 1 else list(inputs.images)
            if request.input_fidelity is not None:
                body["input_fidelity"] = request.input_fidelity
        if inputs.mask is not None:
            body["mask"] = inputs.mask
        return HttpCall("POST", "/openai/images", json=body)

    def _size(self, request: ImageRequest) -> str:
        if request.aspect_ratio is not None:
            size = _RATIO_SIZES.get(request.aspect_ratio)
            if size is None or request.tier() != "1K":
                raise Unprocessable(
                    f"mountsea-async cannot make {request.aspect_ratio} at "
                    f"{request.tier()}; it supports sizes {', '.join(SUPPORTED_SIZES)}",
                    provider=self.name,
                    field="aspect_ratio",
                    supported=list(SUPPORTED_SIZES),
                )
            return size
        if request.size not in SUPPORTED_SIZES:
            raise Unprocessable(
                f"mountsea-async cannot make {request.size}; "
                f"it supports sizes {', '.join(SUPPORTED_SIZES)}",
                provider=self.name,
                field="size",
                supported=list(SUPPORTED_SIZES),
            )
        return request.size

    def parse_create(self, status_code: int, body: Any) -> str:
        """``{"taskId": "..."}``."""
        self._raise_for_error(status_code, body)
        task_id = body.get("taskId") if isinstance(body, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise self.bad_response("a create body without taskId")
        return task_id

    def status_call(self, provider_task_id: str) -> HttpCall:
        """GET /openai/tasks?taskId=..."""
        return HttpCall("GET", "/openai/tasks", params={"taskId": provider_task_id})

    def parse_status(self, status_code: int, body: Any) -> ProviderStatus:
        """Map the task query answer to the canonical status."""
        self._raise_for_error(status_code, body)
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            raise self.bad_response("a task body without status")
        raw = body["status"]
        state = _STATES.get(raw)
        if state is None:
            raise self.bad_response(f"an unknown task status {raw!r}")
        status = ProviderStatus(state=state, raw_status=raw)
        if state is ProviderState.SUCCEEDED:
            status.images = self._result_images(body.get("result"))
        elif state is ProviderState.FAILED:
            message = str(body.get("errorMessage") or f"task {raw}")
            error_code = body.get("errorCode")
            if error_code in _MODERATION_CODES or looks_like_moderation(message):
                status.error = self.rejected(message, moderation=True)
            else:
                status.error = ProviderError(
                    f"mountsea-async: {message}",
                    provider=self.name,
                    retryable=False,
                    code={"timeout": "provider_timeout", "cancelled": "provider_cancelled"}.get(
                        raw, "provider_task_failed"
                    ),
                    provider_code=None if error_code is None else str(error_code),
                )
        return status

    def expected_latency_seconds(self, request: ImageRequest) -> float:
        """15/30/45 s for low/medium/high quality."""
        return _LATENCY.get(request.quality, 30.0)

    def _result_images(self, result: Any) -> list[ResultImage]:
        if result is None:
            raise self.bad_response("a completed task without result")
        if not isinstance(result, dict):  # a bare base64 string (str, or a spooled Blob)
            return [self._b64_image(result)]
        data = result.get("data")
        if not isinstance(data, list) or not data:
            raise self.bad_response("a completed task whose result has no data[]")
        images: list[ResultImage] = []
        for entry in data:
            if not isinstance(entry, dict):
                raise self.bad_response("a result data[] entry that is not an object")
            if entry.get("b64_json") is not None:
                images.append(self._b64_image(entry["b64_json"]))
            elif isinstance(entry.get("url"), str):
                images.append(ResultImage(url=entry["url"]))
            else:
                raise self.bad_response("a result entry with neither b64_json nor url")
        return images

    def _b64_image(self, value: Any) -> ResultImage:
        if isinstance(value, str | Blob):
            return ResultImage(b64=value)
        raise self.bad_response(f"a base64 image that is a {type(value).__name__}, not text")

    def _raise_for_error(self, status_code: int, body: Any) -> None:
        if status_code == 200:
            return
        message = ""
        code: Any = None
        if isinstance(body, dict):
            message = str(body.get("errorMessage") or body.get("message") or "")
            code = body.get("errorCode")
        if status_code == 404:
            raise ProviderError(
                f"mountsea-async: {message or 'task not found'}",
                provider=self.name,
                retryable=False,
                code="provider_task_missing",
            )
        if code in _MODERATION_CODES or looks_like_moderation(message):
            raise self.rejected(message or "moderation refused the request", moderation=True)
        raise self.rejected(
            message or f"HTTP {status_code}", provider_code=None if code is None else str(code)
        )
