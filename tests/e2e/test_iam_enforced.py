"""devstack enforces each function's role: a permission taken out of template.yaml fails the
flow that needs it, and the devstack log names what was denied.

The changed template runs in its own devstack process (``python -m devstack up --template``):
moto's state is per process, and the session's stack runs the template as shipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import yaml

from devstack.iam import template_without
from devstack.template import ROOT, load_template
from devstack.waiting import wait_until

pytestmark = pytest.mark.own_devstack


class DevstackProcess:
    """``python -m devstack up`` in a process of its own; every line it prints is kept."""

    def __init__(self, template: Path) -> None:
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [  # its own state file: the session's .devstack/stack.json stays the session's
                *(sys.executable, "-m", "devstack", "up", "--template", str(template)),
                *("--state-file", str(template.with_name("stack.json"))),
            ],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C to stop."):
                self._ready.set()

    def wait_ready(self, timeout: float) -> dict[str, str]:
        """What it printed before ``Ctrl-C to stop.``, by label (API, API key...)."""
        assert self._ready.wait(timeout), "\n".join(self.lines[-40:])
        shown: dict[str, str] = {}
        for line in self.lines:
            label, _, rest = line.partition("  ")
            shown.setdefault(label.strip(), rest.strip())
        return shown

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _denials(lines: list[str]) -> list[dict[str, object]]:
    found = []
    for line in lines:
        if '"AWS access denied"' in line:
            found.append(json.loads(line[line.index("{") :]))
    return found


def test_a_submit_fails_when_the_api_may_not_queue_the_dispatch(tmp_path: Path) -> None:
    # Given a copy of template.yaml whose ApiFunction lost sqs:SendMessage on DispatchQueue
    changed = template_without(load_template(), "ApiFunction", "sqs:SendMessage", "DispatchQueue")
    copy = tmp_path / "template.yaml"
    copy.write_text(yaml.safe_dump(changed, sort_keys=False))
    stack = DevstackProcess(copy)
    try:
        shown = stack.wait_ready(timeout=180)
        api_url, api_key = shown["API"], shown["API key"].split()[0]
        # When a client submits a task
        answer = httpx.post(
            f"{api_url}/v1/images",
            json={"prompt": "a lighthouse", "provider": "pmock"},
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=60,
        )
        # Then the submit does not succeed: its task failed, the dispatch queue unreachable
        task = answer.json()
        assert task["status"] == "failed", task
        assert task["error"]["code"] == "dispatch_unavailable"
        # And the devstack log says access denied: the API function, sqs:SendMessage, the queue
        wait_until(lambda: bool(_denials(stack.lines)), timeout=30)
        denied = _denials(stack.lines)[0]
        assert denied["action"] == "sqs:SendMessage"
        assert "DispatchQueue" in str(denied["resource"])
        assert denied["function"] == "imagegw-dev-ApiFunction"
    finally:
        stack.stop()
