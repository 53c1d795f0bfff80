"""JsonLogger: one JSON object per line, as Powertools' Logger writes them, for the webhook.

Every function logs with Powertools' Logger except the webhook: importing Powertools costs it
about 8 ms of a cold start measured against ``import boto3`` (~120 ms here, with a 1.5x
target: docs/performance.md), and the webhook logs one line per call.
This writes the same keys (``level``, ``location``, ``message``, ``timestamp``, ``service``,
``cold_start``, ``function_name``, ``function_memory_size``, ``function_arn``,
``function_request_id``, ``xray_trace_id``, then the appended keys), so queries over the log
groups treat both alike.
Standard library only; the level comes from ``POWERTOOLS_LOG_LEVEL`` like Powertools'.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, TextIO

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


class JsonLogger:
    """Structured log lines to stdout (Lambda sends them to the function's log group)."""

    def __init__(self, service: str | None = None, *, stream: TextIO | None = None) -> None:
        self._service = service or os.environ.get("POWERTOOLS_SERVICE_NAME", "service_undefined")
        level = os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO").upper()
        self._level = _LEVELS.get(level, _LEVELS["INFO"])
        self._stream = stream
        self._keys: dict[str, Any] = {}
        self._cold_start = True

    def bind_invocation(self, context: Any) -> None:
        """Take the Lambda context's keys for this invocation (``cold_start`` only once)."""
        self._keys = {
            "cold_start": self._cold_start,
            "function_name": getattr(context, "function_name", None),
            "function_memory_size": getattr(context, "memory_limit_in_mb", None),
            "function_arn": getattr(context, "invoked_function_arn", None),
            "function_request_id": getattr(context, "aws_request_id", None),
        }
        self._cold_start = False

    def append_keys(self, **keys: Any) -> None:
        """Keys every following line of this invocation carries."""
        self._keys.update(keys)

    def info(self, message: str, **extra: Any) -> None:
        """Log at INFO."""
        self._write("INFO", message, extra)

    def warning(self, message: str, **extra: Any) -> None:
        """Log at WARNING."""
        self._write("WARNING", message, extra)

    def error(self, message: str, **extra: Any) -> None:
        """Log at ERROR."""
        self._write("ERROR", message, extra)

    def _write(self, level: str, message: str, extra: dict[str, Any]) -> None:
        if _LEVELS[level] < self._level:
            return
        caller = sys._getframe(2)
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        record = {
            "level": level,
            "location": f"{caller.f_code.co_name}:{caller.f_lineno}",
            "message": message,
            "timestamp": f"{stamp},{int(now % 1 * 1000):03d}{time.strftime('%z')}",
            "service": self._service,
            **self._keys,
            **extra,
        }
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        if trace:
            record["xray_trace_id"] = trace.split(";")[0].removeprefix("Root=")
        stream = self._stream or sys.stdout
        stream.write(json.dumps(record, default=str) + "\n")
        stream.flush()
