"""Running the ``imagegw`` command in tests: with pipes, or in a pseudo-terminal as a person would.

Captured output is kept under ``test-artifacts/cli/`` (git-ignored) for people to read.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devstack.stack import StackInfo
from devstack.template import ROOT

IMAGEGW = str(Path(sys.executable).parent / "imagegw")
ARTIFACTS = ROOT / "test-artifacts" / "cli"


@dataclass
class Run:
    """What one run of the command did."""

    code: int
    stdout: str
    stderr: str


def cli_env(info: StackInfo | None, **extra: str) -> dict[str, str]:
    """The environment of a run: the stack's URL and key (unless ``info`` is None)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGW_")}
    env.pop("COLUMNS", None)
    if info is not None:
        env.update(IMAGEGW_URL=info.api_url, IMAGEGW_KEY=info.api_key)
    env.update(extra)
    return env


def run(info: StackInfo | None, *args: str, cwd: Path, timeout: float = 60, **env: str) -> Run:
    """``imagegw ARGS`` with pipes (so not a terminal)."""
    done = subprocess.run(  # noqa: S603 (our own command)
        [IMAGEGW, *args],
        cwd=cwd,
        env=cli_env(info, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return Run(done.returncode, done.stdout, done.stderr)


class Terminal:
    """``imagegw ARGS`` with stdin, stdout and stderr on one pseudo-terminal."""

    def __init__(self, info: StackInfo, *args: str, cwd: Path) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(  # noqa: S603 (our own command)
            [IMAGEGW, *args],
            cwd=cwd,
            env=cli_env(info, TERM="xterm"),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            # Ctrl-C as on a person's terminal, even when the tests run as a background job
            # (its children inherit SIGINT ignored: Python then never raises KeyboardInterrupt)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        os.close(slave)
        self.screen = ""

    def read_until(self, done: Callable[[str], bool], timeout: float = 60) -> str:
        """Read what the command writes until ``done(everything so far)`` or it exits."""
        deadline = time.monotonic() + timeout
        while not done(self.screen):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; the terminal shows:\n{self.screen[-3000:]}")
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # the command exited and closed its side
                    data = b""
                if not data:
                    break
                self.screen += data.decode("utf-8", "replace")
            elif self.process.poll() is not None:
                break
        return self.screen

    def type(self, text: str) -> None:
        """Type on the terminal's keyboard."""
        os.write(self.master, text.encode())

    def interrupt(self) -> None:
        """Ctrl-C."""
        self.process.send_signal(signal.SIGINT)

    def finish(self, timeout: float = 60) -> int:
        """Read to the end; the exit code."""
        self.read_until(lambda _: False, timeout=timeout)
        code = self.process.wait(timeout=10)
        os.close(self.master)
        return code


def keep(name: str, text: str) -> Path:
    """Save captured output as a test artefact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    path.write_text(text)
    return path
