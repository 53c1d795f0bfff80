"""Moto-backed AWS for the domain stores; the tasks table is built from template.yaml.

One moto instance per test module (starting moto is the slow part), one fresh table per test
(so tests never see each other's items, and creating it costs milliseconds).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from image_gateway.adapters.dynamodb_tasks import DynamoDBTaskStore as TaskStore
from image_gateway.models.request import ImageRequest, Operation
from image_gateway.models.task import Task, TaskStatus
from moto import mock_aws

from devstack.template import load_template, table_indexes

REGION = "us-east-1"
CREATED_AT = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)

TaskFactory = Callable[..., Task]


@pytest.fixture(scope="session")
def tasks_table_properties() -> dict[str, Any]:
    """``Resources.TasksTable.Properties`` exactly as template.yaml declares them."""
    properties: dict[str, Any] = load_template()["Resources"]["TasksTable"]["Properties"]
    return properties


@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    """Moto's in-memory AWS with dummy credentials and no endpoint override."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.delenv(name, raising=False)
        with mock_aws():
            yield


@pytest.fixture(scope="module")
def dynamodb(aws: None) -> Any:
    """A DynamoDB client talking to moto."""
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def table_name(dynamodb: Any, tasks_table_properties: dict[str, Any]) -> str:
    """A fresh tasks table with the template's keys and indexes."""
    name = f"tasks-{uuid.uuid4().hex[:12]}"
    dynamodb.create_table(
        TableName=name,
        BillingMode=tasks_table_properties["BillingMode"],
        AttributeDefinitions=tasks_table_properties["AttributeDefinitions"],
        KeySchema=tasks_table_properties["KeySchema"],
        GlobalSecondaryIndexes=table_indexes(load_template()),
    )
    return name


@pytest.fixture
def task_store(dynamodb: Any, table_name: str) -> TaskStore:
    return TaskStore(dynamodb, table_name)


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


def raw_item(dynamodb: Any, table_name: str, task_id: str) -> dict[str, Any]:
    """The stored item as DynamoDB holds it (for checking that nothing changed)."""
    item: dict[str, Any] = dynamodb.get_item(
        TableName=table_name,
        Key={"pk": {"S": f"TASK#{task_id}"}, "sk": {"S": "TASK"}},
        ConsistentRead=True,
    )["Item"]
    return item


@pytest.fixture
def read_raw(dynamodb: Any, table_name: str) -> Callable[[str], dict[str, Any]]:
    """Read a task's raw item from the test's table."""
    return lambda task_id: raw_item(dynamodb, table_name, task_id)
