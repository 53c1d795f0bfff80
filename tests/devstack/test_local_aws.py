"""devstack's local AWS: moto's Lambda invoke routed to the function runtime (the pinned patch of
moto's private API), and DynamoDB requests answered one at a time."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.awslambda.models import LambdaFunction

from devstack.local_aws import AtomicDynamoDB, LocalAws
from devstack.runtime import FunctionError, patch_moto_lambda


class EchoRuntime:
    """A function runtime that answers with what it was asked, or fails when told to."""

    concurrency = 1

    def invoke(self, name: str, event: Any) -> Any:
        if event.get("fail"):
            raise FunctionError(name, "ValueError", "told to fail", "Traceback ...\nValueError")
        return {"function": name, "event": event}


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    local = LocalAws("us-east-1")
    local.start()
    yield local
    local.stop()


@pytest.fixture
def lambda_client(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Any:
    # Put moto's own invoke back after the test (the patch is process-wide).
    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", LambdaFunction._invoke_lambda)
    patch_moto_lambda(EchoRuntime())  # type: ignore[arg-type]
    settings = {key.lower(): value for key, value in aws.environment.items()}
    client = boto3.client(
        "lambda",
        endpoint_url=settings["aws_endpoint_url"],
        region_name=settings["aws_region"],
        aws_access_key_id=settings["aws_access_key_id"],
        aws_secret_access_key=settings["aws_secret_access_key"],
    )
    iam = boto3.client(
        "iam",
        endpoint_url=settings["aws_endpoint_url"],
        region_name=settings["aws_region"],
        aws_access_key_id=settings["aws_access_key_id"],
        aws_secret_access_key=settings["aws_secret_access_key"],
    )
    role = iam.create_role(RoleName=f"r{id(client)}", AssumeRolePolicyDocument="{}")["Role"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("app.py", "")
    client.create_function(
        FunctionName="echo",
        Runtime="python3.13",
        Role=role["Arn"],
        Handler="app.handler",
        Code={"ZipFile": archive.getvalue()},
    )
    yield client
    client.delete_function(FunctionName="echo")


def test_moto_invokes_lambda_through_the_runtime(lambda_client: Any) -> None:
    # Given moto's Lambda invoke patched to a runtime
    # When a function is invoked through the Lambda API (as Step Functions does)
    answer = lambda_client.invoke(FunctionName="echo", Payload=json.dumps({"task_id": "t1"}))
    # Then the runtime ran it, and its result is the payload
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {"function": "echo", "event": {"task_id": "t1"}}


def test_a_failed_invocation_is_a_function_error(lambda_client: Any) -> None:
    # Given a runtime whose invocation fails
    # When the function is invoked through the Lambda API
    answer = lambda_client.invoke(FunctionName="echo", Payload=json.dumps({"fail": True}))
    # Then it is a function error (moto says "Handled") whose payload is Lambda's error shape
    assert "FunctionError" in answer
    payload = json.loads(answer["Payload"].read())
    assert (payload["errorType"], payload["errorMessage"]) == ("ValueError", "told to fail")


class HoldingApp:
    """A WSGI app that holds each request until released, recording which are inside."""

    def __init__(self) -> None:
        self.inside: list[str] = []
        self.entered = threading.Condition()
        self.release = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with self.entered:
            self.inside.append(environ["name"])
            self.entered.notify_all()
        self.release.wait(timeout=10)
        return [b"ok"]

    def wait_inside(self, name: str) -> bool:
        with self.entered:
            return self.entered.wait_for(lambda: name in self.inside, timeout=0.5)


def request(app: AtomicDynamoDB, name: str, target: str) -> threading.Thread:
    environ = {"name": name, "HTTP_X_AMZ_TARGET": target}
    thread = threading.Thread(target=lambda: app(environ, None))
    thread.start()
    return thread


def test_a_dynamodb_request_waits_for_the_one_being_answered() -> None:
    # Given a DynamoDB request being answered
    held = HoldingApp()
    app = AtomicDynamoDB(held)
    first = request(app, "first", "DynamoDB_20120810.PutItem")
    assert held.wait_inside("first")
    # When a second DynamoDB request arrives
    second = request(app, "second", "DynamoDB_20120810.PutItem")
    # Then it is not answered until the first one is done
    assert not held.wait_inside("second")
    held.release.set()
    for thread in (first, second):
        thread.join(timeout=5)
    assert held.inside == ["first", "second"]


def test_other_services_are_answered_while_a_dynamodb_request_is() -> None:
    # Given a DynamoDB request being answered
    held = HoldingApp()
    app = AtomicDynamoDB(held)
    first = request(app, "dynamodb", "DynamoDB_20120810.PutItem")
    assert held.wait_inside("dynamodb")
    # When an SQS request (a long poll, say) arrives
    second = request(app, "sqs", "AmazonSQS.ReceiveMessage")
    # Then it is answered at the same time
    assert held.wait_inside("sqs")
    held.release.set()
    for thread in (first, second):
        thread.join(timeout=5)
