"""apimodels: sync with a ``WxH`` size, async with ``aspect_ratio`` + ``resolution`` (+ callback).

Documented in shared/providers/apimodels-gpt-image-2.txt: ``POST /api/v1/images/generations``;
a WxH ``size`` answers inline ``{created, data: [{b64_json, url}]}`` (sync mode); without a WxH
size (``aspect_ratio`` + ``resolution``) or with a ``callback_url`` the answer is
``{"code": 200, "data": {"taskId"}}`` and the task is read with
``GET /api/v1/images/generations?task_id=``. Model ``gpt-image-2-all``; references as
``image_url`` (one) or ``image_urls`` (up to 16; both route to the edit endpoint), masks as
``mask_url``; quality low/medium/high/auto. No ``output_format`` is documented: PNG only.

How this adapter picks the mode: a request with an exact ``WxH`` goes sync (through the dispatch
queue), since that is the only way to get an arbitrary size; ``aspect_ratio`` + ``resolution``
goes async with our ``callback_url``; ``auto`` (apimodels documents none) is sent async as 1:1
at 1K. A WxH that breaks apimodels' rules is fitted to them (``sizes.fit_to_rules``) under
``size_policy="nearest"``.

**Not documented, chosen here:** the task query answer (``{"code": 200, "data": {taskId, status
(pending|processing|completed|failed), result: {data: [{url | b64_json}]}, error: {message}}}``),
the callback body (treated as a signal only: the webhook re-reads the task), and error bodies
(OpenAI's ``{"error": {message, type, code}}``; ``moderation_blocked`` or a message about
moderation is a moderation refusal).
"""

from __future__ import annotations

from typing import Any, ClassVar

from image_gateway.errors import ProviderUnavailable
from image_gateway.models.request import ImageRequest
from image_gateway.providers.base import (
    Capabilities,
    HttpCall,
    Mode,
    Provider,
    ProviderInputs,
    ProviderState,
    ProviderStatus,
    SizePlan,
    looks_like_moderation,
)
from image_gateway.providers.openai_shape import images_response, openai_error, succeeded
from image_gateway.providers.sizes import (
    fit_to_rules,
    fits_rules,
    label,
    ratio_dimensions,
    requested_label,
)

MODEL = "gpt-image-2-all"
PATH = "/api/v1/images/generations"
_STATES = {
    "pending": ProviderState.PENDING,
    "processing": ProviderState.RUNNING,
    "completed": ProviderState.SUCCEEDED,
    "failed": ProviderState.FAILED,
}
# Docs: "low ~40s, medium ~60-90s, high ~2 minutes"; auto is billed (and assumed to run) as medium.
_LATENCY = {"low": 40.0, "medium": 75.0, "auto": 75.0, "high": 120.0}


class ApimodelsProvider(Provider):
    """The apimodels dialect (both modes)."""

    name: ClassVar[str] = "apimodels"
    capabilities: ClassVar[Capabilities] = Capabilities(
        modes=frozenset({Mode.ASYNC, Mode.SYNC}),
        callback=True,
        batch_poll=False,
        max_images=16,
        mask=True,
        backgrounds=frozenset({"auto", "transparent", "opaque"}),
        output_formats=frozenset({"png"}),
        output_compression=False,
        sizes=(
            "WxH with both sides multiples of 16, long edge <= 3840, ratio <= 3:1, "
            "655,360 to 8,294,400 pixels (sync)",
            "aspect_ratio (any of the 15) + resolution 1K/2K/4K (async, callback)",
            "auto (sent as 1:1 at 1K)",
        ),
    )
    poll_interval_seconds: ClassVar[float] = 5.0

    def mode(self, request: ImageRequest) -> Mode:
        """Sync for an exact WxH, async otherwise."""
        return Mode.SYNC if request.pixel_size() is not None else Mode.ASYNC

    def plan_size(self, request: ImageRequest) -> SizePlan:
        """Ratio + tier as given; a WxH as given when it meets the rules, else fitted to them."""
        requested = requested_label(request)
        if request.aspect_ratio is not None:
            tier = request.tier()
            return SizePlan(
                requested,
                f"{request.aspect_ratio} @ {tier}",
                exact=True,
                expected=ratio_dimensions(request.aspect_ratio, tier),
            )
        size = request.pixel_size()
        if size is None:
            return SizePlan("auto", "1:1 @ 1K", exact=True, expected=(1024, 1024))
        if fits_rules(*size):
            return SizePlan(requested, label(size), exact=True, expected=size)
        fitted = fit_to_rules(*size)
        return SizePlan(requested, label(fitted), exact=False, expected=fitted)

    def _body(self, request: ImageRequest, inputs: ProviderInputs) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": MODEL,
            "prompt": request.prompt,
            "n": request.n,
            "quality": request.quality,
            "background": request.background,
        }
        if len(inputs.images) == 1:
            body["image_url"] = inputs.images[0]
        elif inputs.images:
            body["image_urls"] = list(inputs.images)
        if inputs.mask is not None:
            body["mask_url"] = inputs.mask
        return body

    # -- sync ----------------------------------------------------------------------------------
    def sync_call(self, request: ImageRequest, inputs: ProviderInputs) -> HttpCall:
        """The WxH request that answers inline (base64 asked for)."""
        body = self._body(request, inputs)
        body["size"] = self.plan_size(request).sent
        body["response_format"] = "b64_json"
        return HttpCall("POST", PATH, json=body)

    def parse_sync(self, status_code: int, body: Any) -> ProviderStatus:
        """``{created, data: [{b64_json, url}]}``."""
        self._raise_for_error(status_code, body)
        return succeeded(self, body, "a sync images response")

    # -- async ---------------------------------------------------------------------------------
    def create_call(
        self, request: ImageRequest, inputs: ProviderInputs, callback_url: str | None
    ) -> HttpCall:
        """``aspect_ratio`` + ``resolution`` (no size), and our ``callback_url``."""
        body = self._body(request, inputs)
        ratio, _, tier = self.plan_size(request).sent.partition(" @ ")
        body["aspect_ratio"] = ratio
        body["resolution"] = tier
        if callback_url:
            body["callback_url"] = callback_url
        return HttpCall("POST", PATH, json=body)

    def parse_create(self, status_code: int, body: Any) -> str:
        """``{"code": 200, "data": {"taskId": ...}}``."""
        self._raise_for_error(status_code, body)
        data = body.get("data") if isinstance(body, dict) else None
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise self.bad_response("a create body without data.taskId")
        return task_id

    def status_call(self, provider_task_id: str) -> HttpCall:
        """``GET /api/v1/images/generations?task_id=``."""
        return HttpCall("GET", PATH, params={"task_id": provider_task_id})

    def parse_status(self, status_code: int, body: Any) -> ProviderStatus:
        """``data.status`` and, once completed, ``data.result.data[]``."""
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
            status.images = images_response(self, data.get("result"), "a completed task's result")
        elif state is ProviderState.FAILED:
            error = data.get("error")
            message = str((error.get("message") if isinstance(error, dict) else None) or "failed")
            status.error = (
                self.rejected(message, moderation=True)
                if looks_like_moderation(message)
                else self.task_failed(message, raw)
            )
        return status

    def expected_latency_seconds(self, request: ImageRequest) -> float:
        """40/75/120 s for low/medium/high (docs: ~40 s, 60-90 s, ~2 min)."""
        return _LATENCY.get(request.quality, 75.0)

    def _raise_for_error(self, status_code: int, body: Any) -> None:
        """OpenAI's ``{"error": {...}}``, or the platform's ``{"code", "message"}``."""
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            raise openai_error(self, status_code, body)
        code = body.get("code") if isinstance(body, dict) else None
        if status_code == 200 and code in (None, 200):
            return
        if not isinstance(body, dict) or ("message" not in body and code is None):
            raise self.bad_response(f"HTTP {status_code} without an error message or code")
        message = str(body.get("message") or f"HTTP {status_code}, code {code}")
        if status_code == 404 or code == 404:
            raise self.task_missing(message)
        if code == 429 or (isinstance(code, int) and code >= 500):
            raise ProviderUnavailable(
                f"apimodels: {message}", provider=self.name, provider_code=str(code)
            )
        raise self.rejected(
            message,
            moderation=looks_like_moderation(message),
            provider_code=str(code if code is not None else status_code),
        )
