"""The layering the house style promises, checked on the source of the shared package.

Domain and services never import boto3 or botocore (only ``adapters/`` talk to AWS); there is
no import cycle between the package's modules; each handler imports the flow named after its
job; no module of the layer grows far past 300 lines; the webhook imports only its cold path.
"""

from __future__ import annotations

import ast
import graphlib
import json
import os
import subprocess
import sys
from pathlib import Path

from devstack.template import ROOT

PACKAGE = ROOT / "layers" / "common" / "image_gateway"
MAX_LINES = 360  # "about 300": the longest modules are docstring-heavy parsers and ports


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path) -> set[str]:
    """Modules imported when ``path`` is imported (not under TYPE_CHECKING, not in functions)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_only_adapters_import_boto3_or_botocore() -> None:
    offenders = {
        name: sorted(i for i in _runtime_imports(path) if i.split(".")[0] in {"boto3", "botocore"})
        for name, path in MODULES.items()
        if not name.startswith("image_gateway.adapters")
    }

    assert {k: v for k, v in offenders.items() if v} == {}


def _imported_modules(path: Path, package: Path) -> set[str]:
    """Every module of ``package`` that ``path`` names in an import anywhere in its source: at
    the top, under TYPE_CHECKING, inside functions (lazy imports), relative or absolute, and
    the ``"module:Class"`` strings a module hands to ``importlib.import_module``."""
    name = _module_name(path, package)
    known = {_module_name(p, package) for p in package.rglob("*.py")}
    tree = ast.parse(path.read_text())
    named: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: climb from this module's package
                here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join([*here[: len(here) - node.level + 1], *filter(None, [base])])
            named.add(base)
            named |= {f"{base}.{alias.name}" for alias in node.names}  # from pkg import module
    if "import_module" in {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}:
        named |= {
            n.value.partition(":")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }
    return {m for m in named if m in known and m != name}


def _import_cycle(package: Path) -> list[str]:
    """One import cycle among ``package``'s modules (empty when there is none)."""
    graph = {_module_name(p, package): _imported_modules(p, package) for p in package.rglob("*.py")}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as found:
        return list(found.args[1])
    return []


def test_the_package_has_no_import_cycle() -> None:
    # Lazy and type-only imports count too: a circle hidden by them is still a circle of
    # meaning (two modules that each need the other), and moving the import re-opens it.
    assert _import_cycle(PACKAGE) == []


def test_the_cycle_check_finds_circles_through_type_only_and_lazy_imports(tmp_path: Path) -> None:
    # Given a package whose modules import each other only under TYPE_CHECKING and in a function
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub import b\n"
    )
    (package / "sub" / "b.py").write_text("def f():\n    from ..a import x\n")

    # When the check runs / Then it names the circle
    assert sorted(set(_import_cycle(package))) == ["pkg.a", "pkg.sub.b"]


def test_each_handler_imports_the_flow_named_after_its_job() -> None:
    expected = {
        "api": "image_gateway.service.submit",
        "openai_compat": "image_gateway.service.compat",
        "dispatch": "image_gateway.service.dispatch",
        "finalize": "image_gateway.service.refresh",
        "poll": "image_gateway.service.poll",
        "sweeper": "image_gateway.service.sweep_check",  # the sweep itself when there is work
        "upload_edit": "image_gateway.service.upload_edit",
        "webhook": "image_gateway.service.callback",
        "thumbnail": "image_gateway.service.thumbnails",
    }
    for function, flow in expected.items():
        imports = _runtime_imports(ROOT / "functions" / function / "app.py")
        assert flow in imports, f"functions/{function}/app.py should import {flow}"


def test_no_module_of_the_layer_is_far_over_three_hundred_lines() -> None:
    long = {
        name: n for name, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES
    }

    assert long == {}


def _imported_by(function: str) -> set[str]:
    """Top-level packages and image_gateway modules a fresh interpreter has after ``import
    app`` of ``functions/<function>``."""
    return _imported_after("app", {"PYTHONPATH": str(ROOT / "functions" / function)})


def _imported_after(modules: str, env: dict[str, str] | None = None) -> set[str]:
    """Top-level packages and image_gateway modules a fresh interpreter has after
    ``import <modules>`` (comma-separated)."""
    code = (
        f"import json, sys, {modules}; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} | "
        "{m for m in sys.modules if m.startswith('image_gateway')})))"
    )
    done = subprocess.run(  # noqa: S603 (this interpreter, our modules)
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return set(json.loads(done.stdout))


def test_the_sweeper_imports_only_what_an_idle_run_needs() -> None:
    # Most sweeps find nothing due: importing the handler must not pull in the settings, the
    # task model and pydantic, which only a run with work imports (service/sweep_check.py)
    imported = _imported_by("sweeper")

    assert imported & {"pydantic", "httpx", "boto3", "s3transfer"} == set()
    assert "image_gateway.service.sweep" not in imported
    assert "image_gateway.config" not in imported


def test_the_webhook_imports_only_its_cold_path() -> None:
    # The webhook answers providers at once: importing its handler must not pull in the rest of
    # the gateway (pydantic settings and models, httpx, provider adapters, boto3, Powertools).
    imported = _imported_by("webhook")

    forbidden = {"pydantic", "httpx", "boto3", "s3transfer", "aws_lambda_powertools"}
    assert imported & forbidden == set()
    assert {m for m in imported if m.startswith("image_gateway.")} == {
        "image_gateway.adapters",
        "image_gateway.adapters.access_denied",
        "image_gateway.adapters.boto",
        "image_gateway.adapters.emf_metrics",
        "image_gateway.adapters.sqs_finalize",
        "image_gateway.adapters.webhook",
        "image_gateway.auth",
        "image_gateway.errors",
        "image_gateway.json_log",
        "image_gateway.metrics",
        "image_gateway.ports",
        "image_gateway.service",
        "image_gateway.service.callback",
        "image_gateway.timing",
        "image_gateway.webhooks",
        "image_gateway.webhooks.settings",
    }


def test_the_thumbnail_function_imports_no_model_settings_or_http_client() -> None:
    # Its cold start reads the task as JSON (adapters/dynamodb_thumbnails.py): importing its
    # handler must not pull in pydantic, the task model, the settings or httpx; Pillow comes
    # with the first preview.
    imported = _imported_by("thumbnail")

    assert imported & {"pydantic", "httpx", "boto3", "s3transfer", "PIL"} == set()
    assert {m for m in imported if m.startswith("image_gateway.models")} == set()
    assert "image_gateway.config" not in imported


def test_a_webhook_delivery_renders_without_the_provider_health_models() -> None:
    # The delivery function's first event renders a task view (models.views) with the webhook
    # ports: neither pulls in GET /v1/providers' models (the circuits, the measured figures and
    # the health modules behind them) or the event bus adapter (a last failed attempt's only).
    imported = _imported_after("image_gateway.models.views, image_gateway.adapters.aws_webhooks")

    assert "image_gateway.models.views" in imported
    assert (
        imported
        & {
            "image_gateway.models.provider_views",
            "image_gateway.models.circuits",
            "image_gateway.models.measured",
            "image_gateway.health.breaker",
            "image_gateway.health.measure",
            "image_gateway.adapters.eventbridge",
            "image_gateway.models.events",
        }
        == set()
    )


def test_the_api_imports_the_providers_views_only_for_their_route() -> None:
    # GET /v1/providers' listing (service/provider_listing.py) and its views are imported when
    # that route is called: a submit, the API's usual cold start, needs none of them.
    imported = _imported_by("api")

    assert "image_gateway.service.submit" in imported
    assert (
        imported
        & {
            "image_gateway.service.provider_listing",
            "image_gateway.models.provider_views",
            "image_gateway.models.circuits",
            "image_gateway.models.measured",
        }
        == set()
    )


def test_the_inbox_imports_the_batch_modules_only_for_a_manifest() -> None:
    # Most inbox uploads are photos: a manifest's batch (its input reader, the batch models) is
    # imported when a manifest arrives (service/upload_edit.py, _batch), not at a cold start.
    imported = _imported_by("upload_edit")

    assert "image_gateway.service.inbox_batches" not in imported
    assert {m for m in imported if m.startswith("image_gateway.batches")} == set()
    assert "image_gateway.service.batch_input" not in imported
