"""The capacity-at-volume figure: how moto's requests are named and counted, the pause probe's
record read back, the minimum price of extra requests, and the report's rows and targets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from bench.report import scale_rows
from bench.scale import _pauses, _per_task, _price_min, _Sampler
from devstack.local_aws import RequestCounter, access_key, request_name


def _spread(median: float) -> dict[str, float]:
    return {"median": median, "p25": median, "p75": median, "min": median, "max": median, "n": 1}


def test_requests_are_named_by_their_service_and_operation() -> None:
    # Given the shapes of requests moto answers
    environs: list[dict[str, Any]] = [
        {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.TransactWriteItems"},
        {"HTTP_X_AMZ_TARGET": "AmazonSQS.SendMessage"},
        {"HTTP_X_AMZ_TARGET": "AWSEvents.PutEvents"},
        {"QUERY_STRING": "Action=GetCallerIdentity&Version=2011-06-15"},
        {"REQUEST_METHOD": "PUT", "PATH_INFO": "/bucket/key"},
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_BENCH_PROBE": "1"},
    ]
    # Then each is named as the figure counts it
    assert [request_name(e) for e in environs] == [
        "dynamodb:TransactWriteItems",
        "sqs:SendMessage",
        "events:PutEvents",
        "query:GetCallerIdentity",
        "s3:PUT",
        "bench:probe",
    ]


def test_the_counter_counts_each_request_it_passes_on() -> None:
    # Given a counter in front of an app
    seen: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["HTTP_X_AMZ_TARGET"])
        return [b"{}"]

    counter = RequestCounter(app)
    before = counter.snapshot_by_key()
    # When two requests pass through, signed by one key
    signed = "AWS4-HMAC-SHA256 Credential=AKIDAPI/20261207/us-east-1/dynamodb/aws4_request, x=y"
    for target in ("DynamoDB_20120810.GetItem", "DynamoDB_20120810.GetItem"):
        environ = {"HTTP_X_AMZ_TARGET": target, "HTTP_AUTHORIZATION": signed}
        assert counter(environ, None) == [b"{}"]
    # Then the app answered both and the span counts them, by name and by key
    assert seen == ["DynamoDB_20120810.GetItem"] * 2
    assert counter.snapshot() == Counter({"dynamodb:GetItem": 2})
    assert counter.snapshot_by_key() - before == Counter({("AKIDAPI", "dynamodb:GetItem"): 2})
    per_task = _per_task(before, counter.snapshot_by_key(), 2, {"AKIDAPI": "ApiFunction"})
    assert per_task == {"tasks": {"dynamodb:GetItem": 1.0}, "sweeper": {}}


def test_a_request_is_told_by_the_key_that_signed_it_in_its_header_or_its_url() -> None:
    header = "AWS4-HMAC-SHA256 Credential=ASIAFN/20261207/us-east-1/sqs/aws4_request, S=1"
    presigned = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAURL%2F20261207%2Fus"
    assert access_key({"HTTP_AUTHORIZATION": header}) == "ASIAFN"
    assert access_key({"QUERY_STRING": presigned}) == "ASIAURL"
    assert access_key({"QUERY_STRING": "Action=ListQueues"}) == "-"


def test_the_probe_record_gives_each_targets_slowest_answer_and_pauses(tmp_path: Path) -> None:
    # Given a probe record with one 1.5 s answer from moto
    record = tmp_path / "probe.txt"
    record.write_text(
        "1.0 0.0100 http://moto/\n1.1 1.5000 http://moto/\n1.2 0.0200 http://sim/_sim/profile\n"
        "1.3 0.01\n"  # a line cut by the probe's end is ignored
    )
    # When it is read back
    pauses = _pauses(record)
    # Then moto paused once and the simulator never
    assert pauses["http://moto/"]["over_limit"] == 1
    assert pauses["http://moto/"]["max_seconds"] == 1.5
    assert pauses["http://sim/_sim/profile"] == {
        "answers": 1,
        "max_seconds": 0.02,
        "p99_seconds": 0.02,
        "over_limit": 0,
    }


def test_extra_requests_are_priced_at_their_smallest_units() -> None:
    # Given one extra transactional write, one read and devstack's SQS polling per task
    calls = {
        "dynamodb:TransactWriteItems": 1.0,
        "dynamodb:GetItem": 1.0,
        "sqs:ReceiveMessage": 10.0,
    }
    # Then the write is 2 WRU and the read 1 RRU, and the polling is not priced
    assert _price_min(calls) == 2 * 0.625e-6 + 0.125e-6


def _figure(*, pause: float, growth: float, failed: int) -> dict[str, Any]:
    succeeded = 2000 - failed
    return {
        "tasks": 2000,
        "clients": 4,
        "seconds": 1000.0,
        "tasks_per_second": 2.0,
        "statuses": {"succeeded": succeeded, **({"failed": failed} if failed else {})},
        "all_succeeded": failed == 0,
        "stages": {
            "idle": {"before_provider": _spread(0.5), "after_provider": _spread(2.0)},
            "volume": {"before_provider": _spread(30.0), "after_provider": _spread(4.0)},
        },
        "queue_backlog": {"DispatchQueue": {"mean": 12.0, "max": 80}},
        "busiest_queue": "DispatchQueue",
        "cpu_busy": _spread(0.97),
        "cpus": 2,
        "pauses": {},
        "worst_pause_seconds": pause,
        "answers_over_limit": int(pause > 1.0),
        "pause_limit_seconds": 1.0,
        "pause_met": pause <= 1.0,
        "rss_mb": {"before": 300.0, "after": 300.0 + growth * 2000},
        "memory_mb_per_task": growth,
        "memory_target_mb_per_task": 0.5,
        "memory_met": growth < 0.5,
        "calls_per_task": {"idle": {"a": 40.0}, "volume": {"a": 44.0}},
        "extra_calls_per_task": {"a": 4.0},
        "extra_usd_per_task_min": 0.0000025,
    }


def test_a_run_within_its_targets_is_met_and_names_where_work_waited() -> None:
    # Given every task succeeded, no pause and little memory growth
    rows = scale_rows(_figure(pause=0.4, growth=0.1, failed=0))
    # Then its three targets are met and the limit row names the CPU and the busiest queue
    assert [r[5] for r in rows] == ["met", "-", "met", "met", "-"]
    assert "CPU 97% busy of 2 cores" in rows[1][0]
    assert "DispatchQueue (mean 12, max 80)" in rows[1][0]
    assert rows[4][3] == "1.10x"


def test_a_pause_memory_growth_or_a_failure_is_missed() -> None:
    # Given a 3 s pause, 0.8 MB a task and 5 failed tasks
    rows = scale_rows(_figure(pause=3.0, growth=0.8, failed=5))
    # Then each of the three targets is missed
    assert [rows[i][5] for i in (0, 2, 3)] == ["**missed**"] * 3
    assert rows[2][1] == "3.00 s (1 over 1 s)"


def test_the_sweepers_requests_are_counted_apart_from_the_tasks() -> None:
    # Given a span in which the functions made 20 queries and 14 writes, the sweeper 10 queries,
    # and the bench probed moto 100 times (unsigned)
    before: Counter[tuple[str, str]] = Counter()
    after = Counter(
        {
            ("K-API", "dynamodb:Query"): 12,
            ("K-FIN", "dynamodb:Query"): 8,
            ("K-FIN", "dynamodb:PutItem"): 14,
            ("K-SWEEP", "dynamodb:Query"): 10,
            ("-", "bench:probe"): 100,
        }
    )
    callers = {"K-API": "ApiFunction", "K-FIN": "FinalizeFunction", "K-SWEEP": "SweeperFunction"}
    # When counted per task (2 tasks)
    calls = _per_task(before, after, 2, callers)
    # Then the tasks' requests and the sweeper's are apart, and the probe is in neither
    assert calls == {
        "tasks": {"dynamodb:PutItem": 7.0, "dynamodb:Query": 10.0},
        "sweeper": {"dynamodb:Query": 5.0},
    }


def test_a_progress_line_gives_the_last_cpu_sample_and_the_queues_with_a_backlog() -> None:
    sampler = _Sampler(sqs=None, queues={})
    assert sampler.latest() == "CPU -; waiting: no queue backlog"

    sampler.cpu += [0.5, 0.97]
    sampler.backlog.update({"FinalizeQueue": [3, 0], "DispatchQueue": [10, 25]})

    assert sampler.latest() == "CPU 97%; waiting: DispatchQueue 25"
