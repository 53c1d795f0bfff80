"""AwsDependencies: the ports wired to AWS (or moto) and to the providers over HTTP.

Handlers keep one per execution environment (:func:`lazy_dependencies`, built at the first
event, never at import); every client is built on first use, so a function pays only for the
clients its route touches. The same goes for imports: every adapter (the DynamoDB stores, the
queues, the bus, the provider clients with httpx, the URL fetcher, the provider directory, the
inbox's pieces) is imported by the property that builds it, so a function imports only the
adapters its events use (a route that never calls a provider does not import httpx; the poll
function never imports the batch store). Tests use ``tests/fakes`` instead, or this against moto.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import botocore.session

from image_gateway.adapters.boto import (
    LazyClient,
    PerEnvironment,
    SecretCache,
    client_config,
    new_session,
)
from image_gateway.config import Settings
from image_gateway.errors import GatewayError
from image_gateway.timing import DEFAULT_TIMING, TimingPolicy

if TYPE_CHECKING:  # imported where they are built (see the module docstring)
    from image_gateway.adapters.aws_webhooks import AwsWebhooks
    from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore
    from image_gateway.adapters.dynamodb_batches import DynamoDBBatchStore
    from image_gateway.adapters.dynamodb_circuits import AwsHealth
    from image_gateway.adapters.dynamodb_idempotency import DynamoDBIdempotencyStore
    from image_gateway.adapters.dynamodb_limits import DynamoDBUsageLedger
    from image_gateway.adapters.dynamodb_slots import DynamoDBProviderSlots
    from image_gateway.adapters.dynamodb_tasks import DynamoDBTaskStore
    from image_gateway.adapters.emf_metrics import EmfMetrics
    from image_gateway.adapters.eventbridge import EventBridgeBatchEvents, EventBridgePublisher
    from image_gateway.adapters.http_providers import HttpProviderClients
    from image_gateway.adapters.s3_images import S3ImageStore
    from image_gateway.adapters.s3_inbox import S3InboxObjects, S3ManifestFiles
    from image_gateway.adapters.sqs_batches import SqsBatchQueue
    from image_gateway.adapters.sqs_dispatch import SqsDispatchQueue
    from image_gateway.adapters.stepfunctions_poll import StepFunctionsPollLoops
    from image_gateway.auth import WebhookSigner
    from image_gateway.fetch import SafeFetcher
    from image_gateway.inbox.rules import RulesSource
    from image_gateway.inbox.settings import InboxSettings
    from image_gateway.providers.directory import ProviderDirectory


@dataclass(frozen=True)
class AwsBatches:
    """The batch ports on AWS (satisfies ``batches.events.BatchPorts``)."""

    store: DynamoDBBatchStore
    queue: SqsBatchQueue
    events: EventBridgeBatchEvents
    files: S3ManifestFiles


class AwsDependencies:
    """The gateway's ports on AWS (satisfies ``ports.Dependencies``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        session: botocore.session.Session | None = None,
        timing: TimingPolicy = DEFAULT_TIMING,
    ) -> None:
        self._settings = settings
        self._timing = timing
        self._session = session or new_session()

    @property
    def settings(self) -> Settings:
        """The function's validated environment."""
        return self._settings

    @property
    def timing(self) -> TimingPolicy:
        """Every wait, retry and deadline."""
        return self._timing

    def client(self, service: str) -> Any:
        """A botocore client of ``service`` with the policy's retries and timeouts (botocore,
        not boto3: see :mod:`image_gateway.adapters.boto`)."""
        return self._session.create_client(service, config=client_config(service, self._timing))

    @cached_property
    def dynamodb(self) -> Any:
        """DynamoDB client."""
        return self.client("dynamodb")

    @cached_property
    def s3(self) -> Any:
        """S3 client, built at its first call (see :class:`LazyClient`)."""
        return LazyClient(lambda: self.client("s3"))

    @cached_property
    def ssm(self) -> Any:
        """SSM client (the providers and inbox rules parameters)."""
        return self.client("ssm")

    @cached_property
    def tasks(self) -> DynamoDBTaskStore:
        """The task table."""
        from image_gateway.adapters.dynamodb_tasks import DynamoDBTaskStore

        return DynamoDBTaskStore(
            self.dynamodb, self.settings.table_name, write_attempts=self.timing.task_write_attempts
        )

    @cached_property
    def api_keys(self) -> DynamoDBApiKeyStore:
        """Hashed caller API keys."""
        from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore

        return DynamoDBApiKeyStore(self.dynamodb, self.settings.table_name)

    @cached_property
    def idempotency(self) -> DynamoDBIdempotencyStore:
        """Idempotency-Key records."""
        from image_gateway.adapters.dynamodb_idempotency import DynamoDBIdempotencyStore

        return DynamoDBIdempotencyStore(self.dynamodb, self.settings.table_name)

    @cached_property
    def usage(self) -> DynamoDBUsageLedger:
        """Per-client limits and counters (in the tasks table)."""
        from image_gateway.adapters.dynamodb_limits import DynamoDBUsageLedger

        return DynamoDBUsageLedger(
            self.dynamodb,
            self.settings.table_name,
            write_attempts=self.timing.ledger_write_attempts,
        )

    @cached_property
    def images(self) -> S3ImageStore:
        """The output/input bucket."""
        from image_gateway.adapters.s3_images import S3ImageStore

        return S3ImageStore(
            self.s3, self.settings.bucket_name, max_bytes=self.settings.max_image_bytes
        )

    @cached_property
    def events(self) -> EventBridgePublisher:
        """The custom event bus."""
        from image_gateway.adapters.eventbridge import EventBridgePublisher

        return EventBridgePublisher(
            self.client("events"), self.settings.event_bus_name, self.settings.event_source
        )

    @cached_property
    def dispatch_queue(self) -> SqsDispatchQueue:
        """The dispatch queue of sync provider calls."""
        from image_gateway.adapters.sqs_dispatch import SqsDispatchQueue

        return SqsDispatchQueue(self.client("sqs"), self.settings.dispatch_queue_url)

    @cached_property
    def slots(self) -> DynamoDBProviderSlots:
        """Per-provider concurrency leases (in the tasks table)."""
        from image_gateway.adapters.dynamodb_slots import DynamoDBProviderSlots

        return DynamoDBProviderSlots(self.dynamodb, self.settings.table_name)

    @cached_property
    def batches(self) -> AwsBatches:
        """Batches (in the tasks table), the batch function's queue, and the files written next
        to an inbox manifest."""
        from image_gateway.adapters.dynamodb_batches import DynamoDBBatchStore
        from image_gateway.adapters.eventbridge import EventBridgeBatchEvents
        from image_gateway.adapters.s3_inbox import S3ManifestFiles
        from image_gateway.adapters.sqs_batches import SqsBatchQueue

        return AwsBatches(
            DynamoDBBatchStore(self.dynamodb, self.settings.table_name),
            SqsBatchQueue(self.client("sqs"), self.settings.batch_queue_url),
            EventBridgeBatchEvents(
                self.client("events"), self.settings.event_bus_name, self.settings.event_source
            ),
            S3ManifestFiles(self.s3),
        )

    @cached_property
    def health(self) -> AwsHealth:
        """Every provider's circuit breaker (in the tasks table) and its events."""
        from image_gateway.adapters.dynamodb_circuits import AwsHealth
        from image_gateway.adapters.eventbridge import EventBridgeCircuitEvents

        return AwsHealth(
            self.dynamodb,
            self.settings.table_name,
            lambda: EventBridgeCircuitEvents(
                self.client("events"), self.settings.event_bus_name, self.settings.event_source
            ),
        )

    @cached_property
    def poll_loops(self) -> StepFunctionsPollLoops:
        """The poll state machine."""
        from image_gateway.adapters.stepfunctions_poll import StepFunctionsPollLoops

        return StepFunctionsPollLoops(self.client("stepfunctions"), self.settings.state_machine_arn)

    @cached_property
    def directory(self) -> ProviderDirectory:
        """Provider order, enabled set, options and prices (SSM parameters, cached)."""
        from image_gateway.providers.directory import ProviderDirectory

        name = self.settings.providers_parameter
        if name is None:
            return ProviderDirectory(self.settings, None)
        from image_gateway.providers.settings import loader

        def get_both(defaults: str, operator: str) -> tuple[str, str | None]:
            # One GetParameters for both: one round trip at each cold start and cache refresh,
            # not two. A name that does not exist comes back in InvalidParameters, not an error.
            found = self.ssm.get_parameters(Names=[defaults, operator])["Parameters"]
            values = {parameter["Name"]: str(parameter["Value"]) for parameter in found}
            if defaults not in values:
                raise GatewayError(
                    f"the providers parameter {defaults} does not exist (the stack's "
                    "ProvidersParameter: deploy the stack again)",
                    code="providers_config_invalid",
                )
            return values[defaults], values.get(operator)  # None: the operator set nothing yet

        return ProviderDirectory(
            self.settings,
            loader(get_both, name),  # the operator's settings over the stack's defaults
            ttl_seconds=self.settings.scaled(self.timing.providers_cache_seconds),
        )

    @cached_property
    def secrets(self) -> SecretCache:
        """Secrets Manager, cached."""
        return SecretCache(
            self.client("secretsmanager"), ttl_seconds=self.timing.secrets_cache_seconds
        )

    @cached_property
    def providers(self) -> HttpProviderClients:
        """A configured HTTP client per provider (one pooled httpx client for all)."""
        import httpx

        from image_gateway.adapters.http_providers import HttpProviderClients
        from image_gateway.fetch import tls_context

        return HttpProviderClients(
            self.settings,
            self.directory,
            lambda: self.secrets.get(self.settings.provider_keys_secret_arn),
            httpx.Client(follow_redirects=False, verify=tls_context()),
        )

    @cached_property
    def fetcher(self) -> SafeFetcher:
        """SSRF-safe downloader for provider result URLs and client input URLs."""
        from image_gateway.fetch import SafeFetcher

        return SafeFetcher(
            self.settings.fetch_allow_private_hosts, max_bytes=self.settings.max_image_bytes
        )

    @cached_property
    def metrics(self) -> EmfMetrics:
        """Operator metrics as EMF lines (the template's POWERTOOLS_METRICS_NAMESPACE), none
        when POWERTOOLS_METRICS_DISABLED is true."""
        from image_gateway.adapters.emf_metrics import EmfMetrics

        return EmfMetrics.from_environment()

    @cached_property
    def signer(self) -> WebhookSigner:
        """Per-task webhook tokens."""
        from image_gateway.auth import WebhookSigner

        return WebhookSigner(self.secrets.get(self.settings.webhook_secret_arn).encode())

    @cached_property
    def webhooks(self) -> AwsWebhooks:
        """Signed webhooks to callers: KMS-encrypted secrets, the SQS queues, SSRF-safe POSTs."""
        from image_gateway.adapters.aws_webhooks import AwsWebhooks

        return AwsWebhooks(self.settings, self.timing, self.dynamodb, self.client)


def lazy_dependencies() -> PerEnvironment[AwsDependencies]:
    """One ``AwsDependencies`` per execution environment, built at the first event."""
    return PerEnvironment(lambda: AwsDependencies(Settings.from_env()))


class AwsInboxDependencies:
    """The inbox function's ports on AWS (satisfies ``inbox.ports.InboxDependencies``)."""

    def __init__(self, core: AwsDependencies, settings: InboxSettings) -> None:
        self._core = core
        self._settings = settings

    @property
    def core(self) -> AwsDependencies:
        """The gateway's ports."""
        return self._core

    @property
    def settings(self) -> InboxSettings:
        """The inbox function's extra environment."""
        return self._settings

    @cached_property
    def objects(self) -> S3InboxObjects:
        """The inbox bucket."""
        from image_gateway.adapters.s3_inbox import S3InboxObjects

        return S3InboxObjects(self.core.s3, self.settings.bucket_name)

    @cached_property
    def rules(self) -> RulesSource:
        """The rules document, cached."""
        from image_gateway.inbox.rules import RulesSource

        name = self.settings.rules_parameter
        ssm = self.core.ssm
        return RulesSource(
            lambda: str(ssm.get_parameter(Name=name)["Parameter"]["Value"]),
            ttl_seconds=self.core.settings.scaled(self.core.timing.inbox_rules_cache_seconds),
        )

    @cached_property
    def staging(self) -> S3ImageStore:
        """The images bucket, refusing inputs over the inbox's byte limit."""
        from image_gateway.adapters.s3_images import S3ImageStore

        return S3ImageStore(
            self.core.s3, self.core.settings.bucket_name, max_bytes=self.settings.max_image_bytes
        )


def lazy_inbox_dependencies() -> PerEnvironment[AwsInboxDependencies]:
    """One ``AwsInboxDependencies`` per execution environment, built at the first event."""

    def build() -> AwsInboxDependencies:
        from image_gateway.inbox.settings import InboxSettings

        return AwsInboxDependencies(AwsDependencies(Settings.from_env()), InboxSettings.from_env())

    return PerEnvironment(build)
