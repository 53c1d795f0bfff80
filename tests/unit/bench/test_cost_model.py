"""The benchmark's cost model: counted requests of a known task give a known price."""

from __future__ import annotations

import pytest
from image_gateway.timing import DEFAULT_TIMING

from bench.cost import (
    COMPAT_MEMORY_MB,
    GlobalIndex,
    RequestCounts,
    billed_gb_seconds,
    compat_call_counts,
    index_write_units,
    item_size,
    metered_requests,
    price,
    read_units,
    webhook_attempt_counts,
    write_units,
)
from bench.counting import AwsCall, CallRecorder
from bench.prices import PRICES, PRICES_AS_OF

BY_CLIENT = GlobalIndex("ByClientKeys", ("gsi1pk", "gsi1sk"), "KEYS_ONLY")
ALL_INDEX = GlobalIndex("ByClientBefore", ("gsi1pk", "gsi1sk"), "ALL")  # ByClient until 2026-12
OPEN = GlobalIndex("OpenByCheckTime", ("open_pk", "check_ts"), "KEYS_ONLY")


def test_a_known_callback_task_costs_a_known_price() -> None:
    # Given the requests of one callback-path task
    counts = RequestCounts(
        api_gateway_requests=2,
        lambda_invocations=2,
        lambda_gb_seconds=0.05,
        dynamodb_wru=20,
        dynamodb_rru=6,
        s3_put_class=1,
        eventbridge_events=2,
        secrets_calls=0,
    )
    # When it is priced
    cost = price(counts)
    # Then every item is the list price times the count, and they add up
    expected = (
        2 * 1.00 / 1e6
        + 2 * 0.20 / 1e6
        + 0.05 * 0.0000133334
        + 20 * 0.625 / 1e6
        + 6 * 0.125 / 1e6
        + 1 * 0.005 / 1e3
        + 2 * 1.00 / 1e6
    )
    assert cost.total == pytest.approx(expected)
    assert cost.total == pytest.approx(0.0000233166667, rel=1e-6)
    assert cost.by_service()["DynamoDB"] == pytest.approx(20 * 0.625e-6 + 6 * 0.125e-6)


def test_step_function_transitions_are_priced_per_thousand() -> None:
    cost = price(RequestCounts(sfn_transitions=4))
    assert cost.total == pytest.approx(0.0001)
    assert cost.by_service() == pytest.approx(
        {
            "API Gateway": 0,
            "Lambda": 0,
            "DynamoDB": 0,
            "S3": 0,
            "EventBridge": 0,
            "Step Functions": 0.0001,
            "SQS": 0,
            "Secrets Manager": 0,
            "KMS": 0,
        }
    )


def test_counts_add_and_scale_to_a_per_task_figure() -> None:
    batch = RequestCounts(lambda_invocations=3, s3_get_class=2) + RequestCounts(
        lambda_invocations=1, sqs_requests=4
    )
    per_task = batch.scaled(1 / 2)
    assert (per_task.lambda_invocations, per_task.s3_get_class, per_task.sqs_requests) == (
        2,
        1,
        2,
    )


def test_lambda_duration_is_rounded_up_to_the_millisecond_at_the_configured_memory() -> None:
    assert billed_gb_seconds(99.2, 256) == pytest.approx(0.1 * 0.25)
    assert billed_gb_seconds(1000, 1024) == pytest.approx(1.0)


def test_requests_metered_by_size_count_each_started_increment() -> None:
    assert metered_requests(0, 512 * 1024) == 1
    assert metered_requests(512 * 1024, 512 * 1024) == 1
    assert metered_requests(512 * 1024 + 1, 512 * 1024) == 2


def test_dynamodb_units_follow_item_size_and_consistency() -> None:
    item = {"pk": {"S": "TASK#1"}, "doc": {"S": "x" * 1500}, "version": {"N": "12"}}
    assert item_size(item) == 2 + 6 + 3 + 1500 + 7 + 2
    assert write_units(item_size(item)) == 2
    assert read_units(item_size(item), consistent=True) == 1.0
    assert read_units(9000, consistent=False) == 1.5
    assert read_units(0, consistent=True) == 1.0


def _task(check_ts: str | None, doc: str = "d" * 100) -> dict[str, dict[str, str]]:
    item = {
        "pk": {"S": "TASK#1"},
        "sk": {"S": "TASK"},
        "doc": {"S": doc},
        "gsi1pk": {"S": "CLIENT#a"},
        "gsi1sk": {"S": "2026#1"},
    }
    if check_ts is not None:
        item |= {"open_pk": {"S": "OPEN#1"}, "check_ts": {"N": check_ts}}
    return item


def test_a_new_item_is_written_once_to_each_index_it_belongs_to() -> None:
    assert index_write_units(BY_CLIENT, None, _task("100")) == 1
    assert index_write_units(OPEN, None, _task("100")) == 1
    assert index_write_units(OPEN, None, _task(None)) == 0


def test_a_changed_index_key_costs_a_delete_and_a_put() -> None:
    assert index_write_units(OPEN, _task("100"), _task("200")) == 2


def test_leaving_a_sparse_index_costs_one_delete() -> None:
    assert index_write_units(OPEN, _task("100"), _task(None)) == 1


def test_an_index_without_changed_projection_is_not_written() -> None:
    # A KEYS_ONLY index does not see a change of a non-key attribute
    assert index_write_units(OPEN, _task("100", "a"), _task("100", "b")) == 0
    assert index_write_units(BY_CLIENT, _task("100", "a"), _task("100", "b" * 1500)) == 0
    # An ALL index does, and pays for the whole item
    assert index_write_units(ALL_INDEX, _task("100", "a"), _task("100", "b" * 1500)) == 2


def test_every_price_is_dated_and_cites_an_aws_pricing_page() -> None:
    assert PRICES_AS_OF
    for entry in PRICES.values():
        assert entry.source.startswith("https://aws.amazon.com/")
        assert entry.source.endswith("/pricing/") or "/pricing/" in entry.source
        assert entry.usd > 0 and entry.per > 0


def test_a_delivered_webhook_costs_under_a_hundred_thousandth_of_a_dollar() -> None:
    one = price(webhook_attempt_counts())

    assert 0.000006 < one.total < 0.000009
    # the attempt's write is the task item's only (the listing index holds keys only)
    assert one.by_service()["DynamoDB"] == pytest.approx(0.000002875)
    assert one.by_service()["KMS"] == pytest.approx(0.000003)


def test_a_webhook_that_fails_every_attempt_costs_a_few_ten_thousandths() -> None:
    schedule = DEFAULT_TIMING.webhook_retry_schedule_seconds
    hops = sum(int(wait // 900) for wait in schedule)
    # every attempt (one more than the waits), and the empty hops of the long waits
    total = webhook_attempt_counts(chained_hops=hops) + webhook_attempt_counts().scaled(
        len(schedule)
    )

    assert 0.0001 < price(total).total < 0.0003


# -- the OpenAI-compatible path ------------------------------------------------------------------
def test_a_compat_call_is_billed_for_its_whole_wait_at_the_functions_memory() -> None:
    # GIVEN a compat call that waits 40 s, looks once and answers b64_json
    counts = compat_call_counts(wait_seconds=40.0, answer_ms=150.0, looks=1)

    # THEN one invocation of 40.15 s at 192 MB, one task read, one S3 GET
    assert counts.lambda_invocations == 1
    assert counts.lambda_gb_seconds == pytest.approx(40.15 * 192 / 1024)
    assert (counts.dynamodb_rru, counts.s3_get_class) == (1.0, 1.0)
    assert price(counts).total == pytest.approx(
        0.2e-6 + 40.15 * 0.1875 * 0.0000133334 + 0.125e-6 + 0.0004e-3
    )


def test_a_url_answer_reads_no_image_and_each_look_reads_the_task() -> None:
    counts = compat_call_counts(wait_seconds=10.0, looks=3, inline_image=False)

    assert (counts.dynamodb_rru, counts.s3_get_class) == (3.0, 0.0)


def test_the_cost_model_prices_the_compat_function_at_its_template_memory() -> None:
    from devstack.template import load_template

    function = load_template()["Resources"]["OpenAiCompatFunction"]["Properties"]
    assert function["MemorySize"] == COMPAT_MEMORY_MB


def test_compat_calls_on_every_path_meet_the_target_at_documented_latencies() -> None:
    from bench.costrun import COMPAT_PATHS, COMPAT_TARGET_USD, modelled_compat_path

    # GIVEN task paths costing what make bench measured (README: callback, poll)
    measured = {
        "callback": {"counts_per_task": RequestCounts(
            api_gateway_requests=2, lambda_invocations=3, lambda_gb_seconds=0.06,
            dynamodb_wru=20, dynamodb_rru=8, s3_put_class=1, eventbridge_events=2,
            sqs_requests=3, sqs_fifo_requests=4).as_dict()},
        "poll": {"counts_per_task": RequestCounts(
            api_gateway_requests=1, lambda_invocations=3, lambda_gb_seconds=0.06,
            dynamodb_wru=22, dynamodb_rru=8, s3_put_class=1, eventbridge_events=2,
            sqs_requests=3, sfn_transitions=4).as_dict()},
    }  # fmt: skip

    # WHEN each compat path is modelled
    paths = {name: modelled_compat_path(name, measured) for name in COMPAT_PATHS}

    # THEN each is under the target, and costs more than its task path by the wait
    for name, fig in paths.items():
        assert fig["usd"]["median"] <= COMPAT_TARGET_USD, (name, fig["usd"])
        assert fig["met"] is True
    base = price(RequestCounts(**measured["callback"]["counts_per_task"])).total
    assert paths["callback"]["usd"]["median"] - base == pytest.approx(
        40.15 * 0.1875 * 0.0000133334 + 0.125e-6 + 0.0004e-3 - 1e-6, rel=1e-3
    )  # apimart 1K: 40 s documented; one HTTP API request and one invocation fewer, net
    # one HTTP API request fewer than the task path: the function URL replaces it
    assert paths["poll"]["counts_per_task"]["api_gateway_requests"] == 0


def test_a_batch_read_is_billed_key_by_key() -> None:
    # GIVEN a strongly consistent BatchGetItem of two keys, one found (small), one absent
    recorder = CallRecorder([])
    call = AwsCall(function="ApiFunction", service="dynamodb", operation="BatchGetItem")
    keys = [{"pk": {"S": "LIMITS#c"}, "sk": {"S": s}} for s in ("LIMITS", "COUNTS")]
    params = {"RequestItems": {"t": {"Keys": keys, "ConsistentRead": True}}}
    response = {"Responses": {"t": [{**keys[1], "running": {"N": "3"}}]}}

    recorder._dynamodb_units(call, params, response)

    # THEN each key costs what a GetItem of it would: 1 unit each (the absent one: the minimum)
    assert call.rru == 2.0
