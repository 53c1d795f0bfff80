"""mountsea-async: ``POST /openai/images`` then poll ``GET /openai/tasks?taskId=``; no callback.

Documented in shared/providers/mountsea-async-task-api.txt. ``result`` is the upstream OpenAI
images response (``data[].b64_json``); a bare base64 string is accepted too. Undocumented and
chosen here: error bodies are read as ``{"errorCode": N, "errorMessage": "..."}``; code 40003 or
a message mentioning moderation is a moderation refusal.
"""

from __future__ import annotations

from typing import Any, ClassVar

from image_gateway.images.json_blobs import Blob
from image_gateway.models.request import ImageRequest
from image_gateway.providers.base import (
    Capabilities,
    HttpCall,
    Mode,
    Provider,
    ProviderInputs,
    ProviderState,
    ProviderStatus,
    ResultImage,
    SizePlan,
    looks_like_moderation,
)
from image_gateway.providers.openai_shape import (
    images_response,
    openai_capabilities,
    openai_fields,
    plan_fixed_size,
)

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
    capabilities: ClassVar[Capabilities] = openai_capabilities(Mode.ASYNC)
    poll_interval_seconds: ClassVar[float] = 3.0

    def plan_size(self, request: ImageRequest) -> SizePlan:
        """auto, 1024x1024, 1024x1536 or 1536x1024 (1:1, 2:3, 3:2 at 1K are those)."""
        return plan_fixed_size(request)

    def create_call(
        self, request: ImageRequest, inputs: ProviderInputs, callback_url: str | None
    ) -> HttpCall:
        """POST /openai/images with OpenAI field names; ``image`` present means edit."""
        body = openai_fields(request, self.plan_size(request).sent, edit=bool(inputs.images))
        if inputs.images:
            body["image"] = inputs.images[0] if len(inputs.images) == 1 else list(inputs.images)
        if inputs.mask is not None:
            body["mask"] = inputs.mask
        return HttpCall("POST", "/openai/images", json=body)

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
                status.error = self.task_failed(
                    message, raw, None if error_code is None else str(error_code)
                )
        return status

    def expected_latency_seconds(self, request: ImageRequest) -> float:
        """15/30/45 s for low/medium/high quality."""
        return _LATENCY.get(request.quality, 30.0)

    def _result_images(self, result: Any) -> list[ResultImage]:
        if result is None:
            raise self.bad_response("a completed task without result")
        if not isinstance(result, dict):  # a bare base64 string (str, or a spooled Blob)
            if isinstance(result, str | Blob):
                return [ResultImage(b64=result)]
            raise self.bad_response(f"a base64 image that is a {type(result).__name__}")
        return images_response(self, result, "a completed task whose result")

    def _raise_for_error(self, status_code: int, body: Any) -> None:
        if status_code == 200:
            return
        message = ""
        code: Any = None
        if isinstance(body, dict):
            message = str(body.get("errorMessage") or body.get("message") or "")
            code = body.get("errorCode")
        if status_code == 404:
            raise self.task_missing(message)
        if code in _MODERATION_CODES or looks_like_moderation(message):
            raise self.rejected(message or "moderation refused the request", moderation=True)
        raise self.rejected(
            message or f"HTTP {status_code}", provider_code=None if code is None else str(code)
        )
