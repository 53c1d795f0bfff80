"""Read template.yaml (CloudFormation tags included) and resolve its intrinsics for devstack.

Only the intrinsics the stack uses are supported (Ref, GetAtt, Sub); anything else fails loudly,
so the template cannot quietly outgrow the local stack.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader that turns !Ref, !GetAtt, !Sub ... into their long forms."""


def _tag(name: str) -> None:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    short = name.removeprefix("Fn::")
    _CfnLoader.add_constructor(f"!{short}", construct)


for _name in (
    "Ref",
    "Fn::GetAtt",
    "Fn::Sub",
    "Fn::Join",
    "Fn::If",
    "Fn::Equals",
    "Fn::Not",
    "Fn::Select",
):
    _tag(_name)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain data (intrinsics as ``{"Ref": ...}`` dicts)."""
    with path.open() as handle:
        data = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return data


NO_VALUE = object()
"""What ``Ref AWS::NoValue`` resolves to before it is left out."""


@dataclass
class Resolver:
    """Resolves intrinsics against parameter values and the physical ids devstack created."""

    parameters: dict[str, str]
    physical_ids: dict[str, str] = field(default_factory=dict)
    arns: dict[str, str] = field(default_factory=dict)
    pseudo: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    """Other ``GetAtt`` values by ``Logical.Attribute`` (a function URL's ``FunctionUrl``)."""
    conditions: dict[str, Any] = field(default_factory=dict)
    """The template's ``Conditions`` (``Fn::Equals``, ``Fn::Not`` of parameters), for ``Fn::If``."""

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic inside ``value``; ``Ref AWS::NoValue`` leaves the list item or
        the property out, as CloudFormation does."""
        if isinstance(value, list):
            return [r for v in value if (r := self.resolve(v)) is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and arg == "AWS::NoValue":
                return NO_VALUE
            if key == "Ref":
                return self._ref(str(arg))
            if key == "Fn::If":
                name, if_true, if_false = arg
                return self.resolve(if_true if self.condition(str(name)) else if_false)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self._get_att(logical, attr)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key.startswith("Fn::"):
                raise NotImplementedError(f"devstack does not resolve {key}")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def condition(self, name: str) -> bool:
        """The value of the template's condition ``name`` for these parameters."""
        if name not in self.conditions:
            raise KeyError(f"condition {name} is not in the template's Conditions")
        return self._truth(self.conditions[name])

    def _truth(self, value: Any) -> bool:
        ((key, arg),) = value.items()
        if key == "Fn::Equals":
            left, right = (str(self.resolve(a)) for a in arg)
            return left == right
        if key == "Fn::Not":
            return not self._truth(arg[0])
        if key == "Condition":
            return self.condition(str(arg))
        raise NotImplementedError(f"devstack does not evaluate {key} in a condition")

    def _ref(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.physical_ids:
            return self.physical_ids[name]
        raise KeyError(f"Ref {name}: not created yet (check the resource order in devstack)")

    def _get_att(self, logical: str, attr: str) -> str:
        if attr == "Arn" and logical in self.arns:
            return self.arns[logical]
        if f"{logical}.{attr}" in self.attributes:
            return self.attributes[f"{logical}.{attr}"]
        raise KeyError(f"GetAtt {logical}.{attr} is not known to devstack")

    def _sub(self, arg: Any) -> str:
        text, variables = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name:
                logical, attr = name.split(".", 1)
                return self._get_att(logical, attr)
            return self._ref(name)

        return re.sub(r"\$\{([^}!]+)\}", replace, str(text))


def parameter_defaults(template: dict[str, Any]) -> dict[str, str]:
    """Every parameter's default, as strings."""
    return {
        name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()
    }


def with_defaults(template: dict[str, Any], value: Any) -> Any:
    """``value`` (a part of ``template`` that refers to parameters and conditions only, such as a
    table's indexes) as a stack deployed with every parameter's default would have it."""
    resolver = Resolver(
        parameters=parameter_defaults(template), conditions=template.get("Conditions", {})
    )
    return resolver.resolve(value)


def table_indexes(template: dict[str, Any], table: str = "TasksTable") -> list[dict[str, Any]]:
    """The table's global secondary indexes as deployed with the parameters' defaults (an index
    kept only through an upgrade, under a condition, left out)."""
    props = template["Resources"][table]["Properties"]
    indexes: list[dict[str, Any]] = with_defaults(template, props.get("GlobalSecondaryIndexes", []))
    return indexes


def references(value: Any) -> Iterator[str]:
    """The logical ids and parameters ``value`` refers to (Ref, GetAtt, names inside Sub)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref":
                yield str(item)
            elif key == "Fn::GetAtt":
                yield str(item[0] if isinstance(item, list) else str(item).split(".")[0])
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                for name in re.findall(r"\$\{([^}!]+)\}", str(text)):
                    yield name.split(".")[0]
                if isinstance(item, list):
                    yield from references(item[1])
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def creation_order(template: dict[str, Any]) -> list[str]:
    """The template's resources ordered so that everything one references exists before it.

    A function's references include the ``Globals`` it inherits (its environment variables).
    """
    resources: dict[str, Any] = template["Resources"]
    globals_fn: dict[str, Any] = template.get("Globals", {}).get("Function", {})
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name not in resources:
            return
        if name in visiting:
            raise ValueError(f"circular reference through {name}")
        visiting.add(name)
        spec = resources[name]
        inherited = globals_fn if spec["Type"] == "AWS::Serverless::Function" else {}
        for dependency in [*references(spec.get("Properties", {})), *references(inherited)]:
            visit(dependency)
        visiting.discard(name)
        order.append(name)

    for name in resources:
        visit(name)
    return order
