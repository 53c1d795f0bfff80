"""The operator's provider settings over the stack's defaults.

The stack owns ``/<stack>/providers`` (template.yaml's ``ProvidersParameter``): the defaults, which
every ``sam deploy`` writes again. The operator's changes (``imagegw admin providers set``) live in
``/<stack>/providers/operator``, a parameter the stack does not own, so no deploy touches them.
The functions read both and lay the operator's document over the defaults:
``options``, ``prices``, ``concurrency`` and ``breaker`` per provider (an operator's entry
replaces that provider's default entry), every other key (``order``, ``disabled``) whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

PER_PROVIDER_KEYS = ("options", "prices", "concurrency", "breaker")


def operator_parameter(defaults_parameter: str) -> str:
    """The name of the operator's parameter next to the stack's ``defaults_parameter``."""
    return defaults_parameter.rstrip("/") + "/operator"


def overlay(defaults: dict[str, Any], operator: dict[str, Any]) -> dict[str, Any]:
    """``operator`` over ``defaults`` (neither is changed)."""
    merged = dict(defaults)
    for key, value in operator.items():
        base = merged.get(key)
        if key in PER_PROVIDER_KEYS and isinstance(value, dict) and isinstance(base, dict):
            merged[key] = {**base, **value}
        else:
            merged[key] = value
    return merged


def effective_document(defaults: str, operator: str | None) -> str:
    """The JSON the functions parse: the operator's document (if any) over the defaults. A
    document that is not a JSON object is returned as it is, for the parser to report."""
    if not operator:
        return defaults
    try:
        base, over = json.loads(defaults or "{}"), json.loads(operator)
    except ValueError:
        return operator
    if not isinstance(base, dict) or not isinstance(over, dict):
        return operator
    return json.dumps(overlay(base, over))


def loader(
    get_both: Callable[[str, str], tuple[str, str | None]], defaults_parameter: str
) -> Callable[[], str]:
    """A ``ProviderDirectory`` loader reading both parameters at once: ``get_both(defaults,
    operator)`` returns the stack's value (raising when it is missing) and the operator's (None
    until the first ``providers set``)."""

    def load() -> str:
        return effective_document(
            *get_both(defaults_parameter, operator_parameter(defaults_parameter))
        )

    return load
