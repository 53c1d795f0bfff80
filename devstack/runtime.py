"""Runs the stack's Lambda handlers in this process, with the environment template.yaml gives them.

moto can only run Lambda code in Docker, which these machines lack, so devstack patches moto's
invoke to call the handler here instead (see ``patch_moto_lambda``). One lock serialises
invocations because each swaps in its own function's environment variables.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from devstack.template import ROOT


@dataclass
class LocalFunction:
    """One function of the template, as devstack runs it."""

    logical_id: str
    name: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    memory_mb: int
    module: ModuleType | None = None
    invocations: int = 0


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


class FunctionRuntime:
    """Registry of local functions; invokes them one at a time in this process."""

    def __init__(self, overrides: dict[str, str] | None = None) -> None:
        self._functions: dict[str, LocalFunction] = {}
        self._lock = threading.RLock()
        self._overrides = overrides or {}
        self.log: list[tuple[float, str, str]] = []  # (time, function, outcome)

    def register(self, function: LocalFunction) -> None:
        """Make ``function`` invokable by its physical name and its logical id."""
        self._functions[function.name] = function
        self._functions[function.logical_id] = function

    def get(self, name: str) -> LocalFunction:
        """A registered function by physical name or logical id."""
        return self._functions[name]

    def invoke(self, name: str, event: Any) -> Any:
        """Run the handler on ``event`` and return its result (exceptions propagate)."""
        function = self._functions[name]
        with self._lock, self._environment(function):
            module = self._load(function)
            handler_name = function.handler.split(".", 1)[1]
            handler: Callable[[Any, Any], Any] = getattr(module, handler_name)
            context = FakeContext(
                function_name=function.name,
                memory_limit_in_mb=function.memory_mb,
                timeout_s=function.timeout,
                invoked_function_arn=(
                    f"arn:aws:lambda:us-east-1:123456789012:function:{function.name}"
                ),
            )
            function.invocations += 1
            try:
                result = handler(event, context)
            except Exception:
                self.log.append((time.time(), function.logical_id, "error"))
                raise
            self.log.append((time.time(), function.logical_id, "ok"))
            return result

    def _load(self, function: LocalFunction) -> ModuleType:
        if function.module is None:
            module_file, _ = function.handler.split(".", 1)
            path = function.code_dir / f"{module_file}.py"
            module_name = f"devstack_functions.{function.logical_id}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            function.module = module
        return function.module

    @contextmanager
    def _environment(self, function: LocalFunction) -> Iterator[None]:
        values = {
            **function.environment,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            **self._overrides,
        }
        saved = {key: os.environ.get(key) for key in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old


_PATCHED: dict[str, Any] = {}


def patch_moto_lambda(runtime: FunctionRuntime) -> None:
    """Route moto's Lambda invocations (Invoke API, Step Functions tasks) to ``runtime``.

    Pinned to moto 5.2.5's private ``LambdaFunction._invoke_lambda(event) -> (body, errored,
    logs)``; ``tests/integration/test_devstack_patch.py`` smoke-tests it.
    """
    from moto.awslambda.models import LambdaFunction

    if "original" not in _PATCHED:
        _PATCHED["original"] = LambdaFunction._invoke_lambda

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        payload = json.loads(event) if isinstance(event, str | bytes) else (event or {})
        try:
            result = runtime.invoke(self.function_name, payload)
        except Exception as exc:
            body = {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "stackTrace": traceback.format_exc().splitlines()[-5:],
            }
            return json.dumps(body), True, traceback.format_exc()
        return json.dumps(result), False, ""

    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]


def code_dir_of(code_uri: str) -> Path:
    """The folder of a CodeUri relative to the repository root."""
    return (ROOT / code_uri).resolve()
