"""The IAM mutation check's machinery, on one known mutation, so it cannot silently pass: with
``sqs:SendMessage`` on DispatchQueue taken out of ApiFunction's role, its scenario fails and
moto and the function's log name that action.

The check runs in a process of its own (``python -m devstack.iam_mutations --only ...``): it
starts its own devstack, and moto's state is per process (the session's stack runs here).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devstack.template import ROOT

pytestmark = pytest.mark.own_devstack


def test_the_api_without_sqs_send_message_fails_its_submit_scenario_naming_the_action() -> None:
    # Given the check, limited to ApiFunction's sqs:SendMessage (DispatchQueue and WebhookQueue)
    command = [sys.executable, "-m", "devstack.iam_mutations"]
    # When it runs
    done = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [*command, "--only", "ApiFunction:sqs:SendMessage"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    # Then the control passed, and the DispatchQueue mutation was denied: the submit scenario
    # failed, and the function logged sqs:SendMessage refused on the dispatch queue
    lines = done.stdout.splitlines()
    assert any(line.startswith("control   get_and_list") and " ok " in line for line in lines), (
        done.stdout
    )
    (line,) = [line for line in lines if "ApiFunction sqs:SendMessage on DispatchQueue" in line]
    assert line.startswith("denied "), done.stdout
    assert "logged: sqs:SendMessage on" in line and "DispatchQueue" in line
    assert done.returncode == 0, done.stdout + done.stderr
