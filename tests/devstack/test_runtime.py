"""devstack's function runtimes: worker processes per function, as Lambda runs them, and the
inline runtime bench uses. Tiny handlers in a temporary folder stand in for the gateway's."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from devstack.process_runtime import ProcessRuntime
from devstack.runtime import FunctionError, InlineRuntime, LocalFunction
from tests.devstack.support import wait_until

HANDLER = """
import json, os, pathlib, sys, time

def handler(event, context):
    action = event["action"]
    if action == "env":
        return dict(os.environ)
    if action == "echo":
        return {"pid": os.getpid(), "request_id": context.aws_request_id, "event": event}
    if action == "fail":
        raise ValueError("bad input " + str(event.get("x")))
    if action == "die":
        os._exit(3)
    if action == "log":
        service = os.environ["POWERTOOLS_SERVICE_NAME"]
        print(json.dumps({"service": service, "message": event["message"]}))
        print("on stderr", file=sys.stderr)
        return None
    if action == "meet":  # returns "met" only if the other invocation runs at the same time
        here = pathlib.Path(event["dir"])
        (here / event["me"]).touch()
        deadline = time.monotonic() + 10
        while not (here / event["other"]).exists():
            if time.monotonic() > deadline:
                return "alone"
            time.sleep(0.01)
        return "met"
    if action == "hang":
        print("hanging", flush=True)
        time.sleep(120)
    raise AssertionError(action)
"""

OVERRIDES = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "POWERTOOLS_LOG_LEVEL": "ERROR"}


class Lines:
    """A log sink that keeps every forwarded line and lets a test wait for one (bounded)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self._changed = threading.Condition()

    def line(self, function: str, stream: str, text: str) -> None:
        with self._changed:
            self.seen.append((function, stream, text))
            self._changed.notify_all()

    def wait_for(self, found: Callable[[tuple[str, str, str]], bool]) -> tuple[str, str, str]:
        with self._changed:
            assert self._changed.wait_for(lambda: any(map(found, self.seen)), timeout=10)
            return next(line for line in self.seen if found(line))


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(HANDLER)
    (tmp_path / "broken.py").write_text("raise RuntimeError('no import for you')\n")
    return tmp_path


def function(code_dir: Path, logical_id: str, *, timeout: int = 30, **env: str) -> LocalFunction:
    return LocalFunction(
        logical_id=logical_id,
        name=f"test-{logical_id}",
        code_dir=code_dir,
        handler="app.handler",
        environment={"POWERTOOLS_SERVICE_NAME": logical_id.lower(), **env},
        timeout=timeout,
        memory_mb=256,
    )


@pytest.fixture
def lines() -> Lines:
    return Lines()


@pytest.fixture
def runtime(code_dir: Path, lines: Lines) -> Iterator[ProcessRuntime]:
    processes = ProcessRuntime(OVERRIDES, workers_per_function=2, sink=lines)
    processes.register(function(code_dir, "Alpha", TABLE_NAME="alpha-table"))
    processes.register(function(code_dir, "Beta"))
    processes.register(function(code_dir, "Slow", timeout=1))
    yield processes
    processes.stop()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_worker_runs_with_exactly_its_functions_environment(
    runtime: ProcessRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a variable of this process that is no function's configuration
    monkeypatch.setenv("DEVSTACK_TEST_PARENT_ONLY", "1")
    # When a function reads its environment
    seen = runtime.invoke("Alpha", {"action": "env"})
    # Then it is exactly what the runtime says it starts the function with
    assert seen == runtime.environment_of("Alpha")
    assert seen["TABLE_NAME"] == "alpha-table"
    assert seen["POWERTOOLS_SERVICE_NAME"] == "alpha"
    assert seen["AWS_LAMBDA_FUNCTION_NAME"] == "test-Alpha"
    assert seen["AWS_ENDPOINT_URL"] == OVERRIDES["AWS_ENDPOINT_URL"]
    assert "DEVSTACK_TEST_PARENT_ONLY" not in seen
    # And another function's variables are not in it
    assert "TABLE_NAME" not in runtime.invoke("Beta", {"action": "env"})


def test_two_functions_run_at_the_same_time(runtime: ProcessRuntime, tmp_path: Path) -> None:
    # Given two invocations that each wait for the other to have started
    alpha = {"action": "meet", "dir": str(tmp_path), "me": "a", "other": "b"}
    beta = {"action": "meet", "dir": str(tmp_path), "me": "b", "other": "a"}
    # When they are invoked together
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(runtime.invoke, ["Alpha", "Beta"], [alpha, beta]))
    # Then both met the other: they ran in parallel
    assert answers == ["met", "met"]


def test_one_function_runs_several_invocations_at_once(
    runtime: ProcessRuntime, tmp_path: Path
) -> None:
    # Given two invocations of one function that each wait for the other
    first = {"action": "meet", "dir": str(tmp_path), "me": "1", "other": "2"}
    second = {"action": "meet", "dir": str(tmp_path), "me": "2", "other": "1"}
    # When they are invoked together
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(runtime.invoke, ["Alpha", "Alpha"], [first, second]))
    # Then they met: two workers of the function served them
    assert answers == ["met", "met"]
    assert len(runtime.worker_pids("Alpha")) == 2


def test_a_handler_exception_fails_its_invocation_and_the_worker_serves_on(
    runtime: ProcessRuntime,
) -> None:
    # Given a warm worker
    before = runtime.invoke("Alpha", {"action": "echo"})["pid"]
    # When the handler raises
    with pytest.raises(FunctionError) as failed:
        runtime.invoke("Alpha", {"action": "fail", "x": 7})
    # Then the invocation fails with the handler's error type, message and traceback
    assert failed.value.error_type == "ValueError"
    assert failed.value.error_message == "bad input 7"
    assert 'raise ValueError("bad input "' in failed.value.stack_trace
    assert not failed.value.worker_lost
    # And the same worker serves the next invocation
    assert runtime.invoke("Alpha", {"action": "echo"})["pid"] == before


def test_a_worker_that_dies_fails_its_invocation_and_is_replaced(
    runtime: ProcessRuntime,
) -> None:
    # Given a warm worker
    before = runtime.invoke("Alpha", {"action": "echo"})["pid"]
    # When the handler kills its process
    with pytest.raises(FunctionError) as failed:
        runtime.invoke("Alpha", {"action": "die"})
    # Then that invocation fails as Lambda reports it, and a new worker serves the next one
    assert failed.value.error_type == "Runtime.ExitError"
    assert "exit status 3" in failed.value.error_message
    after = runtime.invoke("Alpha", {"action": "echo"})["pid"]
    assert after != before
    assert not pid_alive(before)


def test_a_worker_killed_while_idle_is_replaced_without_failing_anything(
    runtime: ProcessRuntime,
) -> None:
    # Given the one warm worker of a function, killed from outside while it waits for work
    [before] = runtime.worker_pids("Beta")
    os.kill(before, signal.SIGKILL)
    # When its death is noticed
    [after] = wait_until(lambda: [p for p in runtime.worker_pids("Beta") if p != before])
    # Then a new warm worker took its place, and it answers the next invocation
    assert runtime.invoke("Beta", {"action": "echo"})["pid"] == after


def test_an_invocation_past_its_timeout_fails_and_the_worker_is_replaced(
    runtime: ProcessRuntime,
) -> None:
    # Given a function with a one-second timeout
    # When its handler runs longer
    with pytest.raises(FunctionError) as failed:
        runtime.invoke("Slow", {"action": "hang"})
    # Then the invocation fails as timed out, and the function still answers
    assert failed.value.error_type == "Sandbox.Timedout"
    assert "after 1.00 seconds" in failed.value.error_message
    assert runtime.invoke("Slow", {"action": "echo"})["event"] == {"action": "echo"}


def test_worker_output_is_forwarded_line_by_line_under_its_function(
    runtime: ProcessRuntime, lines: Lines
) -> None:
    # Given two functions with their own service names
    # When each writes a JSON log line and a stderr line
    runtime.invoke("Alpha", {"action": "log", "message": "from alpha"})
    runtime.invoke("Beta", {"action": "log", "message": "from beta"})
    # Then every line arrives whole, from the function that wrote it, naming its own service
    alpha = lines.wait_for(lambda line: "from alpha" in line[2])
    beta = lines.wait_for(lambda line: "from beta" in line[2])
    assert alpha == ("Alpha", "stdout", '{"service": "alpha", "message": "from alpha"}\n')
    assert beta == ("Beta", "stdout", '{"service": "beta", "message": "from beta"}\n')
    lines.wait_for(lambda line: line == ("Beta", "stderr", "on stderr\n"))


def test_a_handler_that_cannot_be_imported_fails_each_invocation(
    code_dir: Path, lines: Lines
) -> None:
    # Given a function whose module raises on import
    broken = ProcessRuntime(OVERRIDES, sink=lines)
    spec = function(code_dir, "Broken")
    spec.handler = "broken.handler"
    broken.register(spec)
    try:
        # When it is invoked
        with pytest.raises(FunctionError) as failed:
            broken.invoke("Broken", {"action": "echo"})
        # Then the invocation fails as an import error, saying why
        assert failed.value.error_type == "Runtime.ImportModuleError"
        assert failed.value.error_message == "no import for you"
    finally:
        broken.stop()


def test_stopping_the_runtime_ends_every_worker_and_fails_what_was_running(
    runtime: ProcessRuntime, lines: Lines
) -> None:
    # Given workers of two functions, one of them busy with a long invocation
    outcome: list[Any] = []

    def hang() -> None:
        try:
            runtime.invoke("Beta", {"action": "hang"})
        except FunctionError as error:
            outcome.append(error)

    caller = threading.Thread(target=hang)
    caller.start()
    lines.wait_for(lambda line: line[0] == "Beta" and line[2] == "hanging\n")
    pids = runtime.worker_pids("Alpha") + runtime.worker_pids("Beta")
    # When the runtime stops
    runtime.stop()
    caller.join(timeout=10)
    # Then the running invocation failed, and no worker process is left
    assert [type(e) for e in outcome] == [FunctionError]
    assert pids
    assert not [pid for pid in pids if pid_alive(pid)]


def test_the_inline_runtime_swaps_the_functions_environment_in_and_back(code_dir: Path) -> None:
    # Given the inline runtime (bench's: handlers in this process, one at a time)
    inline = InlineRuntime(OVERRIDES)
    inline.register(function(code_dir, "Inline", TABLE_NAME="inline-table"))
    # When a function reads its environment
    seen = inline.invoke("Inline", {"action": "env"})
    echo = inline.invoke("Inline", {"action": "echo"})
    # Then it ran here, with its variables, which are gone again afterwards
    assert echo["pid"] == os.getpid()
    assert seen["TABLE_NAME"] == "inline-table"
    assert seen["AWS_LAMBDA_FUNCTION_NAME"] == "test-Inline"
    assert "TABLE_NAME" not in os.environ
    assert inline.concurrency == 1
