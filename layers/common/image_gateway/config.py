"""Settings: the environment ``template.yaml`` gives each function, validated once.

Logic never reads ``os.environ``; handlers build :class:`Settings` at first use and pass it on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, Field, ValidationError, field_validator

from image_gateway.images.inputs import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_INPUT_PIXELS
from image_gateway.providers.registry import DEFAULT_BASE_URLS, PROVIDER_NAMES

OPTIONAL_ENVIRONMENT: Final[dict[str, str]] = {
    "event_source": "EVENT_SOURCE",
    "state_machine_arn": "STATE_MACHINE_ARN",
    "dispatch_queue_url": "DISPATCH_QUEUE_URL",
    "batch_queue_url": "BATCH_QUEUE_URL",
    "providers_parameter": "PROVIDERS_PARAMETER",
    "provider_sync_timeout_seconds": "PROVIDER_SYNC_TIMEOUT_SECONDS",
    "public_base_url": "PUBLIC_BASE_URL",
    "callback_base_url": "CALLBACK_BASE_URL",
    "time_scale": "TIME_SCALE",
    "task_deadline_seconds": "TASK_DEADLINE_SECONDS",
    "provider_timeout_seconds": "PROVIDER_TIMEOUT_SECONDS",
    "output_url_ttl_seconds": "OUTPUT_URL_TTL_SECONDS",
    "webhook_queue_url": "WEBHOOK_QUEUE_URL",
    "webhook_dead_letter_queue_url": "WEBHOOK_DEAD_LETTER_QUEUE_URL",
    "webhook_key_id": "WEBHOOK_KEY_ID",
    "client_requests_per_minute": "CLIENT_REQUESTS_PER_MINUTE",
    "client_max_running_tasks": "CLIENT_MAX_RUNNING_TASKS",
    "client_max_queued_tasks": "CLIENT_MAX_QUEUED_TASKS",
    "queue_timeout_seconds": "QUEUE_TIMEOUT_SECONDS",
    "client_daily_budget_usd": "CLIENT_DAILY_BUDGET_USD",
}
"""Settings read from an environment variable when it is set (else the field's default; the
template's parameter defaults must agree: tests/template/test_settings_defaults.py)."""


class Settings(BaseModel):
    """Everything configurable, with the defaults a deployed stack would use."""

    table_name: str
    bucket_name: str
    event_bus_name: str
    event_source: str = "image-gateway"
    state_machine_arn: str | None = None
    dispatch_queue_url: str | None = Field(
        default=None, description="SQS queue of sync provider calls (the dispatch function)"
    )
    batch_queue_url: str | None = Field(
        default=None, description="SQS queue of batch work (the batch function)"
    )
    providers_parameter: str | None = Field(
        default=None, description="SSM parameter with provider order, options and prices"
    )
    webhook_secret_arn: str
    webhook_queue_url: str | None = Field(
        default=None, description="SQS queue of signed webhook attempts to callers"
    )
    webhook_dead_letter_queue_url: str | None = Field(
        default=None, description="where a webhook goes after its last failed attempt"
    )
    webhook_key_id: str | None = Field(
        default=None, description="KMS key that encrypts the per-client webhook secrets"
    )
    provider_keys_secret_arn: str
    default_providers: list[str] = Field(
        default_factory=lambda: list(PROVIDER_NAMES),
        description="order used when a request names no provider (the parameter's order wins)",
    )
    disabled_providers: frozenset[str] = frozenset()
    provider_base_urls: dict[str, str] = Field(
        default_factory=dict, description="overrides of the registry's documented base URLs"
    )
    public_base_url: str | None = Field(
        default=None, description="base URL of the HTTP API for provider callbacks"
    )
    callback_base_url: str | None = Field(
        default=None,
        description="the HTTP API's URL, for provider callbacks of tasks made by a function "
        "the API does not invoke (the compat function); PUBLIC_BASE_URL wins",
    )
    time_scale: float = Field(default=1.0, gt=0, description="multiplies every latency/deadline")
    task_deadline_seconds: int = Field(default=900, gt=0)
    provider_timeout_seconds: float = Field(default=20.0, gt=0)
    provider_sync_timeout_seconds: float = Field(
        default=180.0, gt=0, description="one sync provider call (dispatch function only)"
    )
    output_url_ttl_seconds: int = Field(default=3600, gt=0)
    input_url_ttl_seconds: int = Field(default=6 * 3600, gt=0)
    upload_url_ttl_seconds: int = Field(
        default=900, gt=0, description="presigned PUT URLs of POST /v1/uploads"
    )
    fetch_allow_private_hosts: frozenset[str] = frozenset()
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_input_pixels: int = Field(
        default=DEFAULT_MAX_INPUT_PIXELS,
        gt=0,
        description="largest input image or mask the API accepts, in pixels (header dimensions)",
    )
    max_request_body_bytes: int = Field(
        default=6 * 1024 * 1024,
        gt=0,
        description="largest JSON body the API reads (Lambda takes at most 6 MiB per invocation)",
    )

    client_requests_per_minute: int = Field(
        default=6_000, ge=0, description="submits per minute per client, unless its own are set"
    )
    client_max_running_tasks: int = Field(
        default=100,
        ge=0,
        description="tasks per client at providers at once (more wait their turn), unless its "
        "own are set",
    )
    client_max_queued_tasks: int = Field(
        default=50_000,
        ge=0,
        description="tasks per client waiting for a running place (more get 429 queue_full)",
    )
    queue_timeout_seconds: int = Field(
        default=86_400, gt=0, description="a task that never reached a provider expires after"
    )
    client_daily_budget_usd: float | None = Field(
        default=None, ge=0, description="estimated spend per client and UTC day; None: none"
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from environment variables (names in upper case)."""
        env = os.environ if environ is None else environ
        raw: dict[str, object] = {
            "table_name": env.get("TABLE_NAME"),
            "bucket_name": env.get("BUCKET_NAME"),
            "event_bus_name": env.get("EVENT_BUS_NAME"),
            "webhook_secret_arn": env.get("WEBHOOK_SECRET_ARN"),
            "provider_keys_secret_arn": env.get("PROVIDER_KEYS_SECRET_ARN"),
            "disabled_providers": frozenset(_names(env.get("DISABLED_PROVIDERS", ""))),
            "fetch_allow_private_hosts": frozenset(
                h.strip() for h in env.get("FETCH_ALLOW_PRIVATE_HOSTS", "").split(",") if h.strip()
            ),
        }
        for field, var in OPTIONAL_ENVIRONMENT.items():
            if env.get(var):
                raw[field] = env[var]
        if env.get("DEFAULT_PROVIDERS"):
            raw["default_providers"] = _names(env["DEFAULT_PROVIDERS"])
        if env.get("PROVIDER_BASE_URLS"):
            raw["provider_base_urls"] = env["PROVIDER_BASE_URLS"]  # JSON, validated below
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            missing = [".".join(str(p) for p in e["loc"]) for e in exc.errors()]
            raise RuntimeError(f"function misconfigured, check environment: {missing}") from exc

    @field_validator("provider_base_urls", mode="before")
    @classmethod
    def _parse_base_urls(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("provider_base_urls")
    @classmethod
    def _known_http_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for name, url in value.items():
            if name not in PROVIDER_NAMES:
                raise ValueError(f"PROVIDER_BASE_URLS names unknown provider {name!r}")
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"PROVIDER_BASE_URLS[{name!r}] is not an http(s) URL")
        return value

    def provider_base_url(self, name: str) -> str:
        """Where provider ``name`` lives: the override, else its documented base URL."""
        return self.provider_base_urls.get(name) or DEFAULT_BASE_URLS[name]

    def scaled(self, seconds: float) -> float:
        """A real-world duration under this stack's time scale."""
        return seconds * self.time_scale


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]
