"""apimart: async create, callback via ``webhook`` (+ ``/callback``), poll ``/v1/tasks/{id}``.

Documented in shared/providers/apimart-gpt-image-2.txt. ``size`` is one of 15 ratios (or
``auto``) with a ``resolution`` tier 1k/2k/4k, mapped to pixels by the docs' table (below), or
one of that table's pixel sizes passed directly; up to 16 ``image_urls``; ``official_fallback``
comes from the provider options (default false). Results are URLs only, valid 24 h; ``url`` is a
list or a plain string. ``POST /v1/tasks/batch`` reads several tasks at once (the sweeper uses
it). Undocumented and chosen here: error bodies are read as
``{"code": N, "error": {"message", "type"}}``; a ``type`` or message mentioning moderation is a
moderation refusal; the batch answer is ``{"code": 200, "data": [<task>, ...]}``. Masks,
``background``, ``output_format`` and ``output_compression`` are not documented (quality and
style are "ignored"), so requests that need them are refused before any spend.
"""

from __future__ import annotations

from typing import Any, ClassVar

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
from image_gateway.providers.sizes import label, nearest, requested_label, target_dimensions

# ratio -> tier -> pixels, from the docs' table; where the docs give two 1k sizes ("a / b"),
# the first is what this gateway expects, and both are accepted as pixel sizes.
SIZE_TABLE: dict[str, dict[str, tuple[tuple[int, int], ...]]] = {
    "1:1": {"1k": ((1024, 1024), (1254, 1254)), "2k": ((2048, 2048),), "4k": ((2880, 2880),)},
    "3:2": {"1k": ((1536, 1024),), "2k": ((2048, 1360),), "4k": ((3520, 2336),)},
    "2:3": {"1k": ((1024, 1536),), "2k": ((1360, 2048),), "4k": ((2336, 3520),)},
    "4:3": {"1k": ((1024, 768),), "2k": ((2048, 1536),), "4k": ((3312, 2480),)},
    "3:4": {"1k": ((768, 1024),), "2k": ((1536, 2048),), "4k": ((2480, 3312),)},
    "5:4": {"1k": ((1280, 1024), (1448, 1086)), "2k": ((2560, 2048),), "4k": ((3216, 2576),)},
    "4:5": {"1k": ((1024, 1280), (1122, 1402)), "2k": ((2048, 2560),), "4k": ((2576, 3216),)},
    "16:9": {"1k": ((1536, 864), (1672, 941)), "2k": ((2048, 1152),), "4k": ((3840, 2160),)},
    "9:16": {"1k": ((864, 1536), (941, 1672)), "2k": ((1152, 2048),), "4k": ((2160, 3840),)},
    "2:1": {"1k": ((2048, 1024), (1774, 887)), "2k": ((2688, 1344),), "4k": ((3840, 1920),)},
    "1:2": {"1k": ((1024, 2048), (887, 1774)), "2k": ((1344, 2688),), "4k": ((1920, 3840),)},
    "3:1": {"1k": ((1881, 836), (1536, 512)), "2k": ((3072, 1024),), "4k": ((3840, 1280),)},
    "1:3": {"1k": ((887, 1774), (512, 1536)), "2k": ((1024, 3072),), "4k": ((1280, 3840),)},
    "21:9": {"1k": ((2016, 864), (1915, 821)), "2k": ((2688, 1152),), "4k": ((3840, 1648),)},
    "9:21": {"1k": ((864, 2016), (821, 1915)), "2k": ((1152, 2688),), "4k": ((1648, 3840),)},
}
# pixel size -> (ratio, tier) for every size in the table
_PIXEL_SIZES = {
    size: (ratio, tier)
    for ratio, tiers in SIZE_TABLE.items()
    for tier, sizes in tiers.items()
    for size in sizes
}
_PRIMARY = [(ratio, tier, sizes[0]) for ratio, t in SIZE_TABLE.items() for tier, sizes in t.items()]
# every table entry, for "nearest": (what to send as size, tier, pixels); a cell's first size
# is sent as its ratio, the docs' alternative 1k sizes as pixel sizes
_CANDIDATES = [
    (ratio if index == 0 else label(size), tier, size)
    for ratio, tiers in SIZE_TABLE.items()
    for tier, sizes in tiers.items()
    for index, size in enumerate(sizes)
]

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


class ApimartOptions(ProviderOptions):
    """apimart settings (providers parameter ``options.apimart``)."""

    official_fallback: bool = False
    """Let apimart fall back to the official (dearer) channel."""


class ApimartProvider(Provider):
    """The apimart dialect."""

    name: ClassVar[str] = "apimart"
    capabilities: ClassVar[Capabilities] = Capabilities(
        modes=frozenset({Mode.ASYNC}),
        callback=True,
        batch_poll=True,
        max_images=16,
        mask=False,
        backgrounds=frozenset({"auto"}),
        output_formats=frozenset({"png"}),
        output_compression=False,
        sizes=(
            "auto",
            "aspect_ratio (any of the 15) + resolution 1K/2K/4K",
            "the docs' table pixel sizes: " + ", ".join(label(size) for _, _, size in _PRIMARY),
        ),
    )
    poll_interval_seconds: ClassVar[float] = 4.0
    options_model: ClassVar[type[ProviderOptions]] = ApimartOptions
    options: ApimartOptions

    def plan_size(self, request: ImageRequest) -> SizePlan:
        """Ratio + tier as given; a table pixel size as given; else the nearest table entry."""
        if request.aspect_ratio is not None:
            tier = request.tier().lower()
            size = SIZE_TABLE[request.aspect_ratio][tier][0]
            return SizePlan(
                requested_label(request),
                f"{request.aspect_ratio} @ {tier}",
                exact=True,
                expected=size,
            )
        target = target_dimensions(request)
        if target is None:
            return SizePlan("auto", "auto @ 1k", exact=True)
        if target in _PIXEL_SIZES:
            return SizePlan(
                request.size, f"{label(target)} @ {_PIXEL_SIZES[target][1]}", True, target
            )
        sent, tier, size = _CANDIDATES[nearest(target, [size for _, _, size in _CANDIDATES])]
        return SizePlan(request.size, f"{sent} @ {tier}", exact=False, expected=size)

    def create_call(
        self, request: ImageRequest, inputs: ProviderInputs, callback_url: str | None
    ) -> HttpCall:
        """POST /v1/images/generations with ratio or pixel ``size`` and a ``resolution`` tier."""
        size, _, tier = self.plan_size(request).sent.partition(" @ ")
        body: dict[str, Any] = {
            "model": request.model,
            "prompt": request.prompt,
            "n": 1,
            "size": size,
            "resolution": tier,
            "official_fallback": self.options.official_fallback,
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
        return self._task_status(data)

    def batch_status_call(self, provider_task_ids: list[str]) -> HttpCall:
        """POST /v1/tasks/batch ``{"task_ids": [...]}``."""
        return HttpCall("POST", "/v1/tasks/batch", json={"task_ids": list(provider_task_ids)})

    def parse_batch_status(self, status_code: int, body: Any) -> dict[str, ProviderStatus]:
        """``{"code": 200, "data": [<task>, ...]}``: task id -> status (missing ids left out)."""
        self._raise_for_error(status_code, body)
        tasks = body.get("data") if isinstance(body, dict) else None
        if not isinstance(tasks, list):
            raise self.bad_response("a batch body whose data is not a list")
        found: dict[str, ProviderStatus] = {}
        for data in tasks:
            task_id = data.get("id") if isinstance(data, dict) else None
            if not isinstance(task_id, str):
                raise self.bad_response("a batch entry without id")
            found[task_id] = self._task_status(data)
        return found

    def _task_status(self, data: Any) -> ProviderStatus:
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
                else self.task_failed(message, raw)
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
            raise self.task_missing(message)
        if "moderation" in kind or looks_like_moderation(message):
            raise self.rejected(message or "moderation refused the request", moderation=True)
        if status_code == 200:
            raise self.bad_response(f"code {code!r} without an error message")
        raise self.rejected(message or f"HTTP {status_code}", provider_code=str(code))
