"""docs/openai.md's table of the OpenAI-compatible surface's errors names every code it answers.

The codes are read from the source: every ``code=`` given to an error, every error class's
default ``code``, and the few made another way (``EXTRA``, each checked to be in its module).
Each one is in the OpenAI table, or named in ``ELSEWHERE`` with the surface that answers it.
"""

from __future__ import annotations

import ast
import re

from devstack.template import ROOT

PACKAGE = ROOT / "layers" / "common" / "image_gateway"

EXTRA = {
    "provider_task_failed": "providers/base.py",  # a failed provider task's default code
    "provider_bad_image": "service/refresh.py",  # finalize_success's table of store errors
    "provider_image_too_large": "service/refresh.py",
    "provider_unsafe_url": "service/refresh.py",
    "input_download_failed": "service/dispatch.py",  # _input_failed's code argument
    "queue_full": "limits/ports.py",  # LimitKind's values are the 429's codes
    "budget_exceeded": "limits/ports.py",
    "task_cancelled": "http/openai_answer.py",  # f"task_{status}" of a cancelled task
}
"""Codes the scan cannot see (not a ``code=`` constant), and the module each is made in."""

ELSEWHERE = {
    "batch_not_found": "GET /v1/batches/{id} (docs/batches.md)",
    "batch_not_cancellable": "POST /v1/batches/{id}/cancel (docs/batches.md)",
    "line_too_large": "a line of POST /v1/batches: an error row (docs/batches.md)",
    "input_file_too_large": "POST /v1/uploads of a batch file (docs/batches.md)",
    "bad_cursor": "GET /v1/tasks (listing)",
    "no_delivery": "POST /v1/tasks/{id}/webhooks/redeliver",
    "task_not_cancellable": "POST /v1/tasks/{id}/cancel",
    "image_too_large": "POST /v1/uploads and the S3 inbox",
    "inbox_rules_invalid": "the S3 inbox",
    "mask_missing": "the S3 inbox",
    "no_rule": "the S3 inbox",
    "source_not_found": "the S3 inbox",
    "source_unreadable": "the S3 inbox",
    "upload_rejected": "the S3 inbox (UploadRejected's default)",
    "providers_config_invalid": "the operator's providers parameter (an internal_error here)",
    "body_too_large": "the native API's JSON body over 6 MiB; behind a function URL Lambda's own "
    "6 MB request limit answers 413 first (docs/openai.md, request size)",
    "conflict": "Conflict's default: every raise names its own code",
    "not_found": "NotFound's default: every raise on this surface names its own code",
    "download_failed": "DownloadFailed's default: a hand-off or finaliser renames it "
    "(input_download_failed, provider_download_failed)",
}
"""Codes other surfaces answer, with where."""


def source_codes() -> set[str]:
    """``code="..."`` arguments (both branches of a conditional) and class ``code`` defaults."""
    found: set[str] = set()

    def add(value: ast.expr | None) -> None:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            found.add(value.value)
        elif isinstance(value, ast.IfExp):
            add(value.body)
            add(value.orelse)

    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "code":
                add(node.value)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
                if isinstance(target, ast.Name) and target.id == "code":
                    add(node.value)
    return found


def openai_table_codes() -> set[str]:
    """The backticked codes of the error table in docs/openai.md."""
    section = (ROOT / "docs/openai.md").read_text()
    table = section[section.index("| status | SDK exception |") :]
    rows = table[: table.index("\n\n")].splitlines()[2:]
    codes: set[str] = set()
    for row in rows:
        when = row.split("|")[3]
        codes |= set(re.findall(r"`([a-z][a-z0-9]*(?:_[a-z0-9]+)*)`", when))
    return codes


def test_every_extra_code_is_made_in_its_module() -> None:
    for code, module in EXTRA.items():
        assert f'"{code}"' in (PACKAGE / module).read_text() or code == "task_cancelled", code
    assert 'f"task_{task.status.value}"' in (PACKAGE / "http/openai_answer.py").read_text()


def test_every_code_the_surface_can_answer_is_in_the_readme_table() -> None:
    documented = openai_table_codes()
    answerable = (source_codes() | set(EXTRA)) - set(ELSEWHERE)

    missing = sorted(answerable - documented)

    assert not missing, f"docs/openai.md's error table lacks {missing} (or add them to ELSEWHERE)"


def test_stream_true_has_its_code_in_the_table() -> None:
    assert "invalid_request" in openai_table_codes()


def test_the_table_names_no_code_the_source_does_not_have() -> None:
    known = source_codes() | set(EXTRA)
    words = {"b64_json", "url", "image", "size", "prompt", "param", "refusals", "provider",
             "task_id", "style", "stream", "partial_images", "response_format", "request_id",
             "callback_url"}  # fmt: skip

    stale = sorted(openai_table_codes() - known - words)

    assert not stale, f"docs/openai.md's error table names codes nothing answers: {stale}"
