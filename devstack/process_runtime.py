"""``ProcessRuntime``: each function of the stack in its own worker processes, as Lambda runs it.

Each worker (``devstack/worker.py``) is started with exactly its function's environment, imports
the handler once and then serves one invocation at a time. A function has a small pool of them,
so invocations of one function run in parallel up to the pool size, and of different functions
always. A handler's exception fails its invocation and the worker serves on; a worker that dies
or outlives the function's timeout fails its invocation and is replaced. Worker output is
forwarded line by line to a ``LogSink`` (this process's stdout and stderr by default).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import IO, Any, Final, Protocol

from devstack.runtime import FunctionError, FunctionRegistry, LocalFunction
from devstack.worker import WorkerSpec

WORKER_INIT_TIMEOUT_S: Final = 60.0
"""How long a new worker may take to import its handler (a loaded 2-core machine is slow)."""

STOP_GRACE_S: Final = 2.0
"""How long a stopped worker gets to exit on its own before it is killed."""

PROCESS_VARIABLES: Final = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR")
"""Variables of this process a worker keeps: the OS's, not configuration (Lambda sets its own)."""


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


class ProcessRuntime(FunctionRegistry):
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

    def restart(self, name: str) -> None:
        """Replace the function's workers with new ones (cold starts: caches emptied, as after
        a deploy); in-flight invocations of the old ones fail."""
        function = self.get(name)
        pool = _Pool(lambda: self._start_worker(function, pool), self._size)
        with self._pools_lock:
            old = self._pools[function.logical_id]
            self._pools[function.logical_id] = pool
        old.close()
        if self._prestart:
            pool.prestart()

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
