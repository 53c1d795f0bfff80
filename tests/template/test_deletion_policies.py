"""Every stateful resource of template.yaml has a deliberate deletion policy (cfn-lint's
informational rule I3011 lists those without), and the KMS key follows the data it encrypts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from devstack.template import ROOT, load_template

CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")


def test_cfn_lint_finds_no_stateful_resource_without_deletion_and_replace_policies() -> None:
    done = subprocess.run(  # noqa: S603 (our own linter)
        [CFN_LINT, "--include-checks", "I3011", "--", "template.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert "I3011" not in done.stdout, done.stdout


def test_the_webhook_key_is_kept_exactly_when_the_tasks_table_it_encrypts_for_is() -> None:
    resources = load_template()["Resources"]

    policies = [
        (resources[name].get("DeletionPolicy"), resources[name].get("UpdateReplacePolicy"))
        for name in ("TasksTable", "WebhookKey")
    ]

    assert policies == [("Retain", "Retain"), ("Retain", "Retain")]
