"""Runs the stack's Lambda handlers with the environment template.yaml gives each function.

moto can only run Lambda code in Docker, which these machines lack, so devstack runs the
handlers itself and patches moto's invoke to call them (see ``patch_moto_lambda``). Two
runtimes, one interface (``FunctionRuntime``):

- ``ProcessRuntime`` (``devstack/process_runtime.py``, the default) does what Lambda does: each
  function runs in its own worker processes, concurrently.
- ``InlineRuntime`` (here) runs the handlers in this process, one at a time under ``lock``,
  swapping each function's environment in: for measurements that patch this process (``bench``).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from devstack.template import ROOT
from devstack.worker import FakeContext, load_module

__all__ = [
    "FakeContext",
    "FunctionError",
    "FunctionRegistry",
    "FunctionRuntime",
    "InlineRuntime",
    "LocalFunction",
    "code_dir_of",
    "patch_moto_lambda",
]


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
    credentials: dict[str, str] = field(default_factory=dict)
    """The execution role's credentials (``AWS_ACCESS_KEY_ID``...): none, devstack's own."""
    module: ModuleType | None = None
    invocations: int = 0

    @property
    def arn(self) -> str:
        """The function's ARN in devstack's account."""
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.name}"

    @property
    def handler_path(self) -> Path:
        """The file of the handler's module."""
        return self.code_dir / f"{self.handler.split('.', 1)[0]}.py"

    @property
    def handler_name(self) -> str:
        """The handler function's name inside its module."""
        return self.handler.split(".", 1)[1]


class FunctionError(Exception):
    """An invocation that failed: the handler raised, its worker died, or it timed out.

    ``error_type``, ``error_message`` and ``stack_trace`` are what Lambda reports for it
    (the handler's exception type, or ``Runtime.ExitError`` / ``Sandbox.Timedout`` /
    ``Runtime.ImportModuleError``).
    """

    def __init__(
        self,
        function: str,
        error_type: str,
        error_message: str,
        stack_trace: str = "",
        *,
        worker_lost: bool = False,
    ) -> None:
        super().__init__(f"{function}: {error_type}: {error_message}")
        self.function = function
        self.error_type = error_type
        self.error_message = error_message
        self.stack_trace = stack_trace
        self.worker_lost = worker_lost
        """True when the worker that ran it is gone (crashed, timed out, or stopped)."""


class FunctionRuntime(Protocol):
    """Registers the template's functions and invokes them."""

    @property
    def concurrency(self) -> int:
        """How many invocations of one function can run at the same time."""
        ...

    def register(self, function: LocalFunction) -> None:
        """Make ``function`` invokable by its physical name and its logical id."""
        ...

    def get(self, name: str) -> LocalFunction:
        """A registered function by physical name or logical id."""
        ...

    def invoke(self, name: str, event: Any) -> Any:
        """Run the function on ``event``; its result, or :class:`Exception` when it failed."""
        ...

    def function_environment(self, function: LocalFunction) -> dict[str, str]:
        """The variables an invocation of ``function`` sees, its role's credentials included."""
        ...

    def stop(self) -> None:
        """Stop running functions (in-flight invocations fail)."""
        ...


class FunctionRegistry:
    """Functions by physical name and by logical id, and the environment each runs with."""

    def __init__(self, environment: Mapping[str, str]) -> None:
        self._functions: dict[str, LocalFunction] = {}
        self._environment = dict(environment)

    def register(self, function: LocalFunction) -> None:
        """Make ``function`` invokable by its physical name and its logical id."""
        self._functions[function.name] = function
        self._functions[function.logical_id] = function

    def get(self, name: str) -> LocalFunction:
        """A registered function by physical name or logical id."""
        return self._functions[name]

    def functions(self) -> list[LocalFunction]:
        """Every registered function, once each."""
        return list({id(f): f for f in self._functions.values()}.values())

    def function_environment(self, function: LocalFunction) -> dict[str, str]:
        """The template's variables, Lambda's own, devstack's overrides (which win over both),
        then the function's role credentials (which win over devstack's own)."""
        return {
            **function.environment,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            **self._environment,
            **function.credentials,
        }


# -- in this process, one at a time ---------------------------------------------------------------
class InlineRuntime(FunctionRegistry):
    """Runs handlers in this process, one at a time, each in its own function's environment.

    For measurements that patch this process (``bench`` counts botocore and httpx calls by
    patching them here): the old serial behaviour, not how Lambda runs functions.
    """

    def __init__(self, environment: Mapping[str, str] | None = None) -> None:
        super().__init__(environment or {})
        self.lock = threading.RLock()
        """Held for the whole of each invocation (re-entrant: a wrapper may take it first)."""

    @property
    def concurrency(self) -> int:
        """One invocation at a time."""
        return 1

    def invoke(self, name: str, event: Any) -> Any:
        """Run the handler on ``event`` and return its result (exceptions propagate)."""
        function = self.get(name)
        with self.lock, self._environment_of(function):
            if function.module is None:
                function.module = load_module(function.handler_path, function.logical_id)
            handler: Callable[[Any, Any], Any] = getattr(function.module, function.handler_name)
            context = FakeContext(
                function_name=function.name,
                memory_limit_in_mb=function.memory_mb,
                timeout_s=function.timeout,
                invoked_function_arn=function.arn,
            )
            function.invocations += 1
            return handler(event, context)

    def stop(self) -> None:
        """Nothing runs in the background."""

    @contextlib.contextmanager
    def _environment_of(self, function: LocalFunction) -> Iterator[None]:
        values = self.function_environment(function)
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


# -- moto's Lambda invoke ---------------------------------------------------------------------
_PATCHED: dict[str, Any] = {}


def patch_moto_lambda(runtime: FunctionRuntime) -> None:
    """Route moto's Lambda invocations (Invoke API, Step Functions tasks) to ``runtime``.

    Pinned to moto 5.2.5's private ``LambdaFunction._invoke_lambda(event) -> (body, errored,
    logs)``; ``tests/devstack/test_local_aws.py`` smoke-tests it.
    """
    from moto.awslambda.models import LambdaFunction

    if "original" not in _PATCHED:
        _PATCHED["original"] = LambdaFunction._invoke_lambda

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        payload = json.loads(event) if isinstance(event, str | bytes) else (event or {})
        try:
            result = runtime.invoke(self.function_name, payload)
        except FunctionError as exc:
            body = {
                "errorMessage": exc.error_message,
                "errorType": exc.error_type,
                "stackTrace": exc.stack_trace.splitlines()[-5:],
            }
            return json.dumps(body), True, exc.stack_trace
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
