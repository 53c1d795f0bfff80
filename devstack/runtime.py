"""Runs the stack's Lambda handlers with the environment template.yaml gives each function.

moto can only run Lambda code in Docker, which these machines lack, so devstack runs the
handlers itself and patches moto's invoke to call them (see ``patch_moto_lambda``). Two
runtimes, one interface (``FunctionRuntime``):

- ``ProcessRuntime`` (the default) does what Lambda does: each function has its own worker
  processes (``devstack/worker.py``), started with exactly that function's environment, each
  importing the handler once and then serving one invocation at a time. A function has a small
  pool of them, so invocations of one function run in parallel up to the pool size, and of
  different functions always. A handler's exception fails its invocation; a worker that dies or
  runs out of time fails its invocation and is replaced. Worker output is forwarded line by line.
- ``InlineRuntime`` runs the handlers in this process, one at a time under ``lock``, swapping
  each function's environment in: for measurements that patch this process (``bench``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Final, Protocol

from devstack.template import ROOT
from devstack.worker import FakeContext, WorkerSpec, load_module

__all__ = [
    "FakeContext",
    "FunctionError",
    "FunctionRuntime",
    "InlineRuntime",
    "LocalFunction",
    "ProcessRuntime",
    "code_dir_of",
    "patch_moto_lambda",
]

WORKER_INIT_TIMEOUT_S: Final = 60.0
"""How long a new worker may take to import its handler (a loaded 2-core machine is slow)."""

STOP_GRACE_S: Final = 2.0
"""How long a stopped worker gets to exit on its own before it is killed."""

PROCESS_VARIABLES: Final = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR")
"""Variables of this process a worker keeps: the OS's, not configuration (Lambda sets its own)."""


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

    def stop(self) -> None:
        """Stop running functions (in-flight invocations fail)."""
        ...


class _Registry:
    """Functions by physical name and by logical id."""

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
        """The template's variables, Lambda's own, then devstack's overrides (which win)."""
        return {
            **function.environment,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            **self._environment,
        }


# -- in this process, one at a time ---------------------------------------------------------------
class InlineRuntime(_Registry):
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


# -- worker processes, concurrently -----------------------------------------------------------
class LogSink(Protocol):
    """Where the lines workers write to stdout and stderr go."""

    def line(self, function: str, stream: str, text: str) -> None:
        """One line (with its newline) that ``function`` wrote to ``stream`` (stdout/stderr)."""
        ...


class ConsoleSink:
    """Writes worker lines to this process's stdout/stderr, whole lines at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def line(self, function: str, stream: str, text: str) -> None:
        """Write the line to the same stream of this process (looked up now: tests swap it)."""
        target = sys.stdout if stream == "stdout" else sys.stderr
        with self._lock, contextlib.suppress(ValueError, OSError):  # closed at interpreter exit
            target.write(text)
            target.flush()


def worker_python_path() -> str:
    """This process's ``sys.path`` as a PYTHONPATH, so workers import what it imports."""
    entries = dict.fromkeys(os.path.abspath(entry) for entry in sys.path if entry)
    return os.pathsep.join(entries)


class _Worker:
    """One worker process of one function, and the socket it answers on."""

    def __init__(
        self,
        function: LocalFunction,
        environment: dict[str, str],
        sink: LogSink,
        on_exit: Callable[[_Worker], None],
    ) -> None:
        self.function = function
        self._on_exit = on_exit
        ours, theirs = socket.socketpair()
        spec = WorkerSpec(
            logical_id=function.logical_id,
            name=function.name,
            path=str(function.handler_path),
            handler=function.handler_name,
            memory_mb=function.memory_mb,
            timeout=function.timeout,
            arn=function.arn,
        )
        with theirs:
            self.process = subprocess.Popen(  # noqa: S603 - our interpreter, our module
                [sys.executable, "-m", "devstack.worker", str(theirs.fileno()), spec.to_json()],
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(theirs.fileno(),),
            )
        self._socket = ours
        self._stream = ours.makefile("rwb")
        self._ready = False
        self._lost = False
        for stream, pipe in (("stdout", self.process.stdout), ("stderr", self.process.stderr)):
            threading.Thread(
                target=self._forward,
                args=(stream, pipe, sink),
                name=f"{function.logical_id}-{self.process.pid}-{stream}",
                daemon=True,
            ).start()

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    @property
    def usable(self) -> bool:
        """True while the worker can take an invocation."""
        return not self._lost and self.process.poll() is None

    def invoke(self, event: Any) -> Any:
        """Run one invocation; the handler's result, or :class:`FunctionError`."""
        if not self._ready:
            self._read(WORKER_INIT_TIMEOUT_S, "init")  # the cold start
            self._ready = True
        request_id = str(uuid.uuid4())
        try:
            line = json.dumps({"event": event, "request_id": request_id}).encode() + b"\n"
        except (TypeError, ValueError) as exc:
            raise FunctionError(self.function.name, "Runtime.MarshalError", str(exc)) from exc
        try:
            self._stream.write(line)
            self._stream.flush()
        except (OSError, ValueError) as exc:
            raise self._died() from exc
        return self._read(float(self.function.timeout), "invoke")["result"]

    def signal_stop(self, *, busy: bool) -> None:
        """Ask the worker to exit: an idle one sees its socket close, a busy one is terminated."""
        self._lost = True
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)  # also wakes a reader blocked on it
        if busy:
            with contextlib.suppress(OSError):
                self.process.terminate()

    def wait_stopped(self) -> None:
        """Wait for the process to exit (killing it after a grace period); close the socket."""
        try:
            self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            self._stream.close()
            self._socket.close()

    def stop(self, *, busy: bool = False) -> None:
        """Stop the worker and wait until its process is gone."""
        self.signal_stop(busy=busy)
        self.wait_stopped()

    def _read(self, timeout: float, phase: str) -> dict[str, Any]:
        self._socket.settimeout(timeout)
        try:
            line = self._stream.readline()
        except TimeoutError as exc:
            self._lost = True
            self.process.kill()
            what = "Task timed out" if phase == "invoke" else "Init timed out"
            raise FunctionError(
                self.function.name,
                "Sandbox.Timedout",
                f"{what} after {timeout:.2f} seconds",
                worker_lost=True,
            ) from exc
        except (OSError, ValueError) as exc:  # ValueError: stop() closed the stream meanwhile
            raise self._died() from exc
        if not line:
            raise self._died()
        reply: dict[str, Any] = json.loads(line)
        if reply["type"] == "error":
            lost = reply["errorType"] == "Runtime.ImportModuleError"
            self._lost = self._lost or lost
            raise FunctionError(
                self.function.name,
                str(reply["errorType"]),
                str(reply["errorMessage"]),
                str(reply.get("stackTrace", "")),
                worker_lost=lost,
            )
        return reply

    def _died(self) -> FunctionError:
        self._lost = True
        try:
            code = self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        how = f"signal {-code}" if code < 0 else f"exit status {code}"
        return FunctionError(
            self.function.name,
            "Runtime.ExitError",
            f"the worker process exited during the invocation ({how})",
            worker_lost=True,
        )

    def _forward(self, stream: str, pipe: IO[bytes] | None, sink: LogSink) -> None:
        if pipe is None:
            return
        with pipe:
            for raw in iter(pipe.readline, b""):
                sink.line(self.function.logical_id, stream, raw.decode("utf-8", "replace"))
        if stream == "stdout":  # its end: the process exited (or is about to)
            self.process.wait()
            self._on_exit(self)


class _Pool:
    """The worker processes of one function: up to ``size``, started when needed."""

    def __init__(self, start: Callable[[], _Worker], size: int) -> None:
        self._start = start
        self._size = size
        self._idle: list[_Worker] = []
        self._workers: list[_Worker] = []
        self._changed = threading.Condition()
        self._closed = False

    def prestart(self) -> None:
        """Start one worker now, so the first invocation finds it warm (or warming)."""
        with self._changed:
            if not self._closed and not self._workers:
                worker = self._start()
                self._workers.append(worker)
                self._idle.append(worker)

    def acquire(self, function: str) -> _Worker:
        """An idle worker, a new one if the pool has room, or the next one released."""
        with self._changed:
            while True:
                if self._closed:
                    raise FunctionError(
                        function, "Runtime.Stopped", "devstack is stopping", worker_lost=True
                    )
                while self._idle:
                    worker = self._idle.pop()  # the most recently used: the warmest
                    if worker.usable:
                        return worker
                    self._workers.remove(worker)  # died while idle (killed from outside)
                if len(self._workers) < self._size:
                    worker = self._start()
                    self._workers.append(worker)
                    return worker
                self._changed.wait()

    def release(self, worker: _Worker, usable: bool) -> None:
        """Give a worker back after an invocation; a lost one is stopped and replaced."""
        keep = usable and worker.usable
        with self._changed:
            if keep and not self._closed:
                self._idle.append(worker)
            elif worker in self._workers:
                self._workers.remove(worker)
            self._changed.notify()
        if not keep:
            worker.stop(busy=True)
            self.prestart()  # keep one warm, as a replacement

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        with self._changed:
            return [w.pid for w in self._workers if w.usable]

    def exited(self, worker: _Worker) -> None:
        """A worker's process ended: an idle one is forgotten, and replaced if it was the last.

        (A busy one fails its invocation, and :meth:`release` does the same.)
        """
        with self._changed:
            if worker not in self._idle:
                return
            self._idle.remove(worker)
            self._workers.remove(worker)
        self.prestart()

    def close(self) -> None:
        """Stop every worker (busy ones are terminated); waiting and later acquires fail."""
        with self._changed:
            self._closed = True
            workers, idle = self._workers, set(map(id, self._idle))
            self._workers, self._idle = [], []
            self._changed.notify_all()
        for worker in workers:
            worker.signal_stop(busy=id(worker) not in idle)
        for worker in workers:
            worker.wait_stopped()


class ProcessRuntime(_Registry):
    """Runs each function in its own worker processes, concurrently, as Lambda does."""

    def __init__(
        self,
        environment: Mapping[str, str] | None = None,
        *,
        workers_per_function: int = 4,
        prestart: bool = True,
        sink: LogSink | None = None,
    ) -> None:
        if workers_per_function < 1:
            raise ValueError("workers_per_function must be at least 1")
        super().__init__(environment or {})
        self._size = workers_per_function
        self._prestart = prestart
        self._sink = sink or ConsoleSink()
        self._pools: dict[str, _Pool] = {}
        self._pools_lock = threading.Lock()
        self._stopped = False
        self._counting = threading.Lock()

    @property
    def concurrency(self) -> int:
        """Invocations of one function that run at once: its pool size."""
        return self._size

    def register(self, function: LocalFunction) -> None:
        """Make ``function`` invokable; its first worker starts importing it now."""
        super().register(function)
        pool = _Pool(lambda: self._start_worker(function, pool), self._size)
        with self._pools_lock:
            if self._stopped:
                raise RuntimeError("the runtime is stopped")
            self._pools[function.logical_id] = pool
        if self._prestart:
            pool.prestart()

    def environment_of(self, name: str) -> dict[str, str]:
        """Exactly the environment a worker of this function is started with."""
        function = self.get(name)
        basics = {key: os.environ[key] for key in PROCESS_VARIABLES if key in os.environ}
        # Bytecode settings of this process, so that workers import as fast as it does.
        if "PYTHONDONTWRITEBYTECODE" in os.environ:
            basics["PYTHONDONTWRITEBYTECODE"] = os.environ["PYTHONDONTWRITEBYTECODE"]
        basics["PYTHONPATH"] = worker_python_path()
        return {**basics, **self.function_environment(function)}

    def invoke(self, name: str, event: Any) -> Any:
        """Run the function on ``event`` in one of its workers; :class:`FunctionError` if not."""
        function = self.get(name)
        pool = self._pools[function.logical_id]
        worker = pool.acquire(function.name)
        usable = False
        try:
            result = worker.invoke(event)
            usable = True
            return result
        except FunctionError as error:
            usable = not error.worker_lost
            raise
        finally:
            pool.release(worker, usable)
            with self._counting:
                function.invocations += 1

    def worker_pids(self, name: str) -> list[int]:
        """Process ids of the function's live workers."""
        return self._pools[self.get(name).logical_id].pids()

    def stop(self) -> None:
        """Stop every worker of every function (in-flight invocations fail)."""
        with self._pools_lock:
            self._stopped = True
            pools = list(self._pools.values())
        threads = [threading.Thread(target=pool.close) for pool in pools]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _start_worker(self, function: LocalFunction, pool: _Pool) -> _Worker:
        environment = self.environment_of(function.logical_id)
        return _Worker(function, environment, self._sink, on_exit=pool.exited)


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
