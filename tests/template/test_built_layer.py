"""The layer ``sam build`` makes: bytecode for the runtime's Python in every module, nothing the
runtime does not import, and every function imports from it read-only without compiling it.

The fixtures run ``make build`` (``sam build`` with python3.13 on PATH, layers/common/Makefile)
into a temporary folder and import with ``.venv-runtime`` (Python 3.13 + boto3, as Lambda's
runtime). The layer is built for arm64; to import it on this machine a copy gets this machine's
build of its native modules, pydantic_core's and Pillow's (bench/artefact.py, ``host_layer``):
every ``.py`` and ``.pyc`` stays the built one. Read-only means ``chmod -R a-w`` and, when the
tests run as root (whom file modes do not stop), a read-only bind mount in a private mount
namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench import artefact
from devstack.template import ROOT, load_template

FUNCTIONS = sorted(
    logical_id
    for logical_id, resource in load_template()["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
)
PACKAGE = ROOT / "layers" / "common" / "image_gateway"
# httpx imports its command line client when click, rich and pygments are installed (the dev
# venv has them through moto and pytest): none of them belongs in the layer.
NOT_IN_LAYER = ("click", "rich", "pygments", "bin", "pyproject.toml", "requirements.txt")
# Functions that import nothing from the layer (the console serves its own static files).
LAYER_FREE = {"ConsoleFunction"}

# Run by the runtime's Python on a layer folder: every source's bytecode, as Python 3.13 sees it.
_PYC_CHECK = r"""
import importlib.util, json, pathlib, sys
root = pathlib.Path(sys.argv[1])
problems, sources = [], 0
for source in sorted(root.rglob("*.py")):
    sources += 1
    name = str(source.relative_to(root))
    pyc = pathlib.Path(importlib.util.cache_from_source(str(source)))
    if not pyc.exists():
        problems.append(name + ": no " + pyc.name)
        continue
    data = pyc.read_bytes()
    if data[:4] != importlib.util.MAGIC_NUMBER:
        problems.append(name + ": bytecode of another Python version")
    elif int.from_bytes(data[4:8], "little") != 0b01:
        problems.append(name + ": not an unchecked hash-based pyc")
    elif data[8:16] != importlib.util.source_hash(source.read_bytes()):
        problems.append(name + ": bytecode of another source")
suffix = "." + sys.implementation.cache_tag + ".pyc"
others = [
    str(p.relative_to(root)) for p in root.rglob("*.pyc")
    if p.parent.name != "__pycache__" or not p.name.endswith(suffix)
    or not (p.parent.parent / (p.name.split(".", 1)[0] + ".py")).exists()
]
print(json.dumps({"tag": sys.implementation.cache_tag, "sources": sources,
                  "problems": problems, "others": others}))
"""

# Run by the runtime's Python with Lambda's paths: what was compiled from source, every write
# attempted under the code folders, and whether they really were read-only.
_IMPORT_PROBE = r"""
import importlib, importlib.machinery, json, os, pkgutil, sys
task, layer, what = sys.argv[1:4]
roots = (task, layer)
compiled, writes = [], []
to_code = importlib.machinery.SourceFileLoader.source_to_code

def source_to_code(self, data, path, *args, **kwargs):
    compiled.append(os.fspath(path))
    return to_code(self, data, path, *args, **kwargs)

importlib.machinery.SourceFileLoader.source_to_code = source_to_code
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

def audit(event, args):
    if event == "open":
        path, mode, flags = args
        if not (flags & WRITE or (mode and set(mode) & set("wax+"))):
            return
    elif event in ("os.mkdir", "os.rename", "os.replace", "os.remove", "os.chmod"):
        path = args[0]
    else:
        return
    if isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path).startswith(roots):
        writes.append(event + " " + os.fsdecode(path))

sys.addaudithook(audit)
try:
    os.mkdir(os.path.join(layer, "__probe__"))
    read_only = False
except OSError:
    read_only = True
writes.clear()
sys.path[:0] = [task, layer]
if what == "handler":
    handler = getattr(importlib.import_module("app"), "lambda_handler", None)
    assert callable(handler), "app.lambda_handler is not callable"
else:
    import image_gateway
    for info in pkgutil.walk_packages(image_gateway.__path__, "image_gateway."):
        importlib.import_module(info.name)
from_layer = sorted(
    name for name, module in list(sys.modules.items())
    if (getattr(module, "__file__", None) or "").startswith(layer + os.sep)
)
print(json.dumps({
    "dont_write_bytecode": sys.flags.dont_write_bytecode,
    "read_only": read_only,
    "compiled": compiled,
    "writes": writes,
    "from_layer": from_layer,
    "dev_only": [m for m in ("click", "rich", "pygments") if m in sys.modules],
}))
"""


@dataclass(frozen=True)
class ReadOnlyArtefact:
    """A read-only copy of the built functions (``task/<LogicalId>``) and layer (``opt``)."""

    root: Path
    layer: Path
    files: dict[str, tuple[int, int]]

    def task(self, logical_id: str) -> Path:
        return self.root / "task" / logical_id


@pytest.fixture(scope="module")
def runtime() -> artefact.Interpreter:
    """The runtime's Python (fails, never skips, when .venv-runtime is missing)."""
    found = artefact.interpreter()
    assert found.version.startswith("3.13."), f"{found.executable} is Python {found.version}"
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make build`` into a temporary folder: sam build's output."""
    return artefact.build(tmp_path_factory.mktemp("sam") / "build")


@pytest.fixture(scope="module")
def layer(built: Path) -> Path:
    return built / artefact.LAYER / "python"


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def read_only(
    built: Path, runtime: artefact.Interpreter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReadOnlyArtefact]:
    root = tmp_path_factory.mktemp("readonly")
    for logical_id in FUNCTIONS:
        shutil.copytree(built / logical_id, root / "task" / logical_id)
    host = artefact.host_layer(built, root / "opt" / "python", runtime)
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
    yield ReadOnlyArtefact(root=root, layer=host.python_dir, files=_snapshot(root))
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.stat().st_mode) | 0o200)


def _run(
    runtime: artefact.Interpreter, script: str, *args: str, read_only: Path | None = None
) -> dict[str, Any]:
    argv = [runtime.executable, "-I", "-c", script, *args]
    if read_only is not None and os.geteuid() == 0:
        # Root writes through file modes: mount the copy read-only, as /opt is on Lambda.
        unshare = shutil.which("unshare")
        assert unshare, "running as root: these tests need util-linux's unshare (read-only mount)"
        mount = 'mount --bind -o ro "$0" "$0" && exec "$@"'
        argv = [unshare, "--mount", "--propagation", "private", "sh", "-c", mount, str(read_only)]
        argv += [runtime.executable, "-I", "-c", script, *args]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env |= {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
    done = subprocess.run(  # noqa: S603 (our interpreter, our scripts)
        argv, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_every_module_in_the_layer_has_unchecked_bytecode_of_python_3_13(
    layer: Path, runtime: artefact.Interpreter
) -> None:
    # Given the layer sam build made / When Python 3.13 reads every module's cache entry
    report = _run(runtime, _PYC_CHECK, str(layer))
    # Then each has a current, unchecked hash-based pyc of 3.13 and nothing else is there
    assert report["tag"] == "cpython-313"
    assert report["sources"] > 500  # the shared package and its dependencies
    assert report["problems"] == []
    assert report["others"] == []


def test_every_module_of_the_shared_package_is_in_the_layer(layer: Path) -> None:
    shipped = {str(p.relative_to(layer)) for p in (layer / "image_gateway").rglob("*.py")}
    source = {str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")}
    assert shipped == source


def test_the_layer_holds_only_what_the_runtime_imports(layer: Path) -> None:
    top = {p.name for p in layer.iterdir()}
    assert top.isdisjoint(NOT_IN_LAYER)
    assert not [p for p in layer.rglob("*") if p.is_dir() and p.name in ("tests", "test")]
    assert not list(layer.glob("*.egg-info"))
    # Built for Lambda's arm64 python3.13: every native module is aarch64's (pydantic_core's,
    # and Pillow's, which a finaliser making a thumbnail imports)
    native = sorted(str(p.relative_to(layer)) for p in layer.rglob("*.so"))
    assert "pydantic_core/_pydantic_core.cpython-313-aarch64-linux-gnu.so" in native
    assert "PIL/_imaging.cpython-313-aarch64-linux-gnu.so" in native
    assert [n for n in native if not n.endswith(".cpython-313-aarch64-linux-gnu.so")] == []


def test_the_layer_ships_certifis_roots_one_per_file_under_their_hash_names(layer: Path) -> None:
    # Given the layer / When its hashed roots are counted (image_gateway/tls_roots.py)
    roots = sorted((layer / "image_gateway" / "hashed_roots").iterdir())
    bundle = (layer / "certifi" / "cacert.pem").read_text()
    # Then every root of the bundle it ships has its file, named <subject hash>.<n>
    assert len(roots) == bundle.count("-----BEGIN CERTIFICATE-----") > 100
    assert all(len(p.name.split(".")[0]) == 8 and p.suffix[1:].isdigit() for p in roots)


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_each_function_imports_from_the_read_only_artefact_without_compiling_the_layer(
    logical_id: str, read_only: ReadOnlyArtefact, runtime: artefact.Interpreter
) -> None:
    # Given the built function and layer, read-only, and bytecode writes allowed
    task = read_only.task(logical_id)
    # When a fresh Python 3.13 imports the handler as Lambda does (import app)
    probe = _run(
        runtime, _IMPORT_PROBE, str(task), str(read_only.layer), "handler", read_only=read_only.root
    )
    # Then the folders were read-only and Python would have written bytecode it had compiled
    assert probe["read_only"] and probe["dont_write_bytecode"] == 0
    # And every layer module came from its pyc: only the handler file itself was compiled (SAM's
    # python builder ships app.py without bytecode; compiling it takes about 1 ms)
    # (the webhook imports only its cold path: a dozen of the package's modules)
    if logical_id in LAYER_FREE:
        assert probe["from_layer"] == []
    else:
        assert len(probe["from_layer"]) > (10 if logical_id == "WebhookFunction" else 50)
    assert probe["compiled"] == [str(task / "app.py")]
    assert [w for w in probe["writes"] if str(read_only.layer) in w] == []
    assert all(str(task / "__pycache__") in w for w in probe["writes"])
    assert probe["dev_only"] == []
    assert _snapshot(read_only.root) == read_only.files  # no file appeared or changed


def test_every_module_of_the_shared_package_imports_from_its_bytecode_read_only(
    read_only: ReadOnlyArtefact, runtime: artefact.Interpreter
) -> None:
    # Given the read-only layer / When every image_gateway module is imported (the adapters
    # load on first use, so no handler import reaches them all)
    task = read_only.task(FUNCTIONS[0])
    probe = _run(
        runtime, _IMPORT_PROBE, str(task), str(read_only.layer), "all", read_only=read_only.root
    )
    # Then nothing was compiled and nothing written
    imported = {m for m in probe["from_layer"] if m.startswith("image_gateway")}
    assert len(imported) == len(list(PACKAGE.rglob("*.py")))
    assert probe["read_only"] and probe["compiled"] == [] and probe["writes"] == []
    assert _snapshot(read_only.root) == read_only.files
