"""template.yaml and the state machine: the properties the architecture promises.

cfn-lint and ``sam validate --lint`` run in ``make template-check``; cfn-lint does not read
``DefinitionUri`` files, so the ASL is checked here by creating it in moto's Step Functions.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from image_gateway.adapters.dynamodb_due import OPEN_BY_CHECK_INDEX
from image_gateway.adapters.dynamodb_tasks import BY_CLIENT_INDEX
from moto import mock_aws

from devstack.template import ROOT, load_template, table_indexes

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}
ASL_PATH = ROOT / "statemachines" / "poll.asl.json"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def _definition() -> str:
    text = ASL_PATH.read_text()
    substitutions = RESOURCES["PollStateMachine"]["Properties"]["DefinitionSubstitutions"]
    for key in substitutions:
        text = text.replace("${" + key + "}", "arn:aws:lambda:us-east-1:123456789012:function:poll")
    return text


def test_every_placeholder_in_the_state_machine_has_a_substitution() -> None:
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", ASL_PATH.read_text()))
    substitutions = RESOURCES["PollStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert placeholders == set(substitutions)


def test_the_state_machine_definition_is_accepted_by_step_functions(aws: None) -> None:
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="poll",
        definition=_definition(),
        roleArn="arn:aws:iam::123456789012:role/sfn",
        type="STANDARD",
    )["stateMachineArn"]
    assert sfn.describe_state_machine(stateMachineArn=arn)["status"] == "ACTIVE"


def test_the_poll_loop_waits_first_and_every_task_state_retries_and_catches() -> None:
    definition = json.loads(_definition())
    states = definition["States"]
    first = states[definition["StartAt"]]
    assert (first["Type"], first["SecondsPath"]) == ("Wait", "$.wait_seconds")
    poll = states[first["Next"]]
    assert poll["Type"] == "Task" and poll["Retry"] and poll["Catch"]
    reachable = {definition["StartAt"]}
    for state in states.values():
        reachable |= {state.get("Next"), state.get("Default")}
        reachable |= {c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])}
    assert set(states) <= reachable


def test_the_table_is_on_demand_with_pitr_ttl_and_the_indexes_the_code_queries() -> None:
    table = RESOURCES["TasksTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    indexes = {i["IndexName"]: i for i in table_indexes(TEMPLATE)}
    assert set(indexes) == {BY_CLIENT_INDEX, OPEN_BY_CHECK_INDEX}
    # keys only: a task's status writes are not copied into either (docs/capacity.md)
    assert {i["Projection"]["ProjectionType"] for i in indexes.values()} == {"KEYS_ONLY"}


def test_the_old_listing_index_is_kept_only_while_a_stack_is_upgraded() -> None:
    upgrading = {**TEMPLATE, "Parameters": {**TEMPLATE["Parameters"]}}
    upgrading["Parameters"]["LegacyByClientIndex"] = {"Default": "true"}
    indexes = {i["IndexName"]: i for i in table_indexes(upgrading)}
    assert set(indexes) == {"ByClient", BY_CLIENT_INDEX, OPEN_BY_CHECK_INDEX}
    assert indexes["ByClient"]["Projection"] == {"ProjectionType": "ALL"}


def test_the_bucket_is_private_encrypted_and_tls_only() -> None:
    bucket = RESOURCES["ImagesBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    statement = RESOURCES["ImagesBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# Functions that touch no AWS resource: their policy list is empty on purpose.
NO_AWS_ACCESS = {"ConsoleFunction"}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_has_its_own_policies_without_wildcard_actions(name: str) -> None:
    policies = FUNCTIONS[name]["Properties"]["Policies"]
    if name in NO_AWS_ACCESS:
        assert policies == [], f"{name} should need no AWS access"
        return
    assert policies, f"{name} has no policies"
    for policy in policies:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            for action in statement["Action"]:
                assert "*" not in action, f"{name}: wildcard action {action}"
            resources = statement["Resource"]
            assert resources != "*", f"{name}: wildcard resource"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_has_a_handler_and_a_log_group_with_retention(name: str) -> None:
    code_dir = ROOT / FUNCTIONS[name]["Properties"]["CodeUri"]
    source = (code_dir / "app.py").read_text()
    assert "def lambda_handler(" in source
    group = RESOURCES[f"{name}Logs"]["Properties"]
    assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{name}}}"}
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_every_api_route_in_the_template_is_served_by_the_api_function() -> None:
    spec = importlib.util.spec_from_file_location("api_app", ROOT / "functions/api/app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    events = FUNCTIONS["ApiFunction"]["Properties"]["Events"].values()
    declared = {f"{e['Properties']['Method']} {e['Properties']['Path']}" for e in events}
    assert declared == module.router.routes


def test_the_settings_read_only_variables_the_template_sets() -> None:
    variables = set(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])
    source = (ROOT / "layers/common/image_gateway/config.py").read_text()
    read = set(re.findall(r'"([A-Z][A-Z_]+)"', source))
    function_only = {
        "STATE_MACHINE_ARN",
        "DISPATCH_QUEUE_URL",
        "PROVIDER_SYNC_TIMEOUT_SECONDS",
        "WEBHOOK_KEY_ID",
        "WEBHOOK_DEAD_LETTER_QUEUE_URL",
        "CALLBACK_BASE_URL",
    }
    assert read - function_only <= variables, read - variables


def _images_bucket_actions(function: str) -> set[str]:
    """S3 actions a function's inline statements grant on the images bucket's objects."""
    actions: set[str] = set()
    for policy in FUNCTIONS[function]["Properties"]["Policies"]:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            resources = statement["Resource"]
            resources = resources if isinstance(resources, list) else [resources]
            if any("ImagesBucket.Arn" in json.dumps(r) for r in resources):
                actions |= set(statement["Action"])
    return actions


@pytest.mark.parametrize(
    "name",
    # the thumbnail function stores only previews it made itself, which nothing refuses
    sorted(
        n
        for n in FUNCTIONS
        if "s3:PutObject" in _images_bucket_actions(n) and n != "ThumbnailFunction"
    ),
)
def test_a_function_that_stores_images_may_delete_what_it_stored(name: str) -> None:
    # the refused inputs of a request and the outputs of a task that ended otherwise are deleted
    assert "s3:DeleteObject" in _images_bucket_actions(name)
