"""For the unit tests of a function's handler: its module loaded from its file as Lambda loads
it, a Lambda context, and its lazy dependencies replaced by fixed ones."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from types import ModuleType
from typing import Generic, TypeVar

from devstack.template import ROOT

D = TypeVar("D")


def load_file(relative: str, name: str) -> ModuleType:
    """The module at ``relative`` (to the repository), imported from its file as ``name``: a
    handler as Lambda imports it (``functions/<name>/app.py``), not as a package module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class LambdaContextStub:
    """What Powertools' Logger and the JSON logger read from the Lambda context."""

    function_name: str = "ApiFunction"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
    aws_request_id: str = "lambda-request-1"


class FixedDependencies(Generic[D]):
    """Stands in for a handler's ``DEPS`` (``PerEnvironment``): always the same ones."""

    def __init__(self, deps: D) -> None:
        self.deps = deps

    def get(self) -> D:
        return self.deps
