"""The deployable artefact on this machine: ``sam build``'s output, imported as Lambda would.

What Lambda runs is ``.aws-sam/build``: each function's folder (``/var/task``) and the layer's
``python/`` folder (``/opt/python``), both read-only, on the runtime's Python (3.13) with the
runtime's boto3. Here that is ``.venv-runtime`` (Python 3.13 + boto3 at the dev pin, made by
the Makefile) with ``PYTHONPATH=<function>:<layer>``.

One honest difference: the layer is built for arm64 (``pydantic_core``'s and Pillow's native
modules are aarch64 ELF files), and this machine may be another. :func:`host_layer` copies the
built layer and adds, next to each arm64 file, the host's build of the *same* version, taken
from its wheel on the package index, with the shared libraries the wheel bundles
(``pillow.libs/``). Nothing else changes: every ``.py`` and ``.pyc`` is the built one (their
Python files are the same in every wheel of a version). The build output itself is never
touched.

Figure 1 (cold start) measures the built handlers this way, with ``PYTHONDONTWRITEBYTECODE=1``
like a read-only ``/opt``: a layer without bytecode is compiled at every import.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import coldstart
from bench.stack import BenchStack
from devstack.template import ROOT, load_template

BUILD_DIR = ROOT / ".aws-sam" / "build"
RUNTIME_VENV = ROOT / ".venv-runtime"
LAYER = "CommonLayer"
# Wheels of native packages for this machine (only used to import the arm64 layer here).
WHEEL_CACHE = ROOT / ".aws-sam" / "host-wheels"
# The layer's packages with native code, by import name: their distribution, whose wheel for
# this machine the host copy takes them from. A new one must be added here, or host_layer
# refuses (the import would fail in a less obvious way). Pillow: the finaliser's thumbnail,
# part of the finalize and poll functions' first events (before, left as the arm64 build, its
# import failed here and the first events skipped the thumbnail, which Lambda makes).
NATIVE_PACKAGES = {"pydantic_core": "pydantic_core", "PIL": "pillow"}


def runtime_python() -> Path:
    """Python 3.13 with the runtime's boto3 (``make .venv-runtime/.installed`` makes it)."""
    python = RUNTIME_VENV / "bin" / "python"
    if not python.exists():
        raise RuntimeError(
            f"{python} is missing: run `make .venv-runtime/.installed` (needs python3.13; "
            "`make test` and `make bench` do it)"
        )
    return python


def build(build_dir: Path = BUILD_DIR) -> Path:
    """Run ``make build`` (``sam build`` with python3.13 on PATH) into ``build_dir``."""
    done = subprocess.run(  # noqa: S603 (our own Makefile)
        ["make", "--no-print-directory", "build", f"SAM_BUILD_DIR={build_dir}"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"make build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return build_dir


@dataclass(frozen=True)
class Interpreter:
    """The interpreter that imports the artefact, as it reports itself."""

    executable: str
    version: str
    machine: str
    boto3: str
    extension_suffixes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """For results.json."""
        return {
            "executable": self.executable,
            "version": self.version,
            "machine": self.machine,
            "boto3": self.boto3,
        }


def interpreter(python: Path | None = None) -> Interpreter:
    """Ask the runtime interpreter what it is."""
    code = (
        "import json, sys, platform, importlib.machinery as m, boto3; print(json.dumps({"
        "'executable': sys.executable, 'version': platform.python_version(), "
        "'machine': platform.machine(), 'boto3': boto3.__version__, "
        "'extension_suffixes': m.EXTENSION_SUFFIXES}))"
    )
    done = subprocess.run(  # noqa: S603
        [str(python or runtime_python()), "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return Interpreter(**json.loads(done.stdout))


@dataclass(frozen=True)
class HostLayer:
    """A copy of the built layer that imports on this machine."""

    python_dir: Path
    added: list[str]
    wheels: list[str]

    def describe(self) -> str:
        """One sentence for results.json and the report."""
        if not self.added:
            return "the built layer as is (its native modules match this machine)"
        return (
            "the built layer plus this machine's build of its native module(s) "
            f"({', '.join(self.added)}, from {', '.join(self.wheels)}; same versions)"
        )


def _dist_version(python_dir: Path, package: str) -> str:
    found = sorted(python_dir.glob(f"{package}-*.dist-info"))
    if len(found) != 1:
        raise RuntimeError(f"expected one {package} dist-info in {python_dir}, found {found}")
    return found[0].name.removesuffix(".dist-info").split("-", 1)[1]


def _host_wheel(package: str, version: str, runtime: Interpreter) -> Path:
    """The wheel of ``package==version`` for this machine and the runtime's Python."""
    tag = f"cp{runtime.version.split('.')[0]}{runtime.version.split('.')[1]}"
    machine = runtime.machine
    cached = sorted(WHEEL_CACHE.glob(f"{package}-{version}-{tag}-*{machine}*.whl"))
    if cached:
        return cached[-1]
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(  # noqa: S603
        [
            runtime.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            ".".join(runtime.version.split(".")[:2]),
            "--platform",
            f"manylinux2014_{machine}",
            "--dest",
            str(WHEEL_CACHE),
            f"{package}=={version}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    cached = sorted(WHEEL_CACHE.glob(f"{package}-{version}-{tag}-*{machine}*.whl"))
    if not cached:
        raise RuntimeError(f"no {machine} wheel of {package}=={version} was downloaded")
    return cached[-1]


def host_layer(build_dir: Path, dest: Path, runtime: Interpreter | None = None) -> HostLayer:
    """Copy ``build_dir``'s layer to ``dest`` and make its native modules load here."""
    runtime = runtime or interpreter()
    built = build_dir / LAYER / "python"
    if not built.is_dir():
        raise RuntimeError(f"{built} is missing: run `make build`")
    shutil.copytree(built, dest, symlinks=True)
    suffixes = tuple(runtime.extension_suffixes)
    added: list[str] = []
    wheels: list[str] = []
    for native in sorted(dest.rglob("*.so")):
        package = native.relative_to(dest).parts[0]
        if package not in NATIVE_PACKAGES:
            raise RuntimeError(f"{native} is native code of an unexpected package: see bench")
        if native.name.endswith(suffixes[:1]):
            continue  # already built for this machine
        distribution = NATIVE_PACKAGES[package]
        version = _dist_version(dest, distribution)
        wheel = _host_wheel(distribution, version, runtime)
        module = native.name.split(".", 1)[0]
        with zipfile.ZipFile(wheel) as archive:
            members = [
                name
                for name in archive.namelist()
                if Path(name).parent == native.parent.relative_to(dest)
                and Path(name).name.startswith(module + ".")
                and Path(name).name.endswith(suffixes[:1])
            ]
            if len(members) != 1:
                raise RuntimeError(f"{wheel.name} has no single {module} for {suffixes[0]}")
            target = dest / members[0]
            target.write_bytes(archive.read(members[0]))
            target.chmod(native.stat().st_mode)
            # the libraries it links to, under names of this machine's build (next to the
            # arm64 ones, whose names differ: auditwheel names them by their hash)
            for name in archive.namelist():
                if name.startswith(f"{distribution}.libs/") and not (dest / name).exists():
                    (dest / name).parent.mkdir(parents=True, exist_ok=True)
                    (dest / name).write_bytes(archive.read(name))
                    (dest / name).chmod(0o755)
        added.append(str(target.relative_to(dest)))
        if wheel.name not in wheels:
            wheels.append(wheel.name)
    return HostLayer(python_dir=dest, added=added, wheels=wheels)


def without_bytecode(layer: Path, dest: Path) -> Path:
    """A copy of ``layer`` with every ``__pycache__`` removed (what SAM's python builder ships)."""
    shutil.copytree(layer, dest, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def handler_path(build_dir: Path, logical_id: str) -> Path:
    """The built handler module of a function (``Handler: app.lambda_handler`` -> app.py)."""
    template = load_template()
    default = template["Globals"]["Function"]["Handler"]
    handler = template["Resources"][logical_id]["Properties"].get("Handler", default)
    return build_dir / logical_id / f"{handler.split('.', 1)[0]}.py"


# -- cold start of the artefact (figure 1) ----------------------------------------------------
Child = Callable[[BenchStack, str | None, Any], dict[str, Any]]
Breakdown = Callable[[BenchStack, str], list[dict[str, Any]]]


def _environment(
    bench: BenchStack, function: str | None, build_dir: Path, layer: Path
) -> dict[str, str]:
    """The function's environment (as devstack resolves template.yaml), Lambda's paths."""
    env = {
        k: v
        for k, v in os.environ.items()
        if (k.startswith(("AWS_", "HOME", "LANG", "LC_")) or k == "PATH")
        and k not in coldstart.CREDENTIAL_VARIABLES
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # /var/task and /opt are read-only on Lambda
    if function is not None:
        spec = bench.devstack.runtime.get(function)
        # as the stack runs it, with its role's credentials: never this process's own AWS_*
        # variables, which hold another function's while the stack runs one in this process
        env.update(bench.devstack.runtime.function_environment(spec))
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "POWERTOOLS_LOG_LEVEL": "ERROR",
                "POWERTOOLS_METRICS_DISABLED": "true",
                # /var/task first, then /opt/python, as Lambda orders them.
                "PYTHONPATH": os.pathsep.join([str(build_dir / function), str(layer)]),
            }
        )
    return env


def child_runner(build_dir: Path, layer: Path, python: Path) -> tuple[Child, Breakdown]:
    """Cold start children (and the import breakdown) on the artefact instead of the dev tree."""

    def child(bench: BenchStack, function: str | None, event: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {"path": None}
        if function is not None:
            fn = bench.devstack.runtime.get(function)
            spec = {
                "path": str(handler_path(build_dir, function)),
                "name": fn.name,
                "memory_mb": fn.memory_mb,
                "event": event,
            }
        done = subprocess.run(  # noqa: S603 (our own interpreter and script)
            [str(python), "-c", coldstart._CHILD],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            env=_environment(bench, function, build_dir, layer),
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"artefact cold start of {function} failed: {done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    def breakdown(bench: BenchStack, function: str) -> list[dict[str, Any]]:
        path = handler_path(build_dir, function)
        code = (
            f"import importlib.util as u; s = u.spec_from_file_location('h', {str(path)!r}); "
            "m = u.module_from_spec(s); s.loader.exec_module(m)"
        )
        done = subprocess.run(  # noqa: S603
            [str(python), "-X", "importtime", "-c", code],
            capture_output=True,
            text=True,
            env=_environment(bench, function, build_dir, layer),
            timeout=120,
            check=False,
        )
        return coldstart.importtime_ranking(done.stderr)

    return child, breakdown


def run(
    bench: BenchStack,
    rounds: int,
    progress: Any,
    *,
    bare_rounds: int | None = None,
    tries: int = 1,
) -> dict[str, Any]:
    """Figure 1 on the artefact: ``make build``, then fresh 3.13 children, boto3 floor first.

    ``bare_rounds`` rounds more measure the same layer without its bytecode (what SAM's python
    builder shipped), so the report can say what the bytecode is worth. ``tries``: each sample
    is the fastest of that many children (see :func:`bench.coldstart.run`).
    """
    progress("  make build (sam build, python3.13)")
    build_dir = build(BUILD_DIR)
    runtime = interpreter()
    with tempfile.TemporaryDirectory(prefix="artefact-") as scratch:
        host = host_layer(build_dir, Path(scratch) / "layer", runtime)
        python = Path(runtime.executable)
        child, breakdown = child_runner(build_dir, host.python_dir, python)
        result = coldstart.run(
            bench, rounds, progress, child=child, breakdown=breakdown, tries=tries
        )
        bare: dict[str, Any] | None = None
        if bare_rounds:
            progress("  the same layer without bytecode (what sam build shipped before)")
            layer = without_bytecode(host.python_dir, Path(scratch) / "layer-without-pyc")
            child, _ = child_runner(build_dir, layer, python)
            bare = coldstart.run(bench, bare_rounds, progress, child=child, breakdown=None)
    pycs = sum(1 for _ in (build_dir / LAYER / "python").rglob("*.cpython-*.pyc"))
    result["artefact"] = {
        "build_dir": str(build_dir.relative_to(ROOT)),
        "handlers": f"{build_dir.relative_to(ROOT)}/<LogicalId>/app.py",
        "layer": f"{build_dir.relative_to(ROOT)}/{LAYER}/python (on PYTHONPATH, as /opt/python)",
        "layer_bytecode": f"{pycs} unchecked-hash cpython-313 .pyc files",
        "imported_as": host.describe(),
        "environment": "PYTHONDONTWRITEBYTECODE=1; the function's template.yaml environment",
    }
    result["python"] = runtime.describe()
    if python.is_relative_to(ROOT):
        result["python"]["executable"] = str(python.relative_to(ROOT))
    if bare is not None:
        result["without_bytecode"] = {
            "floor_boto3_import_ms": bare["floor_boto3_import_ms"],
            "functions": {
                name: {k: fig[k] for k in ("total_ms", "import_ms", "ratio")}
                for name, fig in bare["functions"].items()
            },
        }
    return result
