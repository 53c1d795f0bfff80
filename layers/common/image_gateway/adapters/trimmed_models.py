"""Make :data:`~image_gateway.adapters.boto.MODELS_DIR`: botocore's service models, cut to the
operations the adapters call, and its endpoints file, cut to the services they use
(``make botocore-models``; a test checks the committed files are what this makes from the
pinned botocore).

Each model keeps botocore's metadata, version and every top-level key; its operations are
:data:`~image_gateway.adapters.boto.OPERATIONS`, its shapes those the operations reach (input,
output, errors and everything they contain), and no documentation. ``endpoints.json`` keeps
every partition with its regions and defaults, and, of its services, only
:data:`~image_gateway.adapters.boto.SERVICES` (botocore parses the whole 1.2 MB file for a
session's first client: 22 ms of CPU on Python 3.13). Never imported by a function.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from botocore.loaders import Loader

from image_gateway.adapters.boto import MODELS_DIR, OPERATIONS, SERVICES


def trimmed(model: dict[str, Any], operations: Iterable[str]) -> dict[str, Any]:
    """``model`` with only ``operations`` and the shapes they reach, without documentation."""
    shapes: dict[str, Any] = {}

    def reach(name: str) -> None:
        if name in shapes:
            return
        shape = {k: v for k, v in model["shapes"][name].items() if k != "documentation"}
        shapes[name] = shape
        for key in ("member", "key", "value"):
            if key in shape:
                reach(shape[key]["shape"])
        members = {
            member: {k: v for k, v in spec.items() if k != "documentation"}
            for member, spec in shape.get("members", {}).items()
        }
        if members:
            shape["members"] = members
        for spec in members.values():
            reach(spec["shape"])

    kept: dict[str, Any] = {}
    for name in sorted(operations):
        operation = {k: v for k, v in model["operations"][name].items() if k != "documentation"}
        kept[name] = operation
        for key in ("input", "output"):
            if key in operation:
                reach(operation[key]["shape"])
        for error in operation.get("errors", []):
            reach(error["shape"])
    rest = {k: v for k, v in model.items() if k not in ("operations", "shapes", "documentation")}
    return {**rest, "operations": kept, "shapes": dict(sorted(shapes.items()))}


def render(model: dict[str, Any]) -> str:
    """The file's text (stable: sorted keys, one line)."""
    return json.dumps(model, sort_keys=True, separators=(",", ":")) + "\n"


def trimmed_endpoints(endpoints: dict[str, Any]) -> dict[str, Any]:
    """botocore's endpoints data with only the gateway's services in each partition."""
    partitions = [
        {
            **partition,
            "services": {
                name: spec for name, spec in partition["services"].items() if name in SERVICES
            },
        }
        for partition in endpoints["partitions"]
    ]
    return {**endpoints, "partitions": partitions}


def build(loader: Loader | None = None) -> dict[Path, str]:
    """Every trimmed file, by its path under the models directory."""
    loader = loader or Loader()
    files: dict[Path, str] = {
        Path("endpoints.json"): render(trimmed_endpoints(loader.load_data("endpoints")))
    }
    for service, operations in sorted(OPERATIONS.items()):
        model = loader.load_service_model(service, "service-2")
        version = model["metadata"]["apiVersion"]
        files[Path(service) / version / "service-2.json"] = render(trimmed(model, operations))
    return files


def write(dest: Path = MODELS_DIR) -> list[Path]:
    """Replace ``dest`` with the trimmed models; the files written."""
    shutil.rmtree(dest, ignore_errors=True)
    written = []
    for relative, text in build().items():
        path = dest / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        print(f"{path} ({path.stat().st_size:,} bytes)")
