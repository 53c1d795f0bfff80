"""The capacity table: every hop's ceiling, per client and per stack, read from template.yaml
and the timing policy, against the AWS quota that caps it (docs/capacity.md).

``python -m bench.capacity`` writes docs/capacity.md; ``python -m bench.capacity --check``
exits 1 when the file is not what the template and the policy give now (the test
``tests/unit/bench/test_capacity_table.py`` does the same). Ceilings are on paper: a
function's rate is its concurrency over the seconds one invocation takes (the assumed times
below, stated in the table), a partition's is its write units over the units a task writes.
A separate module from the measured figures of ``bench`` (``make bench``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from image_gateway.adapters.dynamodb_due import OPEN_SHARDS
from image_gateway.adapters.dynamodb_tasks import BY_CLIENT_INDEX
from image_gateway.timing import DEFAULT_TIMING

from devstack.template import ROOT, load_template, table_indexes

OUTPUT = ROOT / "docs" / "capacity.md"

# The goal (issue 20): one client and the whole stack, with default settings.
CLIENT_SUBMITS = 100.0
CLIENT_OPEN_TASKS = 50_000
STACK_SUBMITS = 1_000.0
STACK_FINALISATIONS = 1_000.0

# Assumed seconds one invocation takes on AWS (the table shows them): what turns concurrency
# into a rate. Submits and callbacks are a few DynamoDB and SQS calls; a finalisation
# downloads, checks and stores a ~2 MB image; a dispatch is one provider create call.
SECONDS = {
    "ApiFunction": 0.15,
    "WebhookFunction": 0.05,
    "FinalizeFunction": 2.0,
    "PollFunction": 0.3,
    "DispatchFunction": 0.5,
    "OpenAiCompatFunction": 45.0,
    "WebhookDeliveryFunction": 0.3,
    "UploadEditFunction": 2.0,
    "ConsoleFunction": 0.05,
    "BatchFunction": 2.5,  # a chunk of 50 lines: 50 submits of ~0.05 s
    "ThumbnailFunction": 0.15,  # one preview: the output read back, resized, two task calls
}
BATCH_CHUNK_LINES = 50  # service.batches.CHUNK_LINES
BATCH_WRU_PER_TASK = 8  # a batch item's start and end transactions (2 x 2 units) and markers
SWEEP_TASK_SECONDS = 0.05  # one due task: a read, a provider status call or an expiry
# DynamoDB write units a task spends on one item or index partition (transactional = x2).
COUNTS_WRU_PER_TASK = 6  # the per-client COUNTS item: admit, start and settle, transactional
TASK_WRITES = 8  # writes of a task's item over its life (create, admit, submit, run, end, ...)
TASK_ITEM_KB = 2  # a task item's size: each write of it costs 2 WCU (and 2 more in an index
# that projects ALL); a keys-only index entry is under 1 KB
OPEN_INDEX_WRU_PER_TASK = 6  # KEYS_ONLY index: the task (put at create, moves of check_ts,
# delete) and its client hold (put at reservation, delete at settlement; HOLDS# partitions)
PARTITION_WCU = 1_000
LAMBDA_ACCOUNT_CONCURRENCY = 1_000
LAMBDA_UNRESERVED_MINIMUM = 100

URL = {
    "apigw": "https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html",
    "apigw_throttle": "https://docs.aws.amazon.com/apigateway/latest/developerguide/"
    "http-api-throttling.html",
    "lambda": "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html",
    "lambda_scaling": "https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html",
    "lambda_sqs": "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html",
    "sqs": "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/"
    "quotas-messages.html",
    "sqs_fifo": "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/"
    "high-throughput-fifo.html",
    "ddb": "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html",
    "ddb_partition": "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
    "bp-partition-key-design.html",
    "ddb_gsi": "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
    "GSI.ThroughputConsiderations.html",
    "sfn": "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html",
    "events": "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html",
    "s3": "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html",
    "kms": "https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html",
    "secrets": "https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html",
    "ssm": "https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-throughput.html",
}


@dataclass(frozen=True)
class Hop:
    """One row: a hop, the AWS quota over it, the template's setting, the ceilings, the verdict."""

    hop: str
    quota: str
    source: str
    setting: str
    per_client: str
    per_stack: str
    verdict: str


def _n(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:,.1f}"


def _verdict(ceiling: float, goal: float, remedy: str) -> str:
    return "met" if ceiling >= goal else f"**below the goal ({_n(goal)}/s)**: {remedy}"


class Template:
    """template.yaml's resources with the defaults of its parameters resolved."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.resources: dict[str, Any] = document["Resources"]
        self.parameters = {k: v.get("Default") for k, v in document["Parameters"].items()}

    def value(self, value: Any) -> Any:
        """A literal, or the default of the parameter a ``!Ref`` names."""
        if isinstance(value, dict) and "Ref" in value:
            return self.parameters[value["Ref"]]
        return value

    def number(self, name: str) -> float:
        """A parameter's default, as a number."""
        return float(self.parameters[name])

    def properties(self, resource: str) -> dict[str, Any]:
        props: dict[str, Any] = self.resources[resource].get("Properties", {})
        return props

    def of_type(self, kind: str) -> list[str]:
        return [n for n, r in self.resources.items() if r["Type"] == kind]

    def reserved(self, function: str) -> int:
        return int(self.value(self.properties(function)["ReservedConcurrentExecutions"]))

    def reserved_setting(self, function: str) -> str:
        raw = self.properties(function)["ReservedConcurrentExecutions"]
        named = f"`{raw['Ref']}` = " if isinstance(raw, dict) else ""
        return f"reserved concurrency {named}{self.reserved(function)}"


def hops(template: Template) -> list[Hop]:
    """Every row of the table, in the order a task meets them."""
    return [
        *_api_gateway(template),
        *_client_limits(template),
        *_lambda(template),
        *_queues(template),
        *_dynamodb(template),
        *_others(template),
    ]


def _api_gateway(t: Template) -> list[Hop]:
    rate, burst = t.number("ApiRouteRateLimit"), t.number("ApiRouteBurstLimit")
    routes = t.number("ApiRouteRateLimit")
    account = 10_000.0
    setting = f"`ApiRouteRateLimit` = {_n(rate)}/s, `ApiRouteBurstLimit` = {_n(burst)} per route"
    remedy = "raise `ApiRouteRateLimit`"
    return [
        Hop(
            "API Gateway HTTP API, the account (every API of the region)",
            "10,000 requests/s, burst 5,000; raisable (Service Quotas, API Gateway, "
            "'Throttle rate')",
            URL["apigw"],
            "none (shared)",
            _n(account),
            _n(account),
            _verdict(account, STACK_SUBMITS + STACK_FINALISATIONS, "request a throttle increase"),
        ),
        Hop(
            "API Gateway route `POST /v1/images` (submits)",
            "a route's throttle caps it below the account's",
            URL["apigw_throttle"],
            setting,
            _n(rate) + " (no per-client throttle at API Gateway)",
            _n(routes),
            _verdict(rate, STACK_SUBMITS, remedy),
        ),
        Hop(
            "API Gateway route `POST /webhooks/...` (provider callbacks)",
            "as above",
            URL["apigw_throttle"],
            setting,
            "-",
            _n(rate),
            _verdict(rate, STACK_FINALISATIONS, remedy),
        ),
        Hop(
            "API Gateway route `GET /v1/tasks?ids=` (waiting on many tasks)",
            "as above",
            URL["apigw_throttle"],
            setting + "; 100 tasks a call",
            _n(rate * 100) + " task reads/s",
            _n(rate * 100) + " task reads/s",
            "met (50,000 waiting tasks read every 5 s are 100 calls/s)",
        ),
    ]


def _client_limits(t: Template) -> list[Hop]:
    per_minute = t.number("ClientRequestsPerMinute")
    open_tasks = t.number("ClientMaxRunningTasks") + t.number("ClientMaxQueuedTasks")
    return [
        Hop(
            "the gateway's per-client submit rate",
            "none (the gateway's own limit)",
            "docs/limits.md",
            f"`ClientRequestsPerMinute` = {_n(per_minute)}",
            _n(per_minute / 60),
            "-",
            _verdict(per_minute / 60, CLIENT_SUBMITS, "raise `ClientRequestsPerMinute`"),
        ),
        Hop(
            "the gateway's per-client open tasks (running + queued)",
            "none (the gateway's own limit)",
            "docs/limits.md",
            f"`ClientMaxRunningTasks` + `ClientMaxQueuedTasks` = {_n(open_tasks)}",
            _n(open_tasks) + " tasks",
            "-",
            "met" if open_tasks >= CLIENT_OPEN_TASKS else "**below 50,000 tasks**",
        ),
    ]


def _lambda(t: Template) -> list[Hop]:
    functions = t.of_type("AWS::Serverless::Function")
    reserved = sum(t.reserved(f) for f in functions)
    left = LAMBDA_ACCOUNT_CONCURRENCY - reserved
    rows = [
        Hop(
            "Lambda, the account's concurrent executions",
            f"{LAMBDA_ACCOUNT_CONCURRENCY:,} by default; raisable (Service Quotas, Lambda, "
            "'Concurrent executions', L-B99A9384); 1,000 new environments per function "
            "every 10 s",
            URL["lambda"],
            f"reserved in all: {reserved:,}",
            "-",
            f"{left:,} left unreserved",
            "deploys on a default account"
            if left >= LAMBDA_UNRESERVED_MINIMUM
            else "**does not deploy**: 100 must stay unreserved",
        ),
    ]
    dispatch_mc = t.number("DispatchMaxConcurrency")
    for function in functions:
        if function == "SweeperFunction":  # its own row below
            continue
        seconds = SECONDS[function]
        concurrency = float(t.reserved(function))
        setting = t.reserved_setting(function)
        if function == "DispatchFunction":
            concurrency = min(concurrency, dispatch_mc)
            setting += f"; queue source `DispatchMaxConcurrency` = {_n(dispatch_mc)}"
        rate = concurrency / seconds
        verdict = {
            "ApiFunction": _verdict(rate, STACK_SUBMITS, "raise `ApiReservedConcurrency`"),
            "WebhookFunction": _verdict(
                rate, STACK_FINALISATIONS, "raise `FinalisationReservedConcurrency`"
            ),
            "FinalizeFunction": _verdict(
                rate,
                STACK_FINALISATIONS,
                f"{_n(STACK_FINALISATIONS * seconds)} instances: request Lambda concurrent "
                f"executions of {_n(STACK_FINALISATIONS * seconds * 1.5)} (Service Quotas, "
                "L-B99A9384), then set `FinalisationReservedConcurrency` to "
                f"{_n(STACK_FINALISATIONS * seconds)}",
            ),
            "ThumbnailFunction": f"{_n(rate)} previews/s; over it, succeeded tasks wait in "
            "`ThumbnailQueue` for theirs (no event, webhook or answer waits for one)",
            "BatchFunction": f"{_n(rate * BATCH_CHUNK_LINES)} batch lines/s made into tasks "
            "(chunks of 50, in parallel); over it, lines wait in `BatchQueue`",
            "DispatchFunction": _verdict(
                rate,
                STACK_SUBMITS,
                f"{_n(STACK_SUBMITS * seconds)} calls in flight: request Lambda concurrent "
                "executions, then raise `DispatchMaxConcurrency` (up to 1,000) and "
                "`DispatchReservedConcurrency` above it; providers' own slots still apply",
            ),
        }.get(function, "not on the goal's path")
        rows.append(
            Hop(
                f"Lambda `{function}`",
                "reserved concurrency caps one function",
                URL["lambda_scaling"],
                setting,
                "-",
                f"{_n(rate)}/s at {seconds:g} s each",
                verdict,
            )
        )
    pages = DEFAULT_TIMING.sweep_run_seconds / 60 / SWEEP_TASK_SECONDS
    rows.append(
        Hop(
            "the sweeper (recovery of tasks whose callback never came)",
            "one run a minute, its function's timeout",
            URL["lambda"],
            f"{t.reserved_setting('SweeperFunction')}; `sweep_due_per_shard` = "
            f"{DEFAULT_TIMING.sweep_due_per_shard} x {OPEN_SHARDS} "
            f"shards a page, pages while full for `sweep_run_seconds` = "
            f"{DEFAULT_TIMING.sweep_run_seconds:g} s",
            "-",
            f"{_n(pages)} tasks/s at {SWEEP_TASK_SECONDS:g} s each (was 6.7)",
            "recovery path, not the goal's: callbacks and poll loops finish tasks",
        )
    )
    return rows


def _queues(t: Template) -> list[Hop]:
    rows = []
    for queue in t.of_type("AWS::SQS::Queue"):
        props = t.properties(queue)
        fifo = bool(props.get("FifoQueue"))
        high = props.get("FifoThroughputLimit") == "perMessageGroupId"
        if fifo and high:
            quota, source = "high-throughput FIFO: thousands/s per API action by region", "sqs_fifo"
            setting = "FIFO, throughput per message group (= per task)"
        elif fifo:
            quota, source, setting = "FIFO: 300 API calls/s per action", "sqs", "FIFO"
        else:
            quota, source, setting = "standard: nearly unlimited API calls/s", "sqs", "standard"
        verdict = "met" if (not fifo or high) else "**300/s**: enable high-throughput FIFO"
        if queue.endswith("DeadLetterQueue"):
            verdict = "dead letters only (not on the goal's path)"
        rows.append(Hop(f"SQS `{queue}`", quota, URL[source], setting, "-", "-", verdict))
    return rows


def _dynamodb(t: Template) -> list[Hop]:
    table = t.properties("TasksTable")
    indexes = {g["IndexName"]: g for g in table_indexes(t.document)}
    by_client = indexes[BY_CLIENT_INDEX]["Projection"]["ProjectionType"]
    # ALL copies each of the task's writes; keys only: the entry is written when the task is
    # made (its keys never change), under 1 KB
    by_client_wru = TASK_WRITES * TASK_ITEM_KB if by_client == "ALL" else 1
    by_client_cost = (
        f"each of ~{TASK_WRITES} writes of a task copies its ~{TASK_ITEM_KB} KB item"
        if by_client == "ALL"
        else "1 write unit a task (its entry, made with the task; status writes do not touch it)"
    )
    table_rate = 40_000 / (TASK_WRITES * TASK_ITEM_KB + by_client_wru)
    counts = PARTITION_WCU / COUNTS_WRU_PER_TASK
    listing = PARTITION_WCU / by_client_wru
    open_rate = OPEN_SHARDS * PARTITION_WCU / OPEN_INDEX_WRU_PER_TASK
    return [
        Hop(
            "DynamoDB `TasksTable` (on-demand), the table",
            "40,000 read and 40,000 write units/s per on-demand table by default; raisable "
            "(Service Quotas, DynamoDB, 'Table-level write throughput')",
            URL["ddb"],
            f"BillingMode {table['BillingMode']}; tasks keyed by their id (spread)",
            "-",
            f"{_n(table_rate)} tasks/s (table + {BY_CLIENT_INDEX} entry)",
            _verdict(
                table_rate,
                STACK_SUBMITS,
                "request a table-level write throughput increase",
            ),
        ),
        Hop(
            "DynamoDB, a client's COUNTS item (its ledger partition)",
            f"{PARTITION_WCU:,} write units/s per partition; a transactional write costs 2",
            URL["ddb_partition"],
            f"about {COUNTS_WRU_PER_TASK} transactional write units a task",
            f"{_n(counts)} tasks/s",
            "-",
            _verdict(counts, CLIENT_SUBMITS, "split the ledger item"),
        ),
        Hop(
            "DynamoDB, a batch's item (its counters; key BATCH#<id>)",
            f"{PARTITION_WCU:,} write units/s per partition; a transactional write costs 2",
            URL["ddb_partition"],
            f"about {BATCH_WRU_PER_TASK} write units a task (start and end, each a marker + ADD)",
            f"{_n(PARTITION_WCU / BATCH_WRU_PER_TASK)} task changes/s per batch",
            "-",
            "met for one client's goal (100 submits/s); a faster batch is split in several",
        ),
        Hop(
            f"DynamoDB index `{BY_CLIENT_INDEX}` (a client's listing; key CLIENT#<client>)",
            f"{PARTITION_WCU:,} write units/s per index partition (a throttled index "
            "throttles the table's writes)",
            URL["ddb_gsi"],
            f"projection {by_client}: {by_client_cost}",
            f"{_n(listing)} tasks/s (one key; split-for-heat may spread it by sort key)",
            "-",
            _verdict(
                listing,
                CLIENT_SUBMITS,
                "project only the listed fields (INCLUDE) so that status writes cost 1 unit",
            ),
        ),
        Hop(
            "DynamoDB index `OpenByCheckTime` (the sweeper's; keys OPEN#<shard> and HOLDS#<shard>)",
            f"{PARTITION_WCU:,} write units/s per index partition",
            URL["ddb_gsi"],
            f"{OPEN_SHARDS} shards (`OPEN_SHARDS`, was 4), KEYS_ONLY, "
            f"~{OPEN_INDEX_WRU_PER_TASK} units a task",
            "-",
            f"{_n(open_rate)} tasks/s",
            _verdict(open_rate, STACK_SUBMITS, "more shards"),
        ),
    ]


def _others(t: Template) -> list[Hop]:
    machine = t.properties("PollStateMachine").get("Type", "STANDARD")
    return [
        Hop(
            "Step Functions `PollStateMachine` (providers without callbacks only)",
            "Standard: StartExecution a token bucket of 1,300 refilled 300/s, state "
            "transitions 5,000 refilled 5,000/s in the largest regions (less elsewhere); "
            "raisable (Service Quotas, Step Functions)",
            URL["sfn"],
            f"{machine}; about 7 transitions a task (first wait near the expected latency)",
            "-",
            "300 tasks/s started on the poll path",
            "**below the goal for poll-path tasks**: request StartExecution and "
            "StateTransition increases; callback providers do not use it",
        ),
        Hop(
            "EventBridge `EventBus` (PutEvents)",
            "PutEvents 10,000 requests/s in the largest regions (fewer elsewhere); raisable",
            URL["events"],
            "2 events a task (submitted, terminal)",
            "-",
            "5,000 tasks/s (largest regions)",
            "met in the largest regions; elsewhere request a PutEvents increase",
        ),
        Hop(
            "S3 `ImagesBucket` (outputs, inputs)",
            "3,500 PUT and 5,500 GET requests/s per prefix, scaling with prefixes",
            URL["s3"],
            "a prefix per task: outputs/{client}/{yyyy}/{mm}/{dd}/{task}/",
            "-",
            "unbounded on paper (a prefix per task)",
            "met",
        ),
        Hop(
            "KMS `WebhookKey` (webhook signing secrets)",
            "symmetric cryptographic requests 5,500-100,000/s by region, shared by the "
            "account; raisable",
            URL["kms"],
            "at most one Decrypt per webhook delivery (secrets cached per environment)",
            "-",
            "5,500 deliveries/s at the smallest quota",
            "met",
        ),
        Hop(
            "Secrets Manager (`ProviderKeysSecret`, `WebhookSecret`)",
            "GetSecretValue 10,000 requests/s",
            URL["secrets"],
            "read once per execution environment, cached",
            "-",
            "one read per new environment",
            "met",
        ),
        Hop(
            "SSM Parameter Store (`ProvidersParameter` and its `/operator`, `InboxRulesParameter`)",
            "GetParameter, GetParameters and GetParametersByPath share 40 transactions/s per "
            "account and region (standard throughput); higher throughput is a paid setting",
            URL["ssm"],
            "both providers parameters in one GetParameters per execution environment, at its "
            f"first event and every {DEFAULT_TIMING.providers_cache_seconds:g} s after (the "
            f"inbox rules: one GetParameter, every {DEFAULT_TIMING.inbox_rules_cache_seconds:g} s)",
            "-",
            f"{40 * DEFAULT_TIMING.providers_cache_seconds:,.0f} busy execution environments "
            "refreshing; 40 new environments a second",
            "met at the goal once scaled (a few hundred environments refresh a few times a "
            "second); a faster scale-up is throttled and backed off by botocore's retries: for "
            "one, turn on higher throughput",
        ),
    ]


HEADER = """# Capacity: every hop's ceiling

Generated by `python -m bench.capacity` from `template.yaml` (parameter defaults) and
`image_gateway.timing`; `tests/unit/bench/test_capacity_table.py` fails when they change
without this file. Do not edit by hand.

The goal with default settings: one client at least 100 submits/s and 50,000 tasks running
plus queued; the stack at least 1,000 submits/s and 1,000 finalisations/s. Providers' own
limits (each provider's slots, rates) are theirs and configurable (the providers parameter).
A function's rate is its concurrency over the seconds one invocation takes (assumed, as
shown); quotas are AWS's defaults per account and region, from the page cited.

| hop | AWS quota | source | template setting | per client | per stack | goal |
|---|---|---|---|---|---|---|
"""


def render(template: Template | None = None) -> str:
    """The table as docs/capacity.md holds it."""
    rows = hops(template or Template(load_template()))
    lines = [
        f"| {h.hop} | {h.quota} | {h.source} | {h.setting} | {h.per_client} | {h.per_stack} "
        f"| {h.verdict} |"
        for h in rows
    ]
    below = [h.hop for h in rows if "below" in h.verdict or "does not" in h.verdict]
    summary = "\n**On paper with default settings:** " + (
        "every hop meets the goal.\n"
        if not below
        else f"{len(below)} hops sit below the goal; each row names the quota increase "
        "or setting to request (Service Quotas console, or `aws service-quotas "
        "request-service-quota-increase --service-code <code> --quota-code <code> "
        "--desired-value <n>`): " + "; ".join(below) + ".\n"
    )
    return HEADER + "\n".join(lines) + "\n" + summary


def main(argv: list[str] | None = None) -> int:
    """Write docs/capacity.md, or with ``--check`` say whether it is current (exit 1 if not)."""
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run python -m bench.capacity")
            return 1
        return 0
    Path(OUTPUT).parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
