"""Every role's policy, linted with parliament (offline): what moto cannot check at run time
(malformed actions, resources of the wrong shape for an action, conditions that cannot match).

Each function's and state machine's ``Policies`` are expanded as SAM expands them
(``devstack.iam.policy_documents``) and resolved with ARNs shaped as on AWS.
"""

from __future__ import annotations

import json
from typing import Any, Final

import pytest
from parliament import analyze_policy_string

from devstack.iam import policy_documents
from devstack.template import Resolver, load_template, parameter_defaults

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
ACCOUNT, REGION = "123456789012", "us-east-1"

_ARN: Final = {
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "AWS::S3::Bucket": "arn:aws:s3:::{name}",
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/{name}",
    "AWS::Events::EventBus": "arn:aws:events:{region}:{account}:event-bus/{name}",
    "AWS::Events::Rule": "arn:aws:events:{region}:{account}:rule/{name}",
    "AWS::SecretsManager::Secret": "arn:aws:secretsmanager:{region}:{account}:secret:{name}",
    "AWS::Serverless::StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{name}",
    "AWS::Serverless::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::SSM::Parameter": "arn:aws:ssm:{region}:{account}:parameter/{name}",
}
_REF_IS_ARN: Final = {
    "AWS::SecretsManager::Secret",
    "AWS::Serverless::StateMachine",
    "AWS::SNS::Topic",
}
"""Types whose ``Ref`` is their ARN (the others': a name, a URL or an id)."""

ACCEPTED: Final[dict[tuple[str, str], str]] = {}
"""(policy holder, finding) parliament reports that are accepted, with the reason. None now."""


def _resolver() -> Resolver:
    resolver = Resolver(
        parameters=parameter_defaults(TEMPLATE),
        pseudo={
            "AWS::StackName": "imagegw",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        },
    )
    for logical_id, spec in RESOURCES.items():
        kind = spec["Type"]
        name = f"imagegw-{logical_id}"
        arn = _ARN.get(kind, "").format(region=REGION, account=ACCOUNT, name=name)
        if arn:
            resolver.arns[logical_id] = arn
        if kind == "AWS::SSM::Parameter":
            resolver.physical_ids[logical_id] = f"/imagegw/{logical_id}"
        elif kind == "AWS::SQS::Queue":
            resolver.physical_ids[logical_id] = f"https://sqs.{REGION}.amazonaws.com/{name}"
        else:
            resolver.physical_ids[logical_id] = arn if kind in _REF_IS_ARN else name
    return resolver


HOLDERS = {
    logical_id: spec["Properties"].get("Policies", [])
    for logical_id, spec in RESOURCES.items()
    if spec["Type"] in {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}
}


@pytest.mark.parametrize("holder", sorted(HOLDERS))
def test_every_policy_passes_parliament(holder: str) -> None:
    # Given a function's (or the state machine's) policies, expanded and resolved as on AWS
    documents = _resolver().resolve(policy_documents(HOLDERS[holder]))
    # When parliament lints each document
    findings = [
        (finding.issue, json.dumps(finding.detail, sort_keys=True))
        for document in documents
        for finding in analyze_policy_string(json.dumps(document)).findings
    ]
    # Then it finds nothing that is not accepted with a reason
    unexpected = [f for f in findings if (holder, f[0]) not in ACCEPTED]
    assert unexpected == []


def test_the_lint_sees_a_bad_policy() -> None:
    # Given a statement whose resource is of the wrong kind for its action
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:s3:::bucket"}
        ],
    }
    # When parliament lints it, Then it reports the mismatch (the check above can fail)
    issues = {f.issue for f in analyze_policy_string(json.dumps(document)).findings}
    assert "RESOURCE_MISMATCH" in issues
