"""One exception hierarchy for the whole gateway.

Every error a caller can see maps to exactly one HTTP status and one stable, machine-readable
``code``. Handlers turn a :class:`GatewayError` into ``{"error": {"code", "message", ...}}``;
anything else is a bug and becomes a 500 ``internal_error``.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_body(self) -> dict[str, Any]:
        """The JSON error body clients receive."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        error.update(self.details)
        return {"error": error}

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides the body (``Retry-After`` of a 429)."""
        return {}


class InvalidRequest(GatewayError):
    """The caller's request is malformed or breaks a documented rule."""

    status_code = 400
    code = "invalid_request"


class Unauthorized(GatewayError):
    """Missing or unknown credentials."""

    status_code = 401
    code = "unauthorized"


class NotFound(GatewayError):
    """The resource does not exist, or belongs to another client."""

    status_code = 404
    code = "not_found"


class Conflict(GatewayError):
    """The request conflicts with the resource's current state."""

    status_code = 409
    code = "conflict"


class PayloadTooLarge(GatewayError):
    """An input is over a size limit."""

    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(GatewayError):
    """A body in a media type the route does not take (``Content-Type``)."""

    status_code = 415
    code = "unsupported_media_type"


class Unprocessable(GatewayError):
    """Well-formed, but refused once looked at: the chosen provider cannot honour it, or a
    ``callback_url``'s host is private or does not exist."""

    status_code = 422
    code = "unsupported_by_provider"


class TooManyRequests(GatewayError):
    """A per-client limit refused the request; nothing was written. Retry after
    ``retry_after_seconds`` (the ``Retry-After`` header every surface sends)."""

    status_code = 429
    code = "rate_limited"

    def __init__(
        self, message: str, *, code: str, retry_after_seconds: int, **details: Any
    ) -> None:
        super().__init__(message, code=code, retry_after_seconds=retry_after_seconds, **details)
        self.retry_after_seconds = retry_after_seconds
        self.passes_with_time = False
        """True when the same request will pass later by itself (the minute's rate, a full
        queue); an entry point with no caller to answer (the S3 inbox) waits instead of
        failing."""

    def headers(self) -> dict[str, str]:
        """``Retry-After`` in whole seconds."""
        return {"Retry-After": str(self.retry_after_seconds)}


class ServiceBusy(GatewayError):
    """The gateway's own shared state kept meeting other writes (every jittered retry spent);
    nothing was written. Retry after ``retry_after_seconds``."""

    status_code = 503
    code = "busy"

    def __init__(self, message: str, *, retry_after_seconds: int, **details: Any) -> None:
        super().__init__(message, retry_after_seconds=retry_after_seconds, **details)
        self.retry_after_seconds = retry_after_seconds

    def headers(self) -> dict[str, str]:
        """``Retry-After`` in whole seconds."""
        return {"Retry-After": str(self.retry_after_seconds)}


class InvalidImage(GatewayError):
    """Bytes that are not a PNG, JPEG or WebP image we can read."""

    status_code = 400
    code = "invalid_image"


class UploadRejected(GatewayError):
    """An S3 inbox upload that cannot become an edit (no rule, missing mask, unreadable...)."""

    status_code = 422
    code = "upload_rejected"


class UnsafeUrl(GatewayError):
    """A URL we refuse to fetch (scheme, private address, redirect loop...)."""

    status_code = 400
    code = "unsafe_url"


class DownloadFailed(GatewayError):
    """A URL could not be downloaded (network error, non-2xx, too large)."""

    status_code = 502
    code = "download_failed"

    def __init__(self, message: str, *, retryable: bool = False, **details: Any) -> None:
        super().__init__(message, **details)
        self.retryable = retryable


class ProviderError(GatewayError):
    """A provider failed; ``retryable`` says whether another try (or provider) may succeed."""

    status_code = 502
    code = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retryable: bool,
        code: str | None = None,
        provider_code: str | None = None,
    ) -> None:
        super().__init__(message, code=code, provider=provider)
        self.provider = provider
        self.retryable = retryable
        self.provider_code = provider_code


class ProviderUnavailable(ProviderError):
    """5xx, timeouts, rate limits, connection errors: worth retrying."""

    code = "provider_unavailable"

    def __init__(self, message: str, *, provider: str, provider_code: str | None = None) -> None:
        super().__init__(message, provider=provider, retryable=True, provider_code=provider_code)


class ProviderBadResponse(ProviderError):
    """The provider answered with something that does not follow its own documentation."""

    code = "provider_bad_response"

    def __init__(self, message: str, *, provider: str) -> None:
        super().__init__(message, provider=provider, retryable=False)


class ProviderRejected(ProviderError):
    """The provider refused the request (moderation, invalid input, auth): not retryable."""

    code = "provider_rejected"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        code: str | None = None,
        provider_code: str | None = None,
    ) -> None:
        super().__init__(
            message, provider=provider, retryable=False, code=code, provider_code=provider_code
        )


def aws_error_code(error: Exception) -> str | None:
    """The ``Error.Code`` of a botocore ``ClientError`` (None for anything else)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None
