"""WebhookSettings: the two variables the webhook function needs, read without pydantic.

The webhook answers a provider at once, so its cold start is the one that matters most
(docs/performance.md): its settings are a frozen dataclass checked by
hand, which imports nothing, instead of :class:`image_gateway.config.Settings` (pydantic and
the provider registry). Every other function uses ``Settings``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class WebhookSettings:
    """Where the callback tokens' key is, and where verified callbacks go."""

    webhook_secret_arn: str
    finalize_queue_url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebhookSettings:
        """Read ``WEBHOOK_SECRET_ARN`` and ``FINALIZE_QUEUE_URL`` (RuntimeError if missing)."""
        env = os.environ if environ is None else environ
        values = {
            "webhook_secret_arn": env.get("WEBHOOK_SECRET_ARN", "").strip(),
            "finalize_queue_url": env.get("FINALIZE_QUEUE_URL", "").strip(),
        }
        missing = sorted(name for name, value in values.items() if not value)
        if missing:
            raise RuntimeError(f"function misconfigured, check environment: {missing}")
        return cls(**values)
