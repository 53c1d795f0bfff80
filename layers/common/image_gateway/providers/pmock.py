"""pmock: camelCase create at ``POST /api/ai/openai/images/generate``, every answer wrapped in
``{"code", "message", "data", "traceId"}``; no callback.

Documented in shared/providers/pmock-generate-async.txt: the create body (camelCase: prompt,
model, size, n, quality, background, outputFormat, outputCompression, moderation,
responseFormat, inputFidelity, image[], mask) and the envelope. A ``code`` other than 200 is an
error even when the HTTP status is 200.

**Not documented, chosen here and configurable** (``options.pmock`` in the providers parameter):
the poll endpoint and its status names. pmock's create body is Mountsea's async body in
camelCase and both carry a ``traceId``, so the default assumes Mountsea's task query under
pmock's ``/api/ai`` prefix: ``GET /api/ai/openai/tasks?taskId={task_id}``, answering the envelope
with ``data`` = ``{taskId, status, result, errorMessage, errorCode}``, statuses pending / ready /
assigned (queued), processing (running), completed, failed / cancelled / timeout, and ``result``
the OpenAI images response (``data[].b64_json``) or a bare base64 string. Error messages that
mention moderation are moderation refusals (pmock documents no moderation code).
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote

from pydantic import Field, field_validator

from image_gateway.errors import ProviderUnavailable
from image_gateway.images.json_blobs import Blob
from image_gateway.models.request import ImageRequest
from image_gateway.providers.base import (
    Capabilities,
    HttpCall,
    Mode,
    Provider,
    ProviderInputs,
    ProviderOptions,
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

CREATE_PATH = "/api/ai/openai/images/generate"
_LATENCY = {"low": 15.0, "medium": 30.0, "auto": 30.0, "high": 45.0}


class PmockOptions(ProviderOptions):
    """Where pmock's (undocumented) task query is and what its statuses are called."""

    status_path: str = Field(
        default="/api/ai/openai/tasks?taskId={task_id}",
        description="path (and query) of the task query; {task_id} is replaced",
    )
    pending_statuses: tuple[str, ...] = ("pending", "ready", "assigned")
    running_statuses: tuple[str, ...] = ("processing",)
    succeeded_statuses: tuple[str, ...] = ("completed",)
    failed_statuses: tuple[str, ...] = ("failed", "cancelled", "timeout")

    @field_validator("status_path")
    @classmethod
    def _has_placeholder(cls, value: str) -> str:
        if "{task_id}" not in value or not value.startswith("/"):
            raise ValueError("status_path must start with / and contain {task_id}")
        return value


class PmockProvider(Provider):
    """The pmock dialect."""

    name: ClassVar[str] = "pmock"
    capabilities: ClassVar[Capabilities] = openai_capabilities(Mode.ASYNC)
    poll_interval_seconds: ClassVar[float] = 3.0
    options_model: ClassVar[type[ProviderOptions]] = PmockOptions
    options: PmockOptions

    def plan_size(self, request: ImageRequest) -> SizePlan:
        """auto, 1024x1024, 1024x1536 or 1536x1024 (the documented enum)."""
        return plan_fixed_size(request)

    def create_call(
        self, request: ImageRequest, inputs: ProviderInputs, callback_url: str | None
    ) -> HttpCall:
        """camelCase JSON; ``image`` (always a list) present means edit."""
        body = openai_fields(
            request, self.plan_size(request).sent, edit=bool(inputs.images), camel=True
        )
        if inputs.images:
            body["image"] = list(inputs.images)
        if inputs.mask is not None:
            body["mask"] = inputs.mask
        return HttpCall("POST", CREATE_PATH, json=body)

    def parse_create(self, status_code: int, body: Any) -> str:
        """``{"code": 200, "data": {"taskId": ...}}``."""
        data = self._unwrap(status_code, body)
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise self.bad_response("a create envelope without data.taskId")
        return task_id

    def status_call(self, provider_task_id: str) -> HttpCall:
        """The configured task query (default ``GET /api/ai/openai/tasks?taskId=``)."""
        filled = self.options.status_path.replace("{task_id}", quote(provider_task_id, safe=""))
        path, _, query = filled.partition("?")
        return HttpCall("GET", path, params=dict(parse_qsl(query)) or None)

    def parse_status(self, status_code: int, body: Any) -> ProviderStatus:
        """Map ``data.status`` through the configured status names."""
        data = self._unwrap(status_code, body)
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            raise self.bad_response("a task envelope without data.status")
        raw = data["status"]
        state = self._state(raw)
        status = ProviderStatus(state=state, raw_status=raw)
        if state is ProviderState.SUCCEEDED:
            status.images = self._result_images(data.get("result"))
        elif state is ProviderState.FAILED:
            message = str(data.get("errorMessage") or f"task {raw}")
            code = data.get("errorCode")
            status.error = (
                self.rejected(message, moderation=True)
                if looks_like_moderation(message)
                else self.task_failed(message, raw, None if code is None else str(code))
            )
        return status

    def expected_latency_seconds(self, request: ImageRequest) -> float:
        """Undocumented: assumed like Mountsea's (15/30/45 s for low/medium/high)."""
        return _LATENCY.get(request.quality, 30.0)

    def _state(self, raw: str) -> ProviderState:
        options = self.options
        for names, state in (
            (options.pending_statuses, ProviderState.PENDING),
            (options.running_statuses, ProviderState.RUNNING),
            (options.succeeded_statuses, ProviderState.SUCCEEDED),
            (options.failed_statuses, ProviderState.FAILED),
        ):
            if raw in names:
                return state
        raise self.bad_response(f"an unknown task status {raw!r}")

    def _result_images(self, result: Any) -> list[ResultImage]:
        if isinstance(result, str | Blob) and result:
            return [ResultImage(b64=result)]
        if isinstance(result, dict):
            return images_response(self, result, "a completed task whose result")
        raise self.bad_response("a completed task without a result")

    def _unwrap(self, status_code: int, body: Any) -> Any:
        """``data`` of a successful envelope; a classified error for anything else."""
        if not isinstance(body, dict) or "code" not in body:
            raise self.bad_response(f"HTTP {status_code} without the {{code, data}} envelope")
        code = body.get("code")
        if status_code == 200 and code == 200:
            return body.get("data")
        message = str(body.get("message") or f"code {code}")
        if code == 404 or status_code == 404:
            raise self.task_missing(message)
        if looks_like_moderation(message):
            raise self.rejected(message, moderation=True, provider_code=str(code))
        if isinstance(code, int) and (code == 429 or code >= 500):
            raise ProviderUnavailable(
                f"pmock: {message}", provider=self.name, provider_code=str(code)
            )
        raise self.rejected(message, provider_code=str(code))
