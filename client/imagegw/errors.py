"""The client's exceptions: each carries a stable ``code`` (the gateway's own where it sent one).

``ImagegwError``
├── ``ApiError``: the gateway answered with an error (``status``, its ``code``, ``details``)
│   ├── ``BadRequest`` (400), ``Unauthorized`` (401), ``NotFound`` (404), ``Conflict`` (409),
│   │   ``PayloadTooLarge`` (413), ``Unprocessable`` (422), ``RateLimited`` (429)
│   └── ``ServerError`` (5xx)
├── ``ConnectionFailed``: no answer (refused, DNS, timeout): ``connection_error``
├── ``InputError``: a local input the client cannot send (missing file, not an image)
├── ``ConfigError``: no gateway URL or key was given or found
├── ``TaskFailed``: the task ended ``failed``, ``cancelled`` or ``expired`` (``task``)
├── ``WaitTimeout``: ``wait(timeout=...)`` ran out while the task was still open (``task``)
└── ``IntegrityError``: a downloaded image does not match its sha256 or size
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagegw.models import TaskInfo


class ImagegwError(Exception):
    """Base of every error this package raises on purpose."""

    code: str = "imagegw_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ApiError(ImagegwError):
    """The gateway answered with an error body ``{"error": {"code", "message", ...}}``."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.details: dict[str, Any] = details or {}

    def __str__(self) -> str:
        return f"{self.code} (HTTP {self.status}): {self.message}"

    @property
    def retryable(self) -> bool:
        """True for answers worth another try later (429, 5xx)."""
        return self.status == 429 or self.status >= 500


class BadRequest(ApiError):
    """400: the request broke a rule (``validation_error``, ``invalid_image``, ...)."""


class Unauthorized(ApiError):
    """401: no key, or a key the gateway does not know."""


class NotFound(ApiError):
    """404: no such task (or another client's), or no such route."""


class Conflict(ApiError):
    """409: e.g. ``task_not_cancellable``, ``idempotency_key_reused``."""


class PayloadTooLarge(ApiError):
    """413: a body or an input over a limit."""


class Unprocessable(ApiError):
    """422: well-formed but refused once looked at: no provider can make this
    (``unsupported_by_provider``, ``no_provider_can_honour``), or ``callback_url_refused``."""


class RateLimited(ApiError):
    """429: too many requests; ``retry_after`` seconds if the gateway said."""

    retry_after: float | None = None


class ServerError(ApiError):
    """5xx: the gateway (or what is in front of it) failed."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: Unprocessable,
    429: RateLimited,
}


def api_error(status: int, body: Any, text: str = "") -> ApiError:
    """The exception for an error answer; the gateway's ``code`` when its body has one."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code, message = error["code"], str(error.get("message", ""))
        details = {k: v for k, v in error.items() if k not in ("code", "message")}
    else:  # not the gateway's shape (a proxy, API Gateway's own 413/500 ...)
        code = {413: "payload_too_large", 429: "rate_limited"}.get(status, f"http_{status}")
        message = (body.get("message") if isinstance(body, dict) else None) or text[:200]
        details = {}
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return kind(status, code, str(message or f"HTTP {status}"), details)


class ConnectionFailed(ImagegwError):
    """The gateway (or the storage holding an image) could not be reached or did not answer."""

    code = "connection_error"


class InputError(ImagegwError, ValueError):
    """A local input that cannot be sent (no such file, not a PNG, JPEG or WebP image)."""

    code = "invalid_input"


class ConfigError(ImagegwError):
    """No gateway URL or API key: give them, set IMAGEGW_URL / IMAGEGW_KEY, or start devstack."""

    code = "not_configured"


class TaskFailed(ImagegwError):
    """The task ended without an image; ``code`` is its error code (or its status)."""

    def __init__(self, task: TaskInfo) -> None:
        error = task.error
        code = error.code if error is not None else task.status
        message = error.message if error is not None else f"the task ended {task.status}"
        super().__init__(f"task {task.task_id} {task.status}: {message}", code=code)
        self.task = task


class WaitTimeout(ImagegwError):
    """The task was still open when the wait's time ran out (it goes on at the gateway)."""

    code = "wait_timeout"

    def __init__(self, task: TaskInfo, timeout: float) -> None:
        super().__init__(f"task {task.task_id} still {task.status} after {timeout:g} s")
        self.task = task


class IntegrityError(ImagegwError):
    """A downloaded image is not what the gateway stored (sha256 or size differ)."""

    code = "sha256_mismatch"
