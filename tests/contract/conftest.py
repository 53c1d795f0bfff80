"""The contract suite: every port's in-memory fake and its real adapter pass the same tests.

A contract test takes its port's fixture, which is parametrized by ``implementation``:
``memory`` (``tests/fakes``) or ``aws`` (the adapter on moto, in process). Where a test must
look behind the port (what was queued, which execution started) or make the outside system
refuse, each implementation gives a small helper of the same name. moto starts once per module,
and only when an ``aws`` test needs it; each test gets fresh tables, buckets and queues. The
provider clients have no AWS side: their module runs ``memory`` against ``http`` (the adapters
talking to the provider simulator on 127.0.0.1).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from image_gateway.models.request import ImageRequest, Operation
from image_gateway.models.task import Task, TaskStatus
from moto import mock_aws

from devstack.template import load_template, table_indexes

REGION = "us-east-1"
IMPLEMENTATIONS = ["memory", "aws"]
CREATED_AT = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)

TaskFactory = Callable[..., Task]


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest) -> str:
    """Which side of the contract runs: the fake (``memory``) or the adapter (``aws``)."""
    return str(request.param)


# -- moto ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    """Moto's in-memory AWS with dummy credentials and no endpoint override."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.delenv(name, raising=False)
        with mock_aws():
            yield


@pytest.fixture(scope="module")
def dynamodb(aws: None) -> Any:
    """A DynamoDB client on moto."""
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture(scope="module")
def s3(aws: None) -> Any:
    """An S3 client on moto, SigV4 as the functions configure it."""
    return boto3.client("s3", region_name=REGION, config=Config(signature_version="s3v4"))


@pytest.fixture(scope="module")
def events_client(aws: None) -> Any:
    """An EventBridge client on moto."""
    return boto3.client("events", region_name=REGION)


@pytest.fixture(scope="module")
def sqs(aws: None) -> Any:
    """An SQS client on moto."""
    return boto3.client("sqs", region_name=REGION)


@pytest.fixture(scope="module")
def stepfunctions(aws: None) -> Any:
    """A Step Functions client on moto (executions are recorded, never run)."""
    return boto3.client("stepfunctions", region_name=REGION)


@pytest.fixture(scope="session")
def template_resources() -> dict[str, Any]:
    """``Resources`` of template.yaml."""
    resources: dict[str, Any] = load_template()["Resources"]
    return resources


@pytest.fixture(scope="session")
def tasks_table_indexes() -> list[dict[str, Any]]:
    """The tasks table's indexes as a new stack has them (template.yaml's defaults)."""
    return table_indexes(load_template())


@pytest.fixture
def tasks_table(
    request: pytest.FixtureRequest,
    template_resources: dict[str, Any],
    tasks_table_indexes: list[dict[str, Any]],
) -> str:
    """A fresh tasks table on moto with template.yaml's keys and indexes (name returned)."""
    dynamodb = request.getfixturevalue("dynamodb")
    properties = template_resources["TasksTable"]["Properties"]
    name = f"tasks-{uuid.uuid4().hex[:12]}"
    dynamodb.create_table(
        TableName=name,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        GlobalSecondaryIndexes=tasks_table_indexes,
    )
    return name


# -- tasks ---------------------------------------------------------------------------------------
@pytest.fixture
def make_task() -> TaskFactory:
    """Build a Task (not stored); keyword arguments override any field."""

    def factory(**fields: Any) -> Task:
        created = fields.pop("created_at", CREATED_AT)
        values: dict[str, Any] = {
            "task_id": f"task-{uuid.uuid4().hex}",
            "client_id": "client-a",
            "status": TaskStatus.QUEUED,
            "operation": Operation.GENERATE,
            "model": "gpt-image-2",
            "provider": "apimart",
            "request": ImageRequest(prompt="a red fox in the snow", metadata={"order": "42"}),
            "created_at": created,
            "updated_at": created,
        }
        values.update(fields)
        return Task(**values)

    return factory
