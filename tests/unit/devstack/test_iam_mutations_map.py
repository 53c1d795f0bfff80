"""The IAM mutation check's tables: every permission of template.yaml is mapped to a scenario,
listed as AWS-only or as not on demand (with the reason), and a new one is reported unmapped
(it cannot go unchecked)."""

from __future__ import annotations

import copy
from typing import Any

from devstack.iam import policy_documents
from devstack.iam_mutations import (
    AWS_ONLY,
    NOT_ON_DEMAND,
    PENDING,
    SCENARIOS,
    mutations,
    unmapped,
)
from devstack.template import load_template


def _unresolved(template: dict[str, Any]) -> dict[str, list[Any]]:
    """Each function's documents as written (the same statements as resolved ones)."""
    return {
        logical_id: policy_documents(spec["Properties"].get("Policies", []))
        for logical_id, spec in template["Resources"].items()
        if spec["Type"] == "AWS::Serverless::Function"
    }


def test_every_permission_of_the_template_has_a_scenario_or_a_reason() -> None:
    # Given the template as shipped WHEN its permissions are listed
    template = load_template()
    found = mutations(template, _unresolved(template))
    # THEN each is in exactly one table (a scenario, AWS-only, not on demand, pending), none
    # is stale, and none is left pending
    assert [m.key for m in unmapped(found)] == []
    tables = [set(SCENARIOS), set(AWS_ONLY), set(NOT_ON_DEMAND), set(PENDING)]
    assert sum(len(t) for t in tables) == len(set().union(*tables)) == len(found)
    assert set().union(*tables) == {m.key for m in found}
    assert PENDING == {}


def test_a_new_permission_is_reported_unmapped() -> None:
    # Given a template whose ApiFunction gains sqs:DeleteMessage on its dispatch queue
    template = copy.deepcopy(load_template())
    template["Resources"]["ApiFunction"]["Properties"]["Policies"].append(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["sqs:DeleteMessage"],
                    "Resource": {"Fn::GetAtt": ["DispatchQueue", "Arn"]},
                }
            ]
        }
    )
    # WHEN its permissions are checked against the tables
    missing = unmapped(mutations(template, _unresolved(template)))
    # THEN that one is unmapped, named by function, action and resource
    assert [m.key for m in missing] == [("ApiFunction", "sqs:DeleteMessage", "DispatchQueue")]
