"""One execution environment of one function: the worker process devstack's runtime starts.

``python -m devstack.worker <socket-fd> <spec-json>`` imports the handler once (the function's
cold start), says so on the socket, then serves invocations one at a time, like a warm Lambda
execution environment. The process was started with exactly the function's environment, so
whatever the handler reads (Powertools' service name, table names, endpoints) is its own.

Protocol: one JSON document per line on the socket. The worker first writes
``{"type": "ready"}`` or an ``"error"`` (the import failed; it then exits). Each request
``{"event", "request_id", "deadline_ms"}`` gets ``{"type": "result", "result"}`` or
``{"type": "error", "errorType", "errorMessage", "stackTrace"}``. The handler's stdout and
stderr are the process's own; devstack forwards them line by line.
"""

from __future__ import annotations

import importlib.util
import io
import json
import signal
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

Handler = Callable[[Any, Any], Any]


@dataclass
class FakeContext:
    """The parts of the Lambda context object Powertools and our handlers read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(default=0.0)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the configured timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to know about its function (passed on its command line)."""

    logical_id: str
    name: str
    path: str
    """The handler's module file."""
    handler: str
    """The handler function's name inside that module."""
    memory_mb: int
    timeout: int
    arn: str

    def to_json(self) -> str:
        """The spec as one JSON string."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        """The spec written by :meth:`to_json`."""
        return cls(**json.loads(text))


def load_module(path: Path, logical_id: str) -> ModuleType:
    """Import a handler module from its file (as ``devstack_functions.<logical id>``)."""
    module_name = f"devstack_functions.{logical_id}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_handler(path: Path, logical_id: str, handler: str) -> Handler:
    """Import the handler module from its file and return the handler function."""
    function: Handler = getattr(load_module(path, logical_id), handler)
    return function


def error_reply(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """The error answer for ``exc``, and the same logged to stderr as Lambda's runtime does."""
    stack = "".join(traceback.format_exception(exc))
    kind = error_type or type(exc).__name__
    print(f"[ERROR] {kind}: {exc}\n{stack}", file=sys.stderr, flush=True)
    return {"type": "error", "errorType": kind, "errorMessage": str(exc), "stackTrace": stack}


def _write(stream: io.BufferedIOBase, message: dict[str, Any]) -> None:
    stream.write(json.dumps(message).encode() + b"\n")
    stream.flush()


def _invoke(handler: Handler, spec: WorkerSpec, request: dict[str, Any]) -> dict[str, Any]:
    context = FakeContext(
        function_name=spec.name,
        memory_limit_in_mb=spec.memory_mb,
        timeout_s=spec.timeout,
        invoked_function_arn=spec.arn,
        aws_request_id=str(request["request_id"]),
    )
    try:
        result = handler(request["event"], context)
    except Exception as exc:
        return error_reply(exc)
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        return error_reply(exc, "Runtime.MarshalError")
    return {"type": "result", "result": result}


def serve(connection: socket.socket, spec: WorkerSpec) -> int:
    """Import the handler, then answer requests until the socket closes; the exit status."""
    stream = connection.makefile("rwb")
    try:
        handler = load_handler(Path(spec.path), spec.logical_id, spec.handler)
    except Exception as exc:
        _write(stream, error_reply(exc, "Runtime.ImportModuleError"))
        return 1
    _write(stream, {"type": "ready"})
    for line in stream:
        _write(stream, _invoke(handler, spec, json.loads(line)))
    return 0


def main(argv: list[str]) -> int:
    """Entry point: ``<socket-fd> <spec-json>``."""
    # devstack stops its workers itself; Ctrl-C in a terminal must not interrupt an invocation.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Line-buffered like Lambda's log capture, so log lines reach devstack as they are written.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
    fd, spec_json = int(argv[0]), argv[1]
    with socket.socket(fileno=fd) as connection:
        return serve(connection, WorkerSpec.from_json(spec_json))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
