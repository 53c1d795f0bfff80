"""The dispatch function under SQS redrive (moto's SQS, the real handler, the provider simulator).

A sync task whose dispatch crashes on every delivery (here: the images bucket is missing, so
storing the provider's answer raises) is delivered ``maxReceiveCount`` times, lands on the
dead-letter queue, and the dead-letter record ends the task as ``failed`` with its event.
Queues and their redrive policy come from template.yaml.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from image_gateway.adapters.aws import AwsDependencies as Dependencies
from image_gateway.adapters.boto import PerEnvironment
from image_gateway.config import Settings
from image_gateway.models.request import ImageRequest
from image_gateway.models.task import TaskStatus
from image_gateway.service.submit import submit_task
from image_gateway.sqs_batch import BatchFailed
from moto import mock_aws

from devstack.runtime import FakeContext
from devstack.simulator import ProviderSimulator
from devstack.template import ROOT, load_template, table_indexes

REGION = "us-east-1"
SIM_KEY = "sim-key"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield


@pytest.fixture
def simulator() -> Iterator[ProviderSimulator]:
    with ProviderSimulator(time_scale=0.0, api_key=SIM_KEY) as sim:
        yield sim


def _queue(sqs: Any, name: str, properties: dict[str, Any], dlq_arn: str | None) -> str:
    attributes = {"VisibilityTimeout": str(properties["VisibilityTimeout"])}
    if dlq_arn is not None:
        policy = dict(properties["RedrivePolicy"], deadLetterTargetArn=dlq_arn)
        attributes["RedrivePolicy"] = json.dumps(policy)
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def _arn(sqs: Any, url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attrs["QueueArn"])


def _load_dispatch_function() -> ModuleType:
    path = ROOT / "functions" / "dispatch" / "app.py"
    spec = importlib.util.spec_from_file_location(f"dispatch_app_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sqs_event(messages: list[dict[str, Any]], source_arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": source_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def test_given_a_dispatch_that_crashes_on_every_delivery_then_the_dlq_fails_the_task_with_an_event(
    aws: None, simulator: ProviderSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources = load_template()["Resources"]
    ddb, s3, sqs = (boto3.client(n, region_name=REGION) for n in ("dynamodb", "s3", "sqs"))
    events, secrets, ssm = (
        boto3.client(n, region_name=REGION) for n in ("events", "secretsmanager", "ssm")
    )
    table = resources["TasksTable"]["Properties"]
    ddb.create_table(
        TableName="tasks",
        BillingMode=table["BillingMode"],
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        GlobalSecondaryIndexes=table_indexes(load_template()),
    )
    s3.create_bucket(Bucket="images")
    events.create_event_bus(Name="bus")
    subscriber = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
    events.put_rule(Name="all", EventBusName="bus", EventPattern='{"source": ["image-gateway"]}')
    events.put_targets(
        Rule="all", EventBusName="bus", Targets=[{"Id": "q", "Arn": _arn(sqs, subscriber)}]
    )
    webhook_secret = secrets.create_secret(Name="webhook", SecretString="s" * 32)["ARN"]
    keys_secret = secrets.create_secret(
        Name="keys", SecretString=json.dumps({"mountsea-compat": SIM_KEY})
    )["ARN"]
    ssm.put_parameter(
        Name="/gw/providers",
        Type="String",
        Value=resources["ProvidersParameter"]["Properties"]["Value"],
    )
    dlq = _queue(sqs, "dispatch-dlq", resources["DispatchDeadLetterQueue"]["Properties"], None)
    queue = _queue(sqs, "dispatch", resources["DispatchQueue"]["Properties"], _arn(sqs, dlq))
    env = {
        "TABLE_NAME": "tasks",
        "BUCKET_NAME": "images",
        "EVENT_BUS_NAME": "bus",
        "WEBHOOK_SECRET_ARN": webhook_secret,
        "PROVIDER_KEYS_SECRET_ARN": keys_secret,
        "DEFAULT_PROVIDERS": "mountsea-compat",
        "PROVIDER_BASE_URLS": json.dumps(
            {"mountsea-compat": simulator.provider_base_url("mountsea-compat")}
        ),
        "PROVIDERS_PARAMETER": "/gw/providers",
        "DISPATCH_QUEUE_URL": queue,
    }
    api = Dependencies(Settings.from_env(env))
    task = submit_task(api, ImageRequest(prompt="a red door"), client_id="c1").task
    assert (task.status, task.path, task.provider) == (
        TaskStatus.QUEUED,  # storage-first: the dispatch function makes the call
        None,
        "mountsea-compat",
    )

    # The dispatch function, whose result bucket is missing: every delivery raises after the call.
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ImageTaskGateway")  # as the template
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "dispatch")
    function = _load_dispatch_function()
    broken = Dependencies(Settings.from_env({**env, "BUCKET_NAME": "no-such-bucket"}))
    monkeypatch.setattr(function, "DEPS", PerEnvironment(lambda: broken))
    monkeypatch.setenv("DISPATCH_DEAD_LETTER_QUEUE_ARN", _arn(sqs, dlq))
    context = FakeContext("dispatch", 512, 300, "arn:aws:lambda:us-east-1:1:function:dispatch")
    deliveries = 0
    for _ in range(10):  # what Lambda's event source mapping does, without the waits
        batch = sqs.receive_message(QueueUrl=queue, AttributeNames=["All"]).get("Messages", [])
        if not batch:
            break
        deliveries += 1
        # A batch whose every record failed raises: Lambda retries the batch
        with pytest.raises(BatchFailed):
            function.lambda_handler(_sqs_event(batch, _arn(sqs, queue)), context)
        sqs.change_message_visibility(
            QueueUrl=queue, ReceiptHandle=batch[0]["ReceiptHandle"], VisibilityTimeout=0
        )
    max_receives = resources["DispatchQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    assert deliveries == max_receives == 3
    assert api.tasks.require(task.task_id).status is TaskStatus.RUNNING  # not lost, not done

    parked = sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"])["Messages"]
    assert json.loads(parked[0]["Body"]) == {"task_id": task.task_id, "provider": "mountsea-compat"}
    answer = function.lambda_handler(_sqs_event(parked, _arn(sqs, dlq)), context)
    assert answer["batchItemFailures"] == []

    failed = api.tasks.require(task.task_id)
    assert failed.status is TaskStatus.FAILED
    assert failed.error is not None and failed.error.code == "dispatch_failed"
    assert failed.cost_estimate_usd == 0.0
    calls = [r for r in simulator_requests(simulator) if r["path"].endswith("/images/generations")]
    assert len(calls) == 3  # each delivery called the provider again
    received = [
        json.loads(m["Body"])["detail-type"]
        for m in sqs.receive_message(QueueUrl=subscriber, MaxNumberOfMessages=10)["Messages"]
    ]
    assert sorted(received) == ["Image Task Failed", "Image Task Submitted"]


def simulator_requests(simulator: ProviderSimulator) -> list[dict[str, Any]]:
    """The simulator's request journal."""
    import httpx

    return list(httpx.get(f"{simulator.base_url}/_sim/requests").raise_for_status().json())


def test_given_the_dispatch_queue_is_unreachable_when_submitting_then_the_task_fails_cleanly(
    aws: None, simulator: ProviderSimulator
) -> None:
    resources = load_template()["Resources"]
    ddb, secrets = boto3.client("dynamodb"), boto3.client("secretsmanager")
    table = resources["TasksTable"]["Properties"]
    ddb.create_table(
        TableName="tasks",
        BillingMode=table["BillingMode"],
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        GlobalSecondaryIndexes=table_indexes(load_template()),
    )
    boto3.client("events").create_event_bus(Name="bus")
    env = {
        "TABLE_NAME": "tasks",
        "BUCKET_NAME": "images",
        "EVENT_BUS_NAME": "bus",
        "WEBHOOK_SECRET_ARN": secrets.create_secret(Name="w", SecretString="s" * 32)["ARN"],
        "PROVIDER_KEYS_SECRET_ARN": secrets.create_secret(Name="k", SecretString="{}")["ARN"],
        "DEFAULT_PROVIDERS": "openai",
        "PROVIDER_BASE_URLS": json.dumps({"openai": simulator.provider_base_url("openai")}),
        "DISPATCH_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue",
    }
    deps = Dependencies(Settings.from_env(env))

    task = submit_task(deps, ImageRequest(prompt="x"), client_id="c1").task

    assert task.status is TaskStatus.FAILED  # a failed task with its event, not a 500
    assert task.error is not None and task.error.code == "dispatch_unavailable"
    assert task.events_published == [TaskStatus.FAILED]  # no provider ever took it
