"""The OpenAI Images API, synchronous: ``openai`` itself and ``mountsea-compat`` (its clone).

``POST {prefix}/images/generations`` (JSON) and ``POST {prefix}/images/edits`` (multipart:
``image`` or, for several, repeated ``image[]`` file parts, and a ``mask`` part); the answer is
``{created, data: [{b64_json}], usage}``. Errors are ``{"error": {message, type, param, code}}``;
``moderation_blocked`` marks a moderation refusal. The prefix is ``/v1`` at OpenAI
(base URL https://api.openai.com) and ``/openai/v1`` at Mountsea (Mountsea's docs: "the official SDK
works with base_url={base}/openai/v1"). A call can take about two minutes, so these providers
are only ever called from the dispatch function, never inside an API request.
"""

from __future__ import annotations

from typing import Any, ClassVar

from image_gateway.models.request import ImageRequest
from image_gateway.providers.base import (
    Capabilities,
    HttpCall,
    InputRef,
    Mode,
    Provider,
    ProviderInputs,
    ProviderStatus,
    SizePlan,
)
from image_gateway.providers.openai_shape import (
    openai_capabilities,
    openai_error,
    openai_fields,
    plan_fixed_size,
    succeeded,
)

# Docs (mountsea): "tasks typically complete in 10-60 seconds depending on quality and size".
_LATENCY = {"low": 15.0, "medium": 30.0, "auto": 30.0, "high": 45.0}


class OpenAICompatProvider(Provider):
    """The synchronous OpenAI Images dialect below ``path_prefix``."""

    path_prefix: ClassVar[str]
    capabilities: ClassVar[Capabilities] = openai_capabilities(Mode.SYNC)

    def plan_size(self, request: ImageRequest) -> SizePlan:
        """auto, 1024x1024, 1024x1536 or 1536x1024."""
        return plan_fixed_size(request)

    def sync_call(self, request: ImageRequest, inputs: ProviderInputs) -> HttpCall:
        """JSON ``images/generations``, or multipart ``images/edits`` when there are inputs."""
        size = self.plan_size(request).sent
        if not inputs.images:
            body = openai_fields(request, size, edit=False)
            return HttpCall("POST", f"{self.path_prefix}/images/generations", json=body)
        fields = openai_fields(request, size, edit=True)
        fields.pop("moderation")  # a generations-only parameter
        form = {key: str(value) for key, value in fields.items()}
        part = "image" if len(inputs.images) == 1 else "image[]"
        files: list[tuple[str, InputRef]] = [(part, index) for index in range(len(inputs.images))]
        if inputs.mask is not None:
            files.append(("mask", "mask"))
        return HttpCall("POST", f"{self.path_prefix}/images/edits", form=form, files=tuple(files))

    def parse_sync(self, status_code: int, body: Any) -> ProviderStatus:
        """``{created, data: [{b64_json}]}``, or the classified ``{"error": ...}``."""
        if status_code != 200 or (isinstance(body, dict) and body.get("error")):
            raise openai_error(self, status_code, body)
        return succeeded(self, body, "an images response")

    def expected_latency_seconds(self, request: ImageRequest) -> float:
        """15/30/45 s for low/medium/high quality."""
        return _LATENCY.get(request.quality, 30.0)


class OpenAIProvider(OpenAICompatProvider):
    """OpenAI itself (https://api.openai.com/v1)."""

    name: ClassVar[str] = "openai"
    path_prefix: ClassVar[str] = "/v1"


class MountseaCompatProvider(OpenAICompatProvider):
    """Mountsea's OpenAI clone (``{mountsea base}/openai/v1``)."""

    name: ClassVar[str] = "mountsea-compat"
    path_prefix: ClassVar[str] = "/openai/v1"
