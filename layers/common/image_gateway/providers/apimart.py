"""apimart: async create, callback via ``webhook`` (+ ``/callback``), poll ``/v1/tasks/{id}``.

Documented in shared/providers/apimart-gpt-image-2.txt. Results are URLs only, valid 24 h;
``url`` is a list or a plain string. Undocumented and chosen here: error bodies are read as
``{"code": N, "error": {"message", "type"}}``; a ``type`` or message mentioning moderation is a
moderation refusal. Masks are not documented, so masked edits are refused before any spend.
"""

from __future__ import annotations

from typing import Any, ClassVar

from image_gateway.errors import ProviderError, Unprocessable
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

_STATES = {
    "submitted": ProviderState.PENDING,
    "pending": ProviderState.PENDING,
    "processing": ProviderState.RUNNING,
    "completed": ProviderState.SUCCEEDED,
    "failed": ProviderState.FAILED,
    "cancelled": ProviderState.FAILED,
}
# Typical seconds per tier (docs: "typically 30-60 s", first query 10-20 s after submit).
_LATENCY = {"1K": 40.0, "2K": 50.0, "4K": 60.0}


class ApimartProvider(Provider):
    """The apimart dialect."""

    name: ClassVar[str] = "apimart"
    supports_callback: ClassVar[bool] = True
    poll_interval_seconds: ClassVar[float] = 4.0

    def create_call(
        self, request: ImageRequest, inputs: ProviderInputs, callback_url: str | None
    ) -> HttpCall:
        """POST /v1/images/generations with ratio or pixel ``size`` and a ``resolution`` tier."""
        if inputs.mask is not None:
            raise Unprocessable(
                "apimart does not support masks; choose mountsea-async for masked edits",
                provider=self.name,
                field="mask",
            )
        size = request.aspect_ratio or request.size
        body: dict[str, Any] = {
            "model": request.model,
            "prompt": request.prompt,
            "n": 1,
            "size": size,
            "resolution": request.tier().lower(),
            "official_fallback": False,
        }
        if inputs.images:
            body["image_urls"] = list(inputs.images)
        if callback_url:
            body["webhook"] = callback_url
        return HttpCall("POST", "/v1/images/generations", json=body)

    def parse_create(self, status_code: int, body: Any) -> str:
        """``{"code": 200, "data": [{"status": "submitted", "task_id": ...}]}``."""
        self._raise_for_error(status_code, body)
        try:
            task_id = body["data"][0]["task_id"]
        except (KeyError, IndexError, TypeError):
            raise self.bad_response("a create body without data[0].task_id") from None
        if not isinstance(task_id, str) or not task_id:
            raise self.bad_response("an empty task_id")
        return task_id

    def status_call(self, provider_task_id: str) -> HttpCall:
        """GET /v1/tasks/{task_id}."""
        return HttpCall("GET", f"/v1/tasks/{provider_task_id}")

    def parse_status(self, status_code: int, body: Any) -> ProviderStatus:
        """Map the task object (same shape as the callback body) to the canonical status."""
        self._raise_for_error(status_code, body)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            raise self.bad_response("a task body without data.status")
        raw = data["status"]
        state = _STATES.get(raw)
        if state is None:
            raise self.bad_response(f"an unknown task status {raw!r}")
        status = ProviderStatus(state=state, raw_status=raw)
        if state is ProviderState.SUCCEEDED:
            status.images = self._result_images(data)
        elif state is ProviderState.FAILED:
            error = data.get("error") or {}
            message = error.get("message") if isinstance(error, dict) else None
            message = str(message or f"task {raw}")
            status.error = (
                self.rejected(message, moderation=True)
                if looks_like_moderation(message)
                else ProviderError(
                    f"apimart: {message}",
                    provider=self.name,
                    retryable=False,
                    code="provider_cancelled" if raw == "cancelled" else "provider_task_failed",
                )
            )
        return status

    def expected_latency_seconds(self, request: ImageRequest) -> float:
        """40/50/60 s for 1K/2K/4K."""
        return _LATENCY[request.tier()]

    def _result_images(self, data: dict[str, Any]) -> list[ResultImage]:
        result = data.get("result")
        images = result.get("images") if isinstance(result, dict) else None
        if not isinstance(images, list) or not images:
            raise self.bad_response("a completed task without result.images")
        found: list[ResultImage] = []
        for image in images:
            url = image.get("url") if isinstance(image, dict) else None
            urls = url if isinstance(url, list) else [url]  # docs show list and plain string
            for item in urls:
                if not isinstance(item, str) or not item.startswith(("https://", "http://")):
                    raise self.bad_response("a result url that is not a URL")
                found.append(ResultImage(url=item))
        if not found:
            raise self.bad_response("a completed task without any image url")
        return found

    def _raise_for_error(self, status_code: int, body: Any) -> None:
        code = body.get("code") if isinstance(body, dict) else None
        if status_code == 200 and code == 200:
            return
        if not isinstance(body, dict):
            raise self.bad_response(f"HTTP {status_code} with a body that is not an object")
        error = body.get("error")
        message = str(error.get("message", "")) if isinstance(error, dict) else ""
        kind = str(error.get("type", "")) if isinstance(error, dict) else ""
        if status_code == 404 or "does not exist" in message:
            raise ProviderError(
                f"apimart: {message or 'task not found'}",
                provider=self.name,
                retryable=False,
                code="provider_task_missing",
            )
        if "moderation" in kind or looks_like_moderation(message):
            raise self.rejected(message or "moderation refused the request", moderation=True)
        if status_code == 200:
            raise self.bad_response(f"code {code!r} without an error message")
        raise self.rejected(message or f"HTTP {status_code}", provider_code=str(code))
