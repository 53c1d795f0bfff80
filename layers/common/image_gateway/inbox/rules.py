"""Inbox rules: which edit an upload under a prefix gets, read from one JSON document in SSM.

The document (SSM String parameter, edited by operators without a redeploy)::

    {"rules": [{"prefix": "products/", "prompt": "Put the product on a white background",
                "size": "1024x1024", "quality": "medium", "background": "opaque",
                "output_format": "png", "providers": ["mountsea-async"],
                "output_prefix": "outputs/inbox/products/", "mask": "optional",
                "client": "team-products"}]}

The longest matching prefix wins. ``output_prefix`` must stay under ``outputs/`` of the images
bucket (so results can never land in the inbox); it defaults to ``outputs/{client}/{prefix}``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from image_gateway.errors import UploadRejected
from image_gateway.models.request import MAX_PROMPT_CHARS, ImageRequest

_OUTPUT_PREFIX_RE = re.compile(r"^outputs/([A-Za-z0-9!_.*'()\-]+/)*$")
_PLACEHOLDER_IMAGE = "https://placeholder.invalid/image.png"


class InboxRule(BaseModel):
    """The recipe for uploads under one prefix."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = Field(max_length=512, description="key prefix in the inbox; '' matches all")
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    size: str = "auto"
    quality: Literal["auto", "low", "medium", "high"] = "auto"
    background: Literal["auto", "transparent", "opaque"] = "auto"
    output_format: Literal["png", "jpeg", "webp"] = "png"
    output_compression: int | None = Field(default=None, ge=0, le=100)
    input_fidelity: Literal["high", "low"] | None = None
    providers: list[str] | None = Field(default=None, min_length=1, max_length=8)
    output_prefix: str | None = Field(default=None, max_length=512)
    mask: Literal["optional", "required"] = Field(
        default="optional", description="required: a photo without name.mask.png fails"
    )
    client: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="the client the uploads belong to (their limits, queue, budget and output "
        "folder); default: the inbox's own client (the stack's InboxClientId)",
    )

    @field_validator("output_prefix")
    @classmethod
    def _check_output_prefix(cls, value: str | None) -> str | None:
        if value is not None and (not _OUTPUT_PREFIX_RE.match(value) or "/../" in f"/{value}"):
            raise ValueError("output_prefix must look like outputs/some/folder/ (ending in /)")
        return value

    @model_validator(mode="after")
    def _check_request(self) -> InboxRule:
        # The same validation as the API: a rule that could never make a valid request is refused.
        try:
            self.edit_request(prompt=self.prompt, images=[_PLACEHOLDER_IMAGE], mask=None)
        except ValidationError as exc:
            raise ValueError("; ".join(str(e["msg"]) for e in exc.errors())) from None
        return self

    def matches(self, key: str) -> bool:
        """Whether an upload at ``key`` falls under this rule."""
        return key.startswith(self.prefix)

    def edit_request(self, *, prompt: str, images: list[str], mask: str | None) -> ImageRequest:
        """The canonical request this rule makes for one upload."""
        return ImageRequest(
            prompt=prompt,
            size=self.size,
            quality=self.quality,
            background=self.background,
            output_format=self.output_format,
            output_compression=self.output_compression,
            input_fidelity=self.input_fidelity,
            providers=self.providers,
            images=images,
            mask=mask,
        )

    def output_key_stem(self, key: str, *, client_id: str, task_id: str) -> str:
        """Where the edit of ``key`` goes: the output prefix + its path below the rule's prefix,
        without extension, + ``.{task_id}`` (a re-upload never overwrites an earlier result)."""
        prefix = self.output_prefix or f"outputs/{client_id}/{self.prefix}"
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        relative = key[len(self.prefix) :]
        folder, _, name = relative.rpartition("/")
        stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
        return f"{prefix}{folder + '/' if folder else ''}{stem}.{task_id}"


class InboxRules(BaseModel):
    """The whole rules document."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    rules: list[InboxRule] = Field(default_factory=list, max_length=200)

    @field_validator("rules")
    @classmethod
    def _unique_prefixes(cls, rules: list[InboxRule]) -> list[InboxRule]:
        prefixes = [rule.prefix for rule in rules]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError("two rules have the same prefix")
        return rules

    def rule_for(self, key: str) -> InboxRule | None:
        """The rule with the longest prefix that ``key`` starts with, if any."""
        candidates = [rule for rule in self.rules if rule.matches(key)]
        return max(candidates, key=lambda rule: len(rule.prefix), default=None)

    @classmethod
    def parse(cls, document: str) -> InboxRules:
        """Parse the JSON document, or raise :class:`UploadRejected` (``inbox_rules_invalid``)."""
        try:
            return cls.model_validate_json(document)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}"
                for e in exc.errors()[:5]
            )
            raise UploadRejected(
                f"the inbox rules document is invalid: {problems}", code="inbox_rules_invalid"
            ) from None


class RulesSource:
    """The rules document (an SSM parameter in AWS), cached for ``ttl_seconds``."""

    def __init__(self, load: Callable[[], str], *, ttl_seconds: float) -> None:
        self._load = load
        self._ttl = ttl_seconds
        self._cached: tuple[float, str] | None = None

    def current(self) -> InboxRules:
        """The rules in force now (raises :class:`UploadRejected` if the document is invalid)."""
        if self._cached is None or time.monotonic() - self._cached[0] >= self._ttl:
            self._cached = (time.monotonic(), self._load())
        return InboxRules.parse(self._cached[1])
