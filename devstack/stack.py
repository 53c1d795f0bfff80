"""DevStack: the whole gateway on 127.0.0.1 with no AWS account and no provider key.

moto (server mode, real AWS wire protocol, ``local_aws``) + the provider simulator + a local HTTP
API (``router``), with every resource created from template.yaml (``provisioning``): tables,
buckets, buses, secrets, functions (run by ``runtime``), the poll state machine (run by moto),
HTTP routes, queue pollers and schedules (``event_sources``). This module is the lifecycle.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import boto3

from devstack.event_sources import EventSources
from devstack.heap import HeapFreezer
from devstack.iam import (
    create_admin,
    patch_moto_resources,
    put_role_policies,
    role_name,
    set_enforcement,
)
from devstack.local_aws import LocalAws
from devstack.process_runtime import LogSink, ProcessRuntime
from devstack.provisioning import ACCOUNT, REGION, STACK_NAME, Provisioning, provision
from devstack.router import LocalFunctionUrl, LocalHttpApi
from devstack.runtime import FunctionRuntime, InlineRuntime, patch_moto_lambda
from devstack.simulator import ProviderSimulator
from devstack.template import ROOT, TEMPLATE_PATH, Resolver, load_template, parameter_defaults
from devstack.waiting import wait_until

__all__ = [
    "SIMULATOR_API_KEY",
    "DevStack",
    "StackConfig",
    "StackInfo",
    "wait_until",
]

SIMULATOR_API_KEY = "sim-key-devstack"
_API_OUTPUTS = frozenset({"ApiUrl", "ConsoleUrl"})
"""Outputs naming the HTTP API's AWS address: locally, ``StackInfo.api_url`` stands in."""


@dataclass
class StackConfig:
    """Knobs of the local stack."""

    time_scale: float = 0.02
    task_deadline_seconds: int = 600
    provider_timeout_seconds: int = 5  # the simulator answers in milliseconds; hangs fail fast
    log_level: str = "WARNING"
    run_schedules: bool = True
    state_file: Path | None = ROOT / ".devstack" / "stack.json"
    """Where clients (imagegw) find the running stack; None: nowhere (``make demo``'s own
    stack, so it can run next to ``make devstack`` without taking or removing its file)."""
    client_id: str = "demo"
    runtime: Literal["process", "inline"] = "process"
    """How handlers run. ``process``: each function in its own worker processes, concurrently,
    as Lambda runs them. ``inline``: in this process, one invocation at a time; for
    measurements that patch this process (``bench`` counts calls by patching botocore)."""
    workers_per_function: int = 4
    """Worker processes one function may have (``process`` runtime); one starts eagerly."""
    metrics: bool = False
    """Whether functions print their metrics (EMF lines) as Lambda would for CloudWatch; off
    by default (``POWERTOOLS_METRICS_DISABLED=true``): a terminal shows the story, not the
    plumbing. The tests of the metrics turn them on."""
    iam: bool = True
    """Each function runs as its own execution role and moto enforces it (``devstack.iam``).
    Off (``--no-iam``) only to debug: every request is then allowed."""
    template_path: Path = TEMPLATE_PATH
    """The template to run (a test may run a changed copy)."""
    log_sink: LogSink | None = None
    """Where the functions' output lines go (``process`` runtime); None: this process's
    stdout and stderr. ``devstack.iam_mutations`` reads the refusals they log."""
    freeze_heap: bool | None = None
    """Freeze this process's surviving objects every 30 s (``devstack.heap``: short collector
    pauses with moto's store in this interpreter). None: with the ``process`` runtime (a
    devstack that runs volume), not ``inline`` (a test process's own objects stay collectable)."""


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
    webhook_secret: str = ""
    """The demo client's ``whsec_`` secret: receivers verify its deliveries with it."""
    openai_base_url: str = ""
    """``base_url`` for the official ``openai`` SDK (template output ``OpenAiBaseUrl``): the
    compat function's URL, served on its own port as a Lambda function URL."""

    @property
    def console_url(self) -> str:
        """The console page (template output ``ConsoleUrl``)."""
        return f"{self.api_url}/console"


class DevStack:
    """Start, provision and stop the embedded default."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.template = load_template(self.config.template_path)
        self.aws = LocalAws(REGION)
        overrides = {
            **self.aws.environment,
            "POWERTOOLS_LOG_LEVEL": self.config.log_level,
            "POWERTOOLS_METRICS_DISABLED": "false" if self.config.metrics else "true",
        }
        self.runtime: FunctionRuntime = (
            InlineRuntime(overrides)
            if self.config.runtime == "inline"
            else ProcessRuntime(
                overrides,
                workers_per_function=self.config.workers_per_function,
                sink=self.config.log_sink,
            )
        )
        self.simulator: ProviderSimulator | None = None
        self.api: LocalHttpApi | None = None
        self.function_urls: dict[str, LocalFunctionUrl] = {}
        self.info: StackInfo | None = None
        self.event_sources: EventSources | None = None
        self.queue_urls: dict[str, str] = {}
        self.policies: dict[str, list[dict[str, Any]]] = {}
        """Logical id -> the policy documents of each function's role (with ``iam``)."""
        freeze = self.config.freeze_heap
        if freeze is None:
            freeze = self.config.runtime == "process"
        self.heap: HeapFreezer | None = HeapFreezer() if freeze else None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> StackInfo:
        """Start every component and create every resource; returns how to reach it."""
        # This process's own clients (tests, the demo, bench) use the local AWS too.
        os.environ.update(
            {**self.aws.environment, "MOTO_PORT": str(self.aws.port)}  # moto's SFN -> Lambda
        )
        os.environ.pop("AWS_PROFILE", None)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
        self.aws.start()
        patch_moto_lambda(self.runtime)
        patch_moto_resources()

        self.simulator = ProviderSimulator(
            host="127.0.0.1", port=0, time_scale=self.config.time_scale, api_key=SIMULATOR_API_KEY
        )
        self.simulator.start()
        self.api = LocalHttpApi(self.runtime, routes=[])
        self.api.start()

        provisioning = provision(self.template, self._resolver(), self.runtime, iam=self.config.iam)
        self.policies = provisioning.policies
        self.api.set_routes(provisioning.routes)
        for logical_id, function in provisioning.function_urls.items():
            url = LocalFunctionUrl(self.runtime, function)
            url.start()
            self.function_urls[logical_id] = url
            # SAM names a function's URL resource <Function>Url; its FunctionUrl ends in "/"
            provisioning.resolver.attributes[f"{logical_id}Url.FunctionUrl"] = url.base_url + "/"
        self.queue_urls = dict(provisioning.queue_urls)
        self.info = self._seed(provisioning)
        if self.config.iam:  # provisioned: from now on every request is checked
            create_admin(provisioning.clients["iam"], ACCOUNT)
            set_enforcement(self.aws.url, on=True)
        self.event_sources = EventSources(
            self.runtime,
            region=REGION,
            time_scale=self.config.time_scale,
            queues=provisioning.queue_sources,
            schedules=provisioning.schedules if self.config.run_schedules else (),
        )
        self.event_sources.start()
        if self.heap is not None:
            self.heap.start()
        self._write_state(self.info)
        return self.info

    def stop(self) -> None:
        """Stop everything this stack started (every worker process included)."""
        self._forget_state()
        if self.event_sources is not None:
            self.event_sources.stop()
        if self.api is not None:
            self.api.stop()
        for url in self.function_urls.values():
            url.stop()
        self.runtime.stop()  # fails in-flight invocations, so pollers return
        if self.event_sources is not None:
            self.event_sources.join()
        if self.simulator is not None:
            self.simulator.stop()
        self.aws.stop()
        if self.heap is not None:
            self.heap.stop()

    def __enter__(self) -> DevStack:
        try:
            self.start()
        except BaseException:
            self.stop()  # what did start (worker processes above all) must not outlive it
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration -----------------------------------------------------------------------
    def parameters(self) -> dict[str, str]:
        """Template parameters: defaults, with endpoints pointed at the local components."""
        assert self.simulator is not None and self.api is not None
        from image_gateway.providers.registry import PROVIDER_NAMES

        values = parameter_defaults(self.template)
        values["ProviderBaseUrls"] = json.dumps(  # every registered provider, on the simulator
            {name: self.simulator.provider_base_url(name) for name in PROVIDER_NAMES}
        )
        values["PublicBaseUrl"] = self.api.base_url
        values["TimeScale"] = str(self.config.time_scale)
        values["TaskDeadlineSeconds"] = str(self.config.task_deadline_seconds)
        values["ProviderTimeoutSeconds"] = str(self.config.provider_timeout_seconds)
        values["FetchAllowPrivateHosts"] = "127.0.0.1"
        return values

    def set_policies(self, logical_id: str, documents: list[dict[str, Any]]) -> None:
        """Replace a function's role policies; moto checks the next request against them."""
        put_role_policies(
            boto3.client("iam", region_name=REGION),
            role_name(self.runtime.get(logical_id).name),
            documents,
        )

    def queue_idle(self, logical_id: str) -> bool:
        """True when the queue has no message waiting or in flight (bounded waits in tests)."""
        url = self.queue_urls[logical_id]
        attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return all(int(value) == 0 for value in attributes.values())

    def _resolver(self) -> Resolver:
        return Resolver(
            parameters=self.parameters(),
            # Locally PUBLIC_BASE_URL (the local API) wins over any URL built from the API's id.
            physical_ids={"HttpApi": "devstack"},
            conditions=self.template.get("Conditions", {}),
            pseudo={
                "AWS::StackName": STACK_NAME,
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT,
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::Partition": "aws",
            },
        )

    def _seed(self, provisioning: Provisioning) -> StackInfo:
        """Provider keys for the simulator, an API key for the client; how to reach it all."""
        from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore
        from image_gateway.adapters.kms_webhook_secrets import KmsWebhookSecrets
        from image_gateway.providers.registry import PROVIDER_TYPES

        assert self.simulator is not None and self.api is not None
        resolver = provisioning.resolver
        provisioning.clients["secretsmanager"].put_secret_value(
            SecretId=resolver.physical_ids["ProviderKeysSecret"],
            SecretString=json.dumps({name: SIMULATOR_API_KEY for name in PROVIDER_TYPES}),
        )
        table = resolver.physical_ids["TasksTable"]
        api_key = DynamoDBApiKeyStore(provisioning.clients["dynamodb"], table).create_key(
            self.config.client_id, name="devstack"
        )
        webhook_secret = KmsWebhookSecrets(
            provisioning.clients["dynamodb"],
            provisioning.clients["kms"],
            table,
            resolver.physical_ids["WebhookKey"],
        ).get(self.config.client_id)
        outputs = {
            name: str(resolver.resolve(out["Value"]))
            for name, out in self.template.get("Outputs", {}).items()
            if name not in _API_OUTPUTS
        }
        return StackInfo(
            webhook_secret=webhook_secret.current,
            openai_base_url=outputs.get("OpenAiBaseUrl", ""),
            api_url=self.api.base_url,
            api_key=api_key,
            client_id=self.config.client_id,
            moto_url=self.aws.url,
            simulator_url=self.simulator.base_url,
            table_name=table,
            bucket_name=resolver.physical_ids["ImagesBucket"],
            event_bus_name=resolver.physical_ids["EventBus"],
            state_machine_arn=resolver.physical_ids["PollStateMachine"],
            outputs=outputs,
        )

    def _write_state(self, info: StackInfo) -> None:
        if self.config.state_file is None:
            return
        self.config.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.config.state_file.write_text(json.dumps(info.__dict__, indent=2))

    def _forget_state(self) -> None:
        """Remove the state file if it still describes this stack (clients such as imagegw
        read it to find a running stack; a stopped one must not be found)."""
        if self.info is None or self.config.state_file is None:
            return
        try:
            state = json.loads(self.config.state_file.read_text())
        except (OSError, ValueError):
            return
        if state.get("api_url") == self.info.api_url:
            self.config.state_file.unlink(missing_ok=True)
