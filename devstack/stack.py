"""DevStack: the whole gateway on 127.0.0.1 with no AWS account and no provider key.

moto (server mode, real AWS wire protocol) + the provider simulator + a local HTTP API, with
every resource created from template.yaml: tables, buckets, buses, secrets, functions (run
in-process), the poll state machine (run by moto), HTTP routes and schedules.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx

from devstack.router import LocalHttpApi, Route
from devstack.runtime import FunctionRuntime, LocalFunction, code_dir_of, patch_moto_lambda
from devstack.simulator import ProviderSimulator
from devstack.template import ROOT, Resolver, load_template, parameter_defaults

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK_NAME = "imagegw-dev"
SIMULATOR_API_KEY = "sim-key-devstack"


@dataclass
class StackConfig:
    """Knobs of the local stack."""

    time_scale: float = 0.02
    task_deadline_seconds: int = 600
    log_level: str = "WARNING"
    run_schedules: bool = True
    state_file: Path = ROOT / ".devstack" / "stack.json"
    client_id: str = "demo"


@dataclass
class StackInfo:
    """What a client of the running stack needs to know."""

    api_url: str
    api_key: str
    client_id: str
    moto_url: str
    simulator_url: str
    table_name: str
    bucket_name: str
    event_bus_name: str
    state_machine_arn: str
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueSource:
    """An SQS event source of a function (Events: Type: SQS)."""

    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    visibility_timeout: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevStack:
    """Start, provision and stop the embedded default."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.runtime = FunctionRuntime(
            overrides={
                "POWERTOOLS_LOG_LEVEL": self.config.log_level,
                "POWERTOOLS_METRICS_DISABLED": "true",
            }
        )
        self.template = load_template()
        self._moto: Any = None
        self.simulator: ProviderSimulator | None = None
        self.api: LocalHttpApi | None = None
        self.info: StackInfo | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._schedules: list[tuple[str, float]] = []
        self._queue_sources: list[QueueSource] = []
        self.queue_urls: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> StackInfo:
        """Start every component and create every resource; returns how to reach it."""
        from moto.server import ThreadedMotoServer

        port = _free_port()
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "devstack",
                "AWS_SECRET_ACCESS_KEY": "devstack",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                "MOTO_PORT": str(port),  # moto's Step Functions calls Lambda through it
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._moto.start()
        moto_url = f"http://127.0.0.1:{port}"
        httpx.post(
            f"{moto_url}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
        ).raise_for_status()
        patch_moto_lambda(self.runtime)

        self.simulator = ProviderSimulator(
            host="127.0.0.1", port=0, time_scale=self.config.time_scale, api_key=SIMULATOR_API_KEY
        )
        self.simulator.start()
        self.api = LocalHttpApi(self.runtime, routes=[])
        self.api.start()

        info = self._provision(moto_url)
        self.info = info
        if self.config.run_schedules:
            self._start_schedules()
        self._start_queue_pollers()
        self._write_state(info)
        return info

    def stop(self) -> None:
        """Stop everything this stack started."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.api is not None:
            self.api.stop()
        if self.simulator is not None:
            self.simulator.stop()
        if self._moto is not None:
            self._moto.stop()

    def __enter__(self) -> DevStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- provisioning ------------------------------------------------------------------------
    def parameters(self) -> dict[str, str]:
        """Template parameters: defaults, with endpoints pointed at the local components."""
        assert self.simulator is not None and self.api is not None
        values = parameter_defaults(self.template)
        from image_gateway.providers.registry import PROVIDER_NAMES

        values["ProviderBaseUrls"] = json.dumps(  # every registered provider, on the simulator
            {name: self.simulator.provider_base_url(name) for name in PROVIDER_NAMES}
        )
        values["PublicBaseUrl"] = self.api.base_url
        values["TimeScale"] = str(self.config.time_scale)
        values["TaskDeadlineSeconds"] = str(self.config.task_deadline_seconds)
        values["FetchAllowPrivateHosts"] = "127.0.0.1"
        return values

    def _provision(self, moto_url: str) -> StackInfo:
        resolver = Resolver(
            parameters=self.parameters(),
            pseudo={
                "AWS::StackName": STACK_NAME,
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT,
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::Partition": "aws",
            },
        )
        resources: dict[str, Any] = self.template["Resources"]
        globals_fn: dict[str, Any] = self.template.get("Globals", {}).get("Function", {})
        session = boto3.Session(region_name=REGION)
        clients = {
            name: session.client(name)
            for name in (
                "dynamodb",
                "s3",
                "events",
                "secretsmanager",
                "iam",
                "lambda",
                "stepfunctions",
                "logs",
                "sqs",
                "ssm",
            )
        }
        role_arn = clients["iam"].create_role(
            RoleName="devstack-lambda",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        provisioning = Provisioning(self, resolver, clients, globals_fn, role_arn)
        for logical_id in _creation_order(resources, globals_fn):
            spec = resources[logical_id]
            kind = spec["Type"]
            props = spec.get("Properties", {})
            creator = _CREATORS.get(kind)
            if creator is None:
                continue
            creator(provisioning, logical_id, props)
        assert self.api is not None
        self.api._routes = provisioning.routes
        ddb = clients["dynamodb"]
        table = resolver.physical_ids["TasksTable"]
        secret_arn = resolver.physical_ids["ProviderKeysSecret"]
        from image_gateway.providers.registry import PROVIDER_TYPES

        clients["secretsmanager"].put_secret_value(
            SecretId=secret_arn,
            SecretString=json.dumps({name: SIMULATOR_API_KEY for name in PROVIDER_TYPES}),
        )
        from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore as ApiKeyStore

        api_key = ApiKeyStore(ddb, table).create_key(self.config.client_id, name="devstack")
        assert self.simulator is not None
        return StackInfo(
            api_url=self.api.base_url,
            api_key=api_key,
            client_id=self.config.client_id,
            moto_url=moto_url,
            simulator_url=self.simulator.base_url,
            table_name=table,
            bucket_name=resolver.physical_ids["ImagesBucket"],
            event_bus_name=resolver.physical_ids["EventBus"],
            state_machine_arn=resolver.physical_ids["PollStateMachine"],
            outputs={
                name: str(resolver.resolve(out["Value"]))
                for name, out in self.template.get("Outputs", {}).items()
                if name != "ApiUrl"
            },
        )

    # -- schedules ---------------------------------------------------------------------------
    def _start_schedules(self) -> None:
        for function, seconds in self._schedules:
            interval = max(0.2, seconds * self.config.time_scale)
            thread = threading.Thread(
                target=self._run_every, args=(function, interval), daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _run_every(self, function: str, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.runtime.invoke(
                    function, {"source": "aws.events", "detail-type": "Scheduled Event"}
                )
            except Exception:
                logging.getLogger("devstack").exception("scheduled %s failed", function)

    # -- SQS event sources ------------------------------------------------------------------
    def _start_queue_pollers(self) -> None:
        for source in self._queue_sources:
            thread = threading.Thread(target=self._poll_queue, args=(source,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _poll_queue(self, source: QueueSource) -> None:
        """What Lambda's SQS event source does: receive a batch, invoke, delete what succeeded.

        Failed records (batchItemFailures, or the whole batch when the function raised) become
        visible again after the queue's visibility timeout under the stack's time scale.
        """
        sqs = boto3.client("sqs", region_name=REGION)
        retry_after = max(1, round(source.visibility_timeout * self.config.time_scale))
        while not self._stop.is_set():
            try:
                batch = sqs.receive_message(
                    QueueUrl=source.queue_url,
                    MaxNumberOfMessages=source.batch_size,
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                ).get("Messages", [])
                if not batch:
                    continue
                failed = self._invoke_with_batch(source, batch)
                for message in batch:
                    if message["MessageId"] in failed:
                        sqs.change_message_visibility(
                            QueueUrl=source.queue_url,
                            ReceiptHandle=message["ReceiptHandle"],
                            VisibilityTimeout=retry_after,
                        )
                    else:
                        sqs.delete_message(
                            QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"]
                        )
            except Exception:
                if self._stop.is_set():
                    return
                logging.getLogger("devstack").exception("polling %s failed", source.queue_url)
                self._stop.wait(0.5)

    def _invoke_with_batch(self, source: QueueSource, batch: list[dict[str, Any]]) -> set[str]:
        """Invoke the function with an SQS event; the ids of the records that failed."""
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": source.queue_arn,
                    "awsRegion": REGION,
                }
                for m in batch
            ]
        }
        try:
            answer = self.runtime.invoke(source.function, event) or {}
        except Exception:
            logging.getLogger("devstack").exception("%s failed a batch", source.function)
            return {m["MessageId"] for m in batch}
        return {str(f["itemIdentifier"]) for f in answer.get("batchItemFailures", [])}

    def queue_idle(self, logical_id: str) -> bool:
        """True when the queue has no message waiting or in flight (bounded waits in tests)."""
        url = self.queue_urls[logical_id]
        attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return all(int(value) == 0 for value in attributes.values())

    def _write_state(self, info: StackInfo) -> None:
        self.config.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.config.state_file.write_text(json.dumps(info.__dict__, indent=2))


# -- resource creators (one per resource type the template uses) --------------------------------
@dataclass
class Provisioning:
    """What every resource creator needs: the stack, the resolver, clients, shared settings."""

    stack: DevStack
    resolver: Resolver
    clients: dict[str, Any]
    globals_fn: dict[str, Any]
    role_arn: str
    routes: list[Route] = field(default_factory=list)


def _create_table(p: Provisioning, logical_id: str, props: dict[str, Any]) -> None:
    ddb = p.clients["dynamodb"]
    name = f"{STACK_NAME}-{logical_id}"
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
        BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
        SSESpecification={"Enabled": bool(props.get("SSESpecification", {}).get("SSEEnabled"))},
    )
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr:
        ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification=pitr)
    p.resolver.physical_ids[logical_id] = name
    p.resolver.arns[logical_id] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def _create_bucket(p: Provisioning, logical_id: str, props: dict[str, Any]) -> None:
    s3 = p.clients["s3"]
    name = f"{STACK_NAME}-{logical_id.lower()}-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=name)
    if "BucketEncryption" in props:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {"ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"]}
                    for r in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                ]
            },
        )
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    rules = p.resolver.resolve(props.get("LifecycleConfiguration", {}).get("Rules", []))
    if rules:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in rules]}
        )
    if (
        props.get("NotificationConfiguration", {})
        .get("EventBridgeConfiguration", {})
        .get("EventBridgeEnabled")
    ):
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
    p.resolver.physical_ids[logical_id] = name
    p.resolver.arns[logical_id] = f"arn:aws:s3:::{name}"


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"]}
    out["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(days)}
    return out


def _create_bus(p: Provisioning, logical_id: str, props: dict[str, Any]) -> None:
    name = str(p.resolver.resolve(props["Name"]))
    arn = p.clients["events"].create_event_bus(Name=name)["EventBusArn"]
    p.resolver.physical_ids[logical_id] = name
    p.resolver.arns[logical_id] = arn


def _create_secret(p: Provisioning, logical_id: str, props: dict[str, Any]) -> None:
    generate = props.get("GenerateSecretString", {})
    value = generate.get("SecretStringTemplate") or secrets.token_urlsafe(
        int(generate.get("PasswordLength", 32))
    )
    arn = p.clients["secretsmanager"].create_secret(
        Name=f"{STACK_NAME}/{logical_id}", SecretString=value
    )["ARN"]
    p.resolver.physical_ids[logical_id] = arn
    p.resolver.arns[logical_id] = arn


def _create_log_group(p: Provisioning, logical_id: str, props: dict[str, Any]) -> None:
    name = str(p.resolver.resolve(props["LogGroupName"]))
    p.clients["logs"].create_log_group(logGroupName=name)
    p.clients["logs"].put_retention_policy(
        logGroupName=name, retentionInDays=int(p.resolver.resolve(props["RetentionInDays"]))
    )
    p.resolver.physical_ids[logical_id] = name


def _create_function(p: Provisioning, logical_id: str, props: dict[str, Any]) -> None:
    merged = {**p.globals_fn, **props}
    env = {
        **p.globals_fn.get("Environment", {}).get("Variables", {}),
        **props.get("Environment", {}).get("Variables", {}),
    }
    environment = {k: str(v) for k, v in p.resolver.resolve(env).items()}
    name = f"{STACK_NAME}-{logical_id}"
    function = LocalFunction(
        logical_id=logical_id,
        name=name,
        code_dir=code_dir_of(merged["CodeUri"]),
        handler=merged["Handler"],
        environment=environment,
        timeout=int(merged.get("Timeout", 3)),
        memory_mb=int(merged.get("MemorySize", 128)),
    )
    p.stack.runtime.register(function)
    arn = p.clients["lambda"].create_function(
        FunctionName=name,
        Runtime=merged["Runtime"],
        Role=p.role_arn,
        Handler=merged["Handler"],
        Code={"ZipFile": _placeholder_zip()},
        Timeout=function.timeout,
        MemorySize=function.memory_mb,
        Architectures=merged.get("Architectures", ["x86_64"]),
        Environment={"Variables": environment},
    )["FunctionArn"]
    p.resolver.physical_ids[logical_id] = name
    p.resolver.arns[logical_id] = arn
    for event in props.get("Events", {}).values():
        eprops = event.get("Properties", {})
        if event["Type"] == "HttpApi":
            p.routes.append(Route(eprops["Method"].upper(), eprops["Path"], name))
        elif event["Type"] == "Schedule":
            p.stack._schedules.append((name, _rate_seconds(eprops["Schedule"])))
        elif event["Type"] == "SQS":
            queue_arn = str(p.resolver.resolve(eprops["Queue"]))
            queue_logical = next(k for k, v in p.resolver.arns.items() if v == queue_arn)
            p.stack._queue_sources.append(
                QueueSource(
                    function=name,
                    queue_url=p.resolver.physical_ids[queue_logical],
                    queue_arn=queue_arn,
                    batch_size=min(10, int(eprops.get("BatchSize", 10))),
                    visibility_timeout=int(
                        p.clients["sqs"].get_queue_attributes(
                            QueueUrl=p.resolver.physical_ids[queue_logical],
                            AttributeNames=["VisibilityTimeout"],
                        )["Attributes"]["VisibilityTimeout"]
                    ),
                )
            )


def _create_state_machine(p: Provisioning, logical_id: str, props: dict[str, Any]) -> None:
    definition = (ROOT / props["DefinitionUri"]).read_text()
    for key, value in p.resolver.resolve(props.get("DefinitionSubstitutions", {})).items():
        definition = definition.replace("${" + key + "}", str(value))
    arn = p.clients["stepfunctions"].create_state_machine(
        name=f"{STACK_NAME}-{logical_id}",
        definition=definition,
        roleArn=p.role_arn,
        type=props.get("Type", "STANDARD"),
    )["stateMachineArn"]
    p.resolver.physical_ids[logical_id] = arn
    p.resolver.arns[logical_id] = arn


def _create_queue(p: Provisioning, logical_id: str, props: dict[str, Any]) -> None:
    sqs = p.clients["sqs"]
    resolved = p.resolver.resolve(props)
    attributes: dict[str, str] = {}
    for prop in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds"):
        if prop in resolved:
            attributes[prop] = str(resolved[prop])
    if "RedrivePolicy" in resolved:
        attributes["RedrivePolicy"] = json.dumps(resolved["RedrivePolicy"])
    url = sqs.create_queue(QueueName=f"{STACK_NAME}-{logical_id}", Attributes=attributes)[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    p.stack.queue_urls[logical_id] = url
    p.resolver.physical_ids[logical_id] = url  # Ref of a queue is its URL
    p.resolver.arns[logical_id] = arn


def _create_queue_policy(p: Provisioning, logical_id: str, props: dict[str, Any]) -> None:
    policy = json.dumps(p.resolver.resolve(props["PolicyDocument"]))
    for url in p.resolver.resolve(props["Queues"]):
        p.clients["sqs"].set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    p.resolver.physical_ids[logical_id] = logical_id


def _create_event_rule(p: Provisioning, logical_id: str, props: dict[str, Any]) -> None:
    events = p.clients["events"]
    name = f"{STACK_NAME}-{logical_id}"
    bus = str(p.resolver.resolve(props.get("EventBusName", "default")))
    arn = events.put_rule(
        Name=name,
        EventBusName=bus,
        EventPattern=json.dumps(p.resolver.resolve(props["EventPattern"])),
        State=props.get("State", "ENABLED"),
    )["RuleArn"]
    targets = [
        {"Id": str(t["Id"]), "Arn": str(t["Arn"])} for t in p.resolver.resolve(props["Targets"])
    ]
    events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
    p.resolver.physical_ids[logical_id] = name
    p.resolver.arns[logical_id] = arn


def _create_parameter(p: Provisioning, logical_id: str, props: dict[str, Any]) -> None:
    name = str(p.resolver.resolve(props["Name"]))
    p.clients["ssm"].put_parameter(
        Name=name, Value=str(p.resolver.resolve(props["Value"])), Type=props.get("Type", "String")
    )
    p.resolver.physical_ids[logical_id] = name  # Ref of a parameter is its name
    p.resolver.arns[logical_id] = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}"


def _rate_seconds(expression: str) -> float:
    amount, unit = expression.removeprefix("rate(").removesuffix(")").split()
    return (
        float(amount)
        * {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}[
            unit
        ]
    )


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "devstack runs this function in-process")
    return buffer.getvalue()


_CREATORS: dict[str, Callable[[Provisioning, str, dict[str, Any]], None]] = {
    "AWS::DynamoDB::Table": _create_table,
    "AWS::S3::Bucket": _create_bucket,
    "AWS::Events::EventBus": _create_bus,
    "AWS::SecretsManager::Secret": _create_secret,
    "AWS::Logs::LogGroup": _create_log_group,
    "AWS::Serverless::Function": _create_function,
    "AWS::Serverless::StateMachine": _create_state_machine,
    "AWS::SQS::Queue": _create_queue,
    "AWS::SQS::QueuePolicy": _create_queue_policy,
    "AWS::Events::Rule": _create_event_rule,
    "AWS::SSM::Parameter": _create_parameter,
}


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref":
                yield str(item)
            elif key == "Fn::GetAtt":
                yield str(item[0] if isinstance(item, list) else str(item).split(".")[0])
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                for name in _sub_names(str(text)):
                    yield name.split(".")[0]
                if isinstance(item, list):
                    yield from _references(item[1])
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _sub_names(text: str) -> list[str]:
    return re.findall(r"\$\{([^}!]+)\}", text)


def _creation_order(resources: dict[str, Any], globals_fn: dict[str, Any]) -> list[str]:
    """Resources ordered so that everything a resource references exists before it."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name not in resources:
            return
        if name in visiting:
            raise ValueError(f"circular reference through {name}")
        visiting.add(name)
        spec = resources[name]
        extra = globals_fn if spec["Type"] == "AWS::Serverless::Function" else {}
        for dep in [*_references(spec.get("Properties", {})), *_references(extra)]:
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in resources:
        visit(name)
    return order


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy (bounded), then return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)
