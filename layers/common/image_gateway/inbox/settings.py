"""InboxSettings: the extra environment ``template.yaml`` gives the upload-edit function."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field, ValidationError

from image_gateway.images.inputs import DEFAULT_MAX_INPUT_PIXELS


class InboxSettings(BaseModel):
    """Where the inbox is, whose tasks its uploads become, its rules and its limits."""

    bucket_name: str
    client_id: str = Field(min_length=1, max_length=64)
    rules_parameter: str
    max_image_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_pixels: int = Field(default=DEFAULT_MAX_INPUT_PIXELS, gt=0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> InboxSettings:
        """Read ``INBOX_*`` variables."""
        env = os.environ if environ is None else environ
        raw: dict[str, object] = {
            "bucket_name": env.get("INBOX_BUCKET_NAME"),
            "client_id": env.get("INBOX_CLIENT_ID"),
            "rules_parameter": env.get("INBOX_RULES_PARAMETER"),
        }
        for field, var in {
            "max_image_bytes": "INBOX_MAX_IMAGE_BYTES",
            "max_pixels": "INBOX_MAX_PIXELS",
        }.items():
            if env.get(var):
                raw[field] = env[var]
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            missing = [".".join(str(p) for p in e["loc"]) for e in exc.errors()]
            raise RuntimeError(f"function misconfigured, check environment: {missing}") from exc
