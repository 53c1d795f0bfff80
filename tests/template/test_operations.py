"""template.yaml, operations: alarms, the dashboard, tracing, logs and reserved concurrency.

The static scan (checkov, ``.checkov.yaml``) runs in ``make template-check``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from image_gateway.providers.registry import PROVIDER_NAMES
from image_gateway.service.lifecycle import TERMINAL_METRICS
from image_gateway.service.sweep_check import OVERDUE_METRIC

from devstack.template import ROOT, load_template

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}
ALARMS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
FINALISATION = {"WebhookFunction", "PollFunction", "SweeperFunction"}


def _props(name: str) -> dict[str, Any]:
    props: dict[str, Any] = RESOURCES[name]["Properties"]
    return props


def _default(value: Any) -> int:
    """A literal, or the default of the parameter it refers to."""
    if isinstance(value, dict):
        return int(PARAMETERS[value["Ref"]]["Default"])
    return int(value)


def _metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The (namespace, name, dimensions) of every metric an alarm reads."""
    props = alarm["Properties"]
    if "MetricName" in props:
        return [props]
    return [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]


def _dashboard() -> dict[str, Any]:
    body = _props("Dashboard")["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}]+)\}", body))
    known = set(RESOURCES) | set(PARAMETERS) | {"AWS::Region"}
    assert {n.split(".")[0] for n in names} <= known, names
    text = re.sub(r"\$\{[^}]+\}", "1", body)  # every substitution is a string or a number
    dashboard: dict[str, Any] = json.loads(text)
    return dashboard


def test_every_alarm_notifies_the_alarm_topic_when_raised_and_cleared() -> None:
    assert ALARMS
    for name, alarm in ALARMS.items():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["OKActions"] == [{"Ref": "AlarmTopic"}], name


def test_the_alarm_email_is_subscribed_only_when_given() -> None:
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert PARAMETERS["AlarmEmail"]["Default"] == ""
    assert TEMPLATE["Conditions"]["HasAlarmEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }


DEAD_LETTER_QUEUES = sorted(
    spec["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    for spec in RESOURCES.values()
    if spec["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in spec["Properties"]
)


@pytest.mark.parametrize("queue", DEAD_LETTER_QUEUES)
def test_one_message_in_a_dead_letter_queue_raises_an_alarm(queue: str) -> None:
    watching = [
        alarm
        for alarm in ALARMS.values()
        if any(
            d["Value"] == {"Fn::GetAtt": [queue, "QueueName"]}
            for metric in _metric_stats(alarm)
            for d in metric.get("Dimensions", [])
        )
    ]
    assert len(watching) == 1, f"{queue}: {len(watching)} alarms"
    props = watching[0]["Properties"]
    assert (props["Threshold"], props["EvaluationPeriods"]) == (1, 1)
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_api_5xx_raise_an_alarm_at_the_parameter_threshold() -> None:
    props = _props("Api5xxAlarm")
    assert (props["Namespace"], props["MetricName"]) == ("AWS/ApiGateway", "5xx")
    assert {"Name": "ApiId", "Value": {"Ref": "HttpApi"}} in props["Dimensions"]
    assert props["Threshold"] == {"Ref": "Api5xxAlarmThreshold"}


def test_the_two_throttles_alarms_add_up_every_function_between_them() -> None:
    # GIVEN the alarm of the functions called directly and the alarm of the workers
    watched: dict[str, list[str]] = {}
    for name in ("ThrottlesAlarm", "WorkerThrottlesAlarm"):
        props = _props(name)
        watched[name] = [
            m["Dimensions"][0]["Value"]["Ref"]
            for m in _metric_stats(ALARMS[name])
            if m["MetricName"] == "Throttles"
        ]
        expression = next(m["Expression"] for m in props["Metrics"] if m.get("ReturnData"))
        assert expression.startswith("SUM(")
        assert props["Threshold"] == {"Ref": "ThrottlesAlarmThreshold"}

    # THEN every function is in exactly one of them
    both = watched["ThrottlesAlarm"] + watched["WorkerThrottlesAlarm"]
    assert sorted(both) == sorted(FUNCTIONS)
    assert set(watched["ThrottlesAlarm"]) == {
        "ApiFunction", "ConsoleFunction", "WebhookFunction", "OpenAiCompatFunction"
    }  # fmt: skip


def test_no_metric_math_alarm_reads_more_metrics_than_cloudwatch_allows() -> None:
    # CloudWatch: "A math expression used for an alarm can include as many as 10 metrics"
    # (a deploy fails on more, as one alarm over the twelve functions' throttles would have)
    for name, alarm in ALARMS.items():
        queries = alarm["Properties"].get("Metrics", [])
        assert sum("MetricStat" in q for q in queries) <= 10, name


def test_an_overdue_open_task_or_a_silent_sweeper_raises_an_alarm() -> None:
    props = _props("OverdueTaskAlarm")
    assert (props["Namespace"], props["MetricName"]) == (
        "ImageTaskGateway",
        "OldestOpenTaskOverdueSeconds",
    )
    assert props["MetricName"] == OVERDUE_METRIC and "Dimensions" not in props
    assert props["TreatMissingData"] == "breaching"
    assert props["Threshold"] == {"Ref": "OverdueTaskAlarmSeconds"}
    namespace = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert namespace["POWERTOOLS_METRICS_NAMESPACE"] == props["Namespace"]


def test_the_dashboard_is_valid_json_and_shows_every_alarm() -> None:
    widgets = _dashboard()["widgets"]
    shown = {arn for w in widgets if w["type"] == "alarm" for arn in w["properties"]["alarms"]}
    body = _props("Dashboard")["DashboardBody"]["Fn::Sub"]
    assert len(shown) == 1  # every ARN substituted as "1": check the names in the text instead
    for name in ALARMS:
        assert "${" + name + ".Arn}" in body, name


def test_functions_and_the_state_machine_are_traced_by_xray() -> None:
    assert TEMPLATE["Globals"]["Function"]["Tracing"] == "Active"
    for name, spec in FUNCTIONS.items():
        assert spec["Properties"].get("Tracing", "Active") == "Active", name
    assert _props("PollStateMachine")["Tracing"] == {"Enabled": True}


def test_no_function_imports_the_tracing_sdk_on_its_cold_start_path() -> None:
    sources = [*ROOT.glob("functions/*/app.py"), *ROOT.glob("layers/common/image_gateway/**/*.py")]
    for source in sources:
        text = source.read_text()
        assert "aws_xray_sdk" not in text and "Tracer" not in text, source


def test_the_state_machine_logs_errors_without_execution_data() -> None:
    logging = _props("PollStateMachine")["Logging"]
    assert logging["Level"] == "ERROR"
    assert logging["IncludeExecutionData"] is False
    group = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]
    assert group == {"Fn::GetAtt": ["PollStateMachineLogs", "Arn"]}
    assert _props("PollStateMachineLogs")["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_http_api_access_log_is_json_with_request_id_and_route_and_no_secrets() -> None:
    settings = _props("HttpApi")["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogs", "Arn"]}
    record = json.loads(settings["Format"])
    assert record["requestId"] == "$context.requestId"
    assert record["routeKey"] == "$context.routeKey"
    values = " ".join(record.values())
    # paths carry webhook tokens; headers carry API keys
    for leak in ("$context.path", "header", "authorizer", "$input"):
        assert leak not in values, leak
    assert _props("HttpApiAccessLogs")["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_both_buckets_write_s3_access_logs_to_the_access_log_bucket() -> None:
    for bucket in ("ImagesBucket", "InboxBucket"):
        logging = _props(bucket)["LoggingConfiguration"]
        assert logging["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}, bucket
    assert _props("AccessLogsBucket")["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_has_reserved_concurrency(name: str) -> None:
    assert _default(FUNCTIONS[name]["Properties"]["ReservedConcurrentExecutions"]) >= 1


def test_the_reservations_keep_finalisation_apart_and_fit_a_default_account() -> None:
    reserved = {
        name: _default(spec["Properties"]["ReservedConcurrentExecutions"])
        for name, spec in FUNCTIONS.items()
    }
    # a Lambda account starts at 1000 and must keep 100 unreserved
    assert sum(reserved.values()) <= 900, reserved
    for name in FINALISATION:
        assert reserved[name] >= 2, name
    # the dispatch queue's source may run DispatchMaxConcurrency at once, the dead-letter source too
    dispatch_limit = int(PARAMETERS["DispatchMaxConcurrency"]["Default"])
    assert reserved["DispatchFunction"] > dispatch_limit


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_every_provider_has_a_failure_rate_alarm_over_its_ended_tasks(provider: str) -> None:
    watching = [
        name
        for name, alarm in ALARMS.items()
        if name != "ProviderSlotWaitsAlarm"  # its own test: every provider's slot waits
        and any(
            d == {"Name": "Provider", "Value": provider}
            for metric in _metric_stats(alarm)
            for d in metric.get("Dimensions", [])
        )
    ]
    assert len(watching) == 1, watching
    props = ALARMS[watching[0]]["Properties"]
    read = {m["MetricName"] for m in _metric_stats(ALARMS[watching[0]])}
    assert read == {"TasksFailed", "TasksExpired", "TasksSucceeded", "TaskErrors"}
    assert read - {"TaskErrors"} <= set(TERMINAL_METRICS.values())
    assert props["Threshold"] == {"Ref": "FailureRateAlarmPercent"}
    rate = next(m for m in props["Metrics"] if m.get("ReturnData"))
    assert "${FailureRateAlarmMinTasks}" in rate["Expression"]["Fn::Sub"]


def test_the_operations_page_names_every_metric_the_services_emit_and_every_alarm() -> None:
    section = (ROOT / "docs/operations.md").read_text().split("# Operations")[1].split("\n## ")[0]
    section += (ROOT / "docs/batches.md").read_text().split("## Operations")[1].split("\n## ")[0]
    sources = [
        *(ROOT / "layers/common/image_gateway").rglob("*.py"),
        *(ROOT / "functions").glob("*/app.py"),
    ]
    emitted = {
        name
        for path in sources
        for name in re.findall(
            r'(?:metrics\.put|add_metric)\(\s*(?:name=)?"(\w+)"', path.read_text()
        )
    }
    emitted |= {*TERMINAL_METRICS.values(), OVERDUE_METRIC}
    assert {
        "Fallbacks",
        "TaskErrors",
        "CostEstimateUsd",
        "ProviderLatencySeconds",
        "GatewayOverheadSeconds",
        "WebhookAttempts",
        "TasksSubmitted",
        "ProviderCircuitChanged",
    } <= emitted
    for name in emitted:
        assert f"`{name}`" in section, name
    for name in ALARMS:
        documented = f"`{name}`" in section or name.endswith("FailureRateAlarm")
        assert documented, name
    assert "`<Provider>FailureRateAlarm`" in section


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_every_providers_slot_waits_count_in_the_slot_waits_alarm(provider: str) -> None:
    read = _metric_stats(ALARMS["ProviderSlotWaitsAlarm"])
    assert {"Name": "Provider", "Value": provider} in [
        d for m in read if m["MetricName"] == "ProviderSlotWaits" for d in m["Dimensions"]
    ]


@pytest.mark.parametrize("queue", ["DispatchQueue", "FinalizeQueue", "InboxQueue"])
def test_each_work_queue_has_an_age_alarm(queue: str) -> None:
    watching = [
        name
        for name, alarm in ALARMS.items()
        if any(
            m["MetricName"] == "ApproximateAgeOfOldestMessage"
            and {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
            in m["Dimensions"]
            for m in _metric_stats(alarm)
        )
    ]
    assert len(watching) == 1, watching
    assert ALARMS[watching[0]]["Properties"]["Threshold"] == {"Ref": "QueueAgeAlarmSeconds"}


@pytest.mark.parametrize("index", [None, "ByClientKeys", "OpenByCheckTime"])
def test_dynamodb_throttles_of_the_table_and_each_index_raise_an_alarm(index: str | None) -> None:
    read = _metric_stats(ALARMS["DynamoDbThrottlesAlarm"])
    for name in ("ReadThrottleEvents", "WriteThrottleEvents"):
        dims = [m["Dimensions"] for m in read if m["MetricName"] == name]
        wanted = [{"Name": "TableName", "Value": {"Ref": "TasksTable"}}]
        if index:
            wanted.append({"Name": "GlobalSecondaryIndexName", "Value": index})
        assert wanted in dims, (name, index)


def test_api_gateway_throttles_are_counted_from_the_access_log_per_route() -> None:
    filters = {
        n: r["Properties"]
        for n, r in TEMPLATE["Resources"].items()
        if r["Type"] == "AWS::Logs::MetricFilter"
        and r["Properties"]["LogGroupName"] == {"Ref": "HttpApiAccessLogs"}
    }
    names = {f["MetricTransformations"][0]["MetricName"]: f for f in filters.values()}
    assert set(names) >= {"ApiThrottledRequests", "ApiThrottledRequestsByRoute"}
    by_route = names["ApiThrottledRequestsByRoute"]["MetricTransformations"][0]
    assert by_route["Dimensions"] == [{"Key": "Route", "Value": "$.routeKey"}]
    log_format = _props("HttpApi")["AccessLogSettings"]["Format"]
    for field in ("status", "integrationLatencyMs", "routeKey"):
        assert f'"{field}"' in log_format  # the filter reads these fields of each line
    assert _props("ApiThrottledAlarm")["MetricName"] == "ApiThrottledRequests"
