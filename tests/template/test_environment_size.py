"""Lambda refuses a function whose environment variables total more than 4 KB.

Every function gets the globals' variables (names and URLs of the table, buckets, queues,
secrets, the parameters' values) and its own. On devstack the names are short (moto's queue
URLs, no random suffixes); on AWS, CloudFormation names what the template does not name as
``<stack>-<LogicalId>-<random>``, and ARNs and queue URLs carry the region and the account. This
test resolves each function's environment as AWS would with a long stack name in a long region
name (every parameter at its default) and counts it as JSON, which is longer than the names and
values alone. Measured so: DispatchFunction 1,984 bytes (30 variables) is the largest, which
leaves about 2 KB for what an operator's parameters add (``ProviderBaseUrls`` above all).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.template import Resolver, load_template, parameter_defaults

TEMPLATE = load_template()
LIMIT_BYTES = 4096
"""Lambda's quota: "Function environment variables: 4 KB, for all environment variables"."""

STACK = "image-gateway-production-eu-cent"  # 32 characters: longer than most stack names
REGION = "ap-southeast-2"  # among the longest region names
ACCOUNT = "123456789012"
SUFFIX = "A1B2C3D4E5F6G"  # CloudFormation's random part of a generated name (12-13 characters)

# What Ref and GetAtt ... Arn give for each resource type, from its physical name.
_SERVICE = {
    "AWS::SQS::Queue": "sqs",
    "AWS::Events::EventBus": "events",
    "AWS::S3::Bucket": "s3",
    "AWS::SSM::Parameter": "ssm",
    "AWS::SecretsManager::Secret": "secretsmanager",
    "AWS::Serverless::StateMachine": "states",
    "AWS::DynamoDB::Table": "dynamodb",
    "AWS::KMS::Key": "kms",
    "AWS::Serverless::HttpApi": "apigateway",
}

_NAME_PROPERTY = {
    "AWS::SQS::Queue": "QueueName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Serverless::StateMachine": "Name",
    "AWS::Serverless::Function": "FunctionName",
}
"""The property that names a resource of each type, when the template sets it (else ``Name``)."""


def _aws_resolver() -> Resolver:
    resolver = Resolver(
        parameters=parameter_defaults(TEMPLATE),
        pseudo={
            "AWS::StackName": STACK,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        },
        conditions=TEMPLATE.get("Conditions", {}),
    )
    for logical, resource in TEMPLATE["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        named = props.get(_NAME_PROPERTY.get(kind, "Name"))
        name = str(resolver.resolve(named)) if named else f"{STACK}-{logical}-{SUFFIX}"
        service = _SERVICE.get(kind, "lambda")
        arn = f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"
        ref = name
        if kind == "AWS::SQS::Queue":
            name = name[:75] + (".fifo" if props.get("FifoQueue") else "")
            ref = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
            arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        elif kind == "AWS::SecretsManager::Secret":  # Ref is the ARN, with 6 random characters
            ref = arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"
        elif kind == "AWS::Serverless::StateMachine":  # Ref is the ARN
            ref = arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
        elif kind == "AWS::KMS::Key":  # Ref is the key id
            ref = "1234abcd-12ab-34cd-56ef-1234567890ab"
            arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{ref}"
        elif kind == "AWS::Serverless::HttpApi":  # Ref is the API id
            ref = "a1b2c3d4e5"
        resolver.physical_ids[logical] = ref
        resolver.arns[logical] = arn
    return resolver


def _environments() -> dict[str, dict[str, str]]:
    resolver = _aws_resolver()
    shared = TEMPLATE["Globals"]["Function"].get("Environment", {}).get("Variables", {})
    found = {}
    for logical, resource in TEMPLATE["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        own: dict[str, Any] = resource["Properties"].get("Environment", {}).get("Variables", {})
        resolved = resolver.resolve({**shared, **own})
        found[logical] = {k: str(v) for k, v in resolved.items()}
    return found


ENVIRONMENTS = _environments()


def test_every_function_of_the_template_is_counted() -> None:
    functions = {
        name
        for name, resource in TEMPLATE["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert set(ENVIRONMENTS) == functions
    # and each has the stack's resources under their AWS names, not devstack's
    queue_url = ENVIRONMENTS["DispatchFunction"]["DISPATCH_QUEUE_URL"]
    assert queue_url.startswith(f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{STACK}-")


@pytest.mark.parametrize("function", sorted(ENVIRONMENTS))
def test_the_functions_environment_fits_lambdas_4_kb(function: str) -> None:
    # Given the function's environment as deployed on AWS with a long stack name
    environment = ENVIRONMENTS[function]
    # When it is counted as JSON (more than its names and values alone)
    size = len(json.dumps(environment).encode())
    # Then Lambda accepts it
    assert size <= LIMIT_BYTES, f"{function}: {size} bytes of environment variables"
