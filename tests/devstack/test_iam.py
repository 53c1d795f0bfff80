"""devstack's IAM: roles built from the template as SAM builds them, moto enforcing them per
resource (the pinned patch of moto's private API), and refused calls named in the log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from image_gateway.adapters.boto import new_session

from devstack.iam import (
    Permission,
    create_admin,
    execution_role,
    patch_moto_resources,
    permissions,
    policy_documents,
    set_enforcement,
    without,
)
from devstack.local_aws import LocalAws
from devstack.provisioning import ACCOUNT
from devstack.template import load_template

REGION = "us-east-1"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t"
PARAMETER_ARN = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/p"


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    local = LocalAws(REGION)
    local.start()
    patch_moto_resources()
    yield local
    local.stop()  # also switches enforcement off for the rest of the session


def _admin(aws: LocalAws, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=aws.url,
        region_name=REGION,
        aws_access_key_id="devstack",
        aws_secret_access_key="devstack",
    )


@pytest.fixture(scope="module")
def role_session(aws: LocalAws) -> Iterator[Any]:
    """A function's botocore session (the layer's) with the credentials of a role that may read
    and write items of table ``t``, query its ``ByClient`` index and read parameters ``/p/a`` and
    ``/p/a/operator`` with GetParameters, and nothing else."""
    _admin(aws, "dynamodb").create_table(
        TableName="t",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "c", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "ByClient",
                "KeySchema": [{"AttributeName": "c", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for name in ("/p/a", "/p/b"):
        _admin(aws, "ssm").put_parameter(Name=name, Value="{}", Type="String")
    documents = [
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
                    "Resource": TABLE_ARN,
                },
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:Query"],
                    "Resource": f"{TABLE_ARN}/index/ByClient",
                },
                {
                    "Effect": "Allow",
                    "Action": ["ssm:GetParameters"],
                    "Resource": [f"{PARAMETER_ARN}/a", f"{PARAMETER_ARN}/a/operator"],
                },
            ],
        }
    ]
    clients = {"iam": _admin(aws, "iam"), "sts": _admin(aws, "sts")}
    _, credentials = execution_role(clients, "fn", documents)
    create_admin(clients["iam"], ACCOUNT)
    session = new_session()
    session.set_credentials(
        credentials["AWS_ACCESS_KEY_ID"],
        credentials["AWS_SECRET_ACCESS_KEY"],
        credentials["AWS_SESSION_TOKEN"],
    )
    set_enforcement(aws.url, on=True)
    yield session
    set_enforcement(aws.url, on=False)


def _ddb(aws: LocalAws, session: Any) -> Any:
    return session.create_client("dynamodb", region_name=REGION, endpoint_url=aws.url)


def test_a_role_may_do_what_its_policy_allows(aws: LocalAws, role_session: Any) -> None:
    # Given a role allowed PutItem and GetItem on table t
    ddb = _ddb(aws, role_session)
    # When it writes and reads an item, Then both succeed
    ddb.put_item(TableName="t", Item={"pk": {"S": "a"}, "c": {"S": "x"}})
    assert ddb.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]["c"] == {"S": "x"}


def test_an_action_the_policy_lacks_is_refused_and_named_in_the_log(
    aws: LocalAws, role_session: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a role without dynamodb:DeleteItem
    ddb = _ddb(aws, role_session)
    # When it deletes an item
    with pytest.raises(ClientError) as refused:
        ddb.delete_item(TableName="t", Key={"pk": {"S": "a"}})
    # Then it is refused (403), and one ERROR line names the action and the table
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "{" in line]
    denied = next(line for line in lines if line.get("message") == "AWS access denied")
    assert denied["action"] == "dynamodb:DeleteItem"
    assert denied["resource"] == "t"
    assert denied["level"] == "ERROR"
    # And it is counted as AccessDenied (EMF)
    metric = next(line for line in lines if "AccessDenied" in line)
    assert metric["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == "AccessDenied"
    assert "Function" in metric


def test_the_resource_counts_a_query_on_the_table_is_not_one_on_its_index(
    aws: LocalAws, role_session: Any
) -> None:
    # Given a role allowed dynamodb:Query on the ByClient index only
    ddb = _ddb(aws, role_session)
    query = {"KeyConditionExpression": "c = :c", "ExpressionAttributeValues": {":c": {"S": "x"}}}
    # When it queries the index, Then that succeeds
    assert ddb.query(TableName="t", IndexName="ByClient", **query)["Count"] >= 0
    # When it queries the table itself, Then it is refused (moto alone sees no DynamoDB resource)
    with pytest.raises(ClientError, match="AccessDenied"):
        ddb.query(
            TableName="t",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "a"}},
        )


def test_a_transaction_is_checked_item_by_item_as_dynamodb_does(
    aws: LocalAws, role_session: Any
) -> None:
    # Given a role allowed PutItem but not UpdateItem on table t
    ddb = _ddb(aws, role_session)
    put = {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}}}}
    update = {
        "Update": {
            "TableName": "t",
            "Key": {"pk": {"S": "b"}},
            "UpdateExpression": "SET c = :c",
            "ExpressionAttributeValues": {":c": {"S": "y"}},
        }
    }
    # When a transaction only puts, Then it succeeds (no dynamodb:TransactWriteItems needed)
    ddb.transact_write_items(TransactItems=[put])
    # When one also updates, Then it is refused
    with pytest.raises(ClientError, match="AccessDenied"):
        ddb.transact_write_items(TransactItems=[update])


def test_get_parameters_is_checked_on_each_parameter_it_names(
    aws: LocalAws, role_session: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a role allowed ssm:GetParameters on /p/a and /p/a/operator only
    ssm = role_session.create_client("ssm", region_name=REGION, endpoint_url=aws.url)
    # When it reads both (the operator's does not exist), Then one comes back, one is invalid
    answer = ssm.get_parameters(Names=["/p/a", "/p/a/operator"])
    assert [p["Name"] for p in answer["Parameters"]] == ["/p/a"]
    assert answer["InvalidParameters"] == ["/p/a/operator"]
    # When one of the names is a parameter it may not read, Then the whole call is refused
    with pytest.raises(ClientError, match="AccessDenied"):
        ssm.get_parameters(Names=["/p/a", "/p/b"])
    # And the log names the parameters it asked for
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "{" in line]
    denied = next(line for line in lines if line.get("message") == "AWS access denied")
    assert (denied["action"], denied["resource"]) == ("ssm:GetParameters", "/p/a, /p/b")


def test_the_accounts_own_credentials_may_do_anything(aws: LocalAws, role_session: Any) -> None:
    # Given enforcement on, When the account's devstack/devstack key deletes an item
    _admin(aws, "dynamodb").delete_item(TableName="t", Key={"pk": {"S": "a"}})
    # Then it is allowed (the README's aws commands and the tests use it)


def test_sam_policy_templates_are_expanded_as_sam_expands_them() -> None:
    # Given a SAM policy template item and an inline statement
    policies = [
        {"EventBridgePutEventsPolicy": {"EventBusName": {"Ref": "EventBus"}}},
        {"Statement": [{"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "q"}]},
    ]
    # When they become policy documents
    documents = policy_documents(policies)
    # Then the template is SAM's (events:PutEvents on the bus) and the statement is as written
    assert documents[0]["Statement"][0]["Action"] == "events:PutEvents"
    assert "event-bus/${eventBusName}" in json.dumps(documents[0])
    assert documents[1]["Statement"][0]["Action"] == ["sqs:SendMessage"]


def test_every_function_of_the_template_has_policies_devstack_can_build() -> None:
    # Given the shipped template, When each function's policies are expanded
    template = load_template()
    functions = [
        (name, spec["Properties"].get("Policies", []))
        for name, spec in template["Resources"].items()
        if spec["Type"] == "AWS::Serverless::Function"
    ]
    # Then every one expands (no managed policy or unknown template slips in unchecked)
    for name, policies in functions:
        assert isinstance(policy_documents(policies), list), name


def test_a_permission_taken_out_leaves_the_rest_of_its_statement() -> None:
    # Given a statement of two actions on one resource
    documents = [
        {"Statement": [{"Effect": "Allow", "Action": ["a:One", "a:Two"], "Resource": "r"}]}
    ]
    (one, two) = permissions("F", documents)
    # When one is taken out, Then only the other is left
    assert permissions("F", without(documents, one)) == [two]
    assert permissions("F", without(documents, Permission("F", "a:One", ("other",)))) == [
        one,
        two,
    ]
