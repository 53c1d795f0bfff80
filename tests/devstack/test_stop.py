"""``python -m devstack up`` started in the background stops whole on SIGTERM and SIGINT: no
worker process is left, and its state file is gone (imagegw must not find a stopped stack).

Each case starts a real stack (about 10-20 s on a loaded 2-core machine).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.template import ROOT


def started(state_file: Path, *, ignore_sigint: bool) -> subprocess.Popen[str]:
    """devstack in its own process group, as a shell's background job (``&``): with
    ``ignore_sigint``, SIGINT ignored as such a shell leaves it. Returns once it is up."""

    def background() -> None:
        if ignore_sigint:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    process = subprocess.Popen(  # noqa: S603 (our interpreter, our module)
        [sys.executable, "-m", "devstack", "up", "--log-level", "ERROR",
         "--state-file", str(state_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=background,
    )  # fmt: skip
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    for line in process.stdout:
        if line.startswith("Ctrl-C to stop.") or time.monotonic() > deadline:
            break
    assert state_file.exists(), "devstack did not come up"
    return process


def group_members(group: int) -> list[int]:
    """Processes still in process group ``group``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == group:
                members.append(int(entry.name))
        except ProcessLookupError:
            continue
    return members


@pytest.mark.parametrize(
    ("sent", "ignore_sigint"),
    [(signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["sigterm", "sigint-in-the-background"],
)
def test_a_signal_stops_every_process_and_removes_the_state_file(
    tmp_path: Path, sent: signal.Signals, ignore_sigint: bool
) -> None:
    # Given devstack running in the background, with its worker processes
    state_file = tmp_path / "stack.json"
    process = started(state_file, ignore_sigint=ignore_sigint)
    group = process.pid
    assert len(group_members(group)) > 1, "no worker process started"
    # When the signal is sent to devstack alone (not its group)
    os.kill(process.pid, sent)
    try:
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(group, signal.SIGKILL)
    left = group_members(group)
    for pid in left:  # a failing run must not leave its workers to the next test
        os.kill(pid, signal.SIGKILL)
    # Then it exited 0, left no process of its group behind, and removed its state file
    assert code == 0
    assert left == []
    assert not state_file.exists()
