"""Provisioning: every resource of template.yaml created in moto, in reference order.

One creator per resource type the template uses. Creators record what the running stack needs
besides the resources themselves on the ``Provisioning`` they share: HTTP routes, schedules,
SQS event sources, queue URLs, and the functions (registered with the runtime).
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import boto3

from devstack.event_sources import QueueSource, Schedule, rate_seconds
from devstack.iam import create_state_machine_identity, execution_role, policy_documents
from devstack.router import Route
from devstack.runtime import FunctionRuntime, LocalFunction, code_dir_of
from devstack.template import ROOT, Resolver, creation_order

REGION: Final = "us-east-1"
ACCOUNT: Final = "123456789012"
STACK_NAME: Final = "imagegw-dev"
CLIENTS: Final = (
    "dynamodb",
    "s3",
    "events",
    "secretsmanager",
    "iam",
    "kms",
    "lambda",
    "stepfunctions",
    "logs",
    "sqs",
    "ssm",
    "sns",
    "sts",
)


@dataclass
class Provisioning:
    """What every resource creator needs, and what they found for the running stack."""

    resolver: Resolver
    clients: dict[str, Any]
    globals_fn: dict[str, Any]
    role_arn: str
    runtime: FunctionRuntime
    routes: list[Route] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    queue_sources: list[QueueSource] = field(default_factory=list)
    queue_urls: dict[str, str] = field(default_factory=dict)
    """Logical id -> URL of every queue."""
    function_urls: dict[str, str] = field(default_factory=dict)
    """Logical id -> name of every function with a ``FunctionUrlConfig`` (served on a port)."""
    iam: bool = True
    """Each function runs as its own role (``devstack.iam``); off: all share one, unchecked."""
    policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Logical id -> the resolved policy documents of each function's execution role."""


def provision(
    template: dict[str, Any], resolver: Resolver, runtime: FunctionRuntime, *, iam: bool = True
) -> Provisioning:
    """Create every resource of ``template`` that devstack knows how to create, in order
    (with ``iam``, each function's execution role from its ``Policies``)."""
    session = boto3.Session(region_name=REGION)
    clients = {name: session.client(name) for name in CLIENTS}
    role_arn = clients["iam"].create_role(
        RoleName="devstack-lambda",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    provisioning = Provisioning(
        resolver=resolver,
        clients=clients,
        globals_fn=template.get("Globals", {}).get("Function", {}),
        role_arn=role_arn,
        runtime=runtime,
        iam=iam,
    )
    resources: dict[str, Any] = template["Resources"]
    for logical_id in creation_order(template):
        spec = resources[logical_id]
        creator = CREATORS.get(spec["Type"])
        if creator is not None:  # layers, the HTTP API itself: nothing to create locally
            creator(provisioning, logical_id, spec.get("Properties", {}))
    return provisioning


# -- one creator per resource type ------------------------------------------------------------
def _create_table(p: Provisioning, logical_id: str, props: dict[str, Any]) -> None:
    ddb = p.clients["dynamodb"]
    name = f"{STACK_NAME}-{logical_id}"
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=p.resolver.resolve(props.get("GlobalSecondaryIndexes", [])),
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


def _create_kms_key(p: Provisioning, logical_id: str, props: dict[str, Any]) -> None:
    key = p.clients["kms"].create_key(
        Description=str(p.resolver.resolve(props.get("Description", logical_id)))
    )["KeyMetadata"]
    p.resolver.physical_ids[logical_id] = key["KeyId"]  # Ref of a key is its id
    p.resolver.arns[logical_id] = key["Arn"]


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
    role_arn, credentials = p.role_arn, dict[str, str]()
    if p.iam:  # as Lambda does: the role's temporary credentials in the environment
        documents = p.resolver.resolve(policy_documents(props.get("Policies", [])))
        role_arn, credentials = execution_role(p.clients, name, documents)
        p.policies[logical_id] = documents
    function = LocalFunction(
        logical_id=logical_id,
        name=name,
        code_dir=code_dir_of(merged["CodeUri"]),
        handler=merged["Handler"],
        environment=environment,
        timeout=int(merged.get("Timeout", 3)),
        memory_mb=int(merged.get("MemorySize", 128)),
        credentials=credentials,
    )
    p.runtime.register(function)
    arn = p.clients["lambda"].create_function(
        FunctionName=name,
        Runtime=merged["Runtime"],
        Role=role_arn,
        Handler=merged["Handler"],
        Code={"ZipFile": _placeholder_zip()},
        Timeout=function.timeout,
        MemorySize=function.memory_mb,
        Architectures=merged.get("Architectures", ["x86_64"]),
        Environment={"Variables": environment},
    )["FunctionArn"]
    p.resolver.physical_ids[logical_id] = name
    p.resolver.arns[logical_id] = arn
    if "FunctionUrlConfig" in props:
        p.function_urls[logical_id] = name
    for event in props.get("Events", {}).values():
        eprops = event.get("Properties", {})
        if event["Type"] == "HttpApi":
            p.routes.append(Route(eprops["Method"].upper(), eprops["Path"], name))
        elif event["Type"] == "Schedule":
            p.schedules.append(Schedule(name, rate_seconds(eprops["Schedule"])))
        elif event["Type"] == "SQS":
            p.queue_sources.append(_queue_source(p, name, eprops))


def _queue_source(p: Provisioning, function: str, eprops: dict[str, Any]) -> QueueSource:
    queue_arn = str(p.resolver.resolve(eprops["Queue"]))
    queue_logical = next(k for k, v in p.resolver.arns.items() if v == queue_arn)
    queue_url = p.resolver.physical_ids[queue_logical]
    attributes = p.clients["sqs"].get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["VisibilityTimeout", "FifoQueue"]
    )["Attributes"]
    return QueueSource(
        function=function,
        queue_url=queue_url,
        queue_arn=queue_arn,
        batch_size=min(10, int(eprops.get("BatchSize", 10))),
        visibility_timeout=int(attributes["VisibilityTimeout"]),
        fifo=attributes.get("FifoQueue") == "true",
    )


def _create_state_machine(p: Provisioning, logical_id: str, props: dict[str, Any]) -> None:
    definition = (ROOT / props["DefinitionUri"]).read_text()
    for key, value in p.resolver.resolve(props.get("DefinitionSubstitutions", {})).items():
        definition = definition.replace("${" + key + "}", str(value))
    if p.iam:  # moto runs the machine and calls Lambda with one fixed key: give it this role
        documents = p.resolver.resolve(policy_documents(props.get("Policies", [])))
        create_state_machine_identity(p.clients["iam"], ACCOUNT, documents)
        p.policies[logical_id] = documents
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
    for prop in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", *_FIFO_PROPS):
        if prop in resolved:
            value = resolved[prop]
            attributes[prop] = str(value).lower() if isinstance(value, bool) else str(value)
    if "RedrivePolicy" in resolved:
        attributes["RedrivePolicy"] = json.dumps(resolved["RedrivePolicy"])
    # CloudFormation names an unnamed FIFO queue with the ".fifo" suffix SQS requires.
    suffix = ".fifo" if attributes.get("FifoQueue") == "true" else ""
    url = sqs.create_queue(QueueName=f"{STACK_NAME}-{logical_id}{suffix}", Attributes=attributes)[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    p.queue_urls[logical_id] = url
    p.resolver.physical_ids[logical_id] = url  # Ref of a queue is its URL
    p.resolver.arns[logical_id] = arn


_FIFO_PROPS: Final = (
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)


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


def _create_topic(p: Provisioning, logical_id: str, props: dict[str, Any]) -> None:
    arn = p.clients["sns"].create_topic(Name=f"{STACK_NAME}-{logical_id}")["TopicArn"]
    p.resolver.physical_ids[logical_id] = arn  # Ref of a topic is its ARN
    p.resolver.arns[logical_id] = arn


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "devstack runs this function itself (devstack/runtime.py)")
    return buffer.getvalue()


CREATORS: Final[dict[str, Callable[[Provisioning, str, dict[str, Any]], None]]] = {
    "AWS::DynamoDB::Table": _create_table,
    "AWS::S3::Bucket": _create_bucket,
    "AWS::Events::EventBus": _create_bus,
    "AWS::SecretsManager::Secret": _create_secret,
    "AWS::KMS::Key": _create_kms_key,
    "AWS::Logs::LogGroup": _create_log_group,
    "AWS::Serverless::Function": _create_function,
    "AWS::Serverless::StateMachine": _create_state_machine,
    "AWS::SQS::Queue": _create_queue,
    "AWS::SQS::QueuePolicy": _create_queue_policy,
    "AWS::Events::Rule": _create_event_rule,
    "AWS::SSM::Parameter": _create_parameter,
    "AWS::SNS::Topic": _create_topic,
}
"""Resource type -> its creator; types not listed have nothing to create locally."""
