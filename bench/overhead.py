"""Figure 2: warm time per request of submit and finalise, against the same calls made directly.

The gateway side invokes the warm handlers in-process with the events their triggers send (submit:
API Gateway's ``POST /v1/images`` to apimart with a zero-latency simulator; finalise: the
finalize queue's SQS record of a verified callback, which re-fetches the task, downloads the
result and stores it). The floor replays, with plain
boto3 clients and one httpx client, exactly the AWS and HTTP calls one such request made
(recorded; conditions dropped so that the replayed writes succeed). Gateway and floor alternate
within each round, so the machine's noise hits both alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import ClientError

from bench.counting import AwsCall, HttpCall
from bench.stack import ZERO_LATENCY, BenchStack
from bench.stats import percentile, summary
from devstack.waiting import wait_until

TARGETS = {"submit": 1.5, "finalise": 1.3}
SUBMIT_BODY = {
    "prompt": f"a lighthouse {ZERO_LATENCY} [sim:no-callback]",
    "provider": "apimart",
    "aspect_ratio": "1:1",
    "resolution": "1K",
}
_CONDITIONS = ("ConditionExpression", "ExpressionAttributeNames", "ExpressionAttributeValues")
_REFUSED_ON_REPLAY = frozenset({"ConditionalCheckFailedException", "TransactionCanceledException"})
"""A conditional update replayed after the gateway's own (a usage settlement, a limits
reservation) is refused by its condition; the floor still paid for the round trip."""


class DirectCalls:
    """The floor: replays recorded calls with plain clients (no gateway code in between)."""

    def __init__(self, aws: list[AwsCall], http: list[HttpCall]) -> None:
        config = Config(retries={"mode": "standard", "max_attempts": 3})
        self._clients = {
            service: boto3.client(service, config=config) for service in {c.service for c in aws}
        }
        self._http = httpx.Client()
        self._aws = [(c.service, c.operation, self._replayable(c)) for c in aws]
        self._calls = http

    @staticmethod
    def _replayable(call: AwsCall) -> dict[str, Any]:
        params = dict(call.params or {})
        if call.operation == "PutItem":
            for name in _CONDITIONS:
                params.pop(name, None)
        return params

    def run(self) -> None:
        """Make every call once, in the order the gateway made them (HTTP calls first)."""
        for call in self._calls:
            response = self._http.request(
                call.method, call.url, content=call.content or None, headers=call.headers
            )
            response.read()
        for service, operation, params in self._aws:
            try:
                self._clients[service]._make_api_call(operation, params)
            except ClientError as refused:  # a replayed conditional write: the trip was made
                if refused.response["Error"]["Code"] not in _REFUSED_ON_REPLAY:
                    raise

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()


def _record_once(
    bench: BenchStack, action: Callable[[], Any], function: str
) -> tuple[list[AwsCall], list[HttpCall]]:
    """The calls ``function`` made during ``action`` (the dispatch function, which runs from
    its queue meanwhile since submit is storage-first, is not the request's)."""
    bench.recorder.reset()
    bench.recorder.keep_params = True
    try:
        action()
    finally:
        bench.recorder.keep_params = False
    return (
        [c for c in bench.recorder.aws if c.function == function],
        [c for c in bench.recorder.http if c.function == function],
    )


def _handed_over(bench: BenchStack, task_id: str) -> None:
    """Wait (untimed) until the dispatch function gave the task to the provider: only then has
    a callback something to finalise."""
    wait_until(lambda: bench.task(task_id).get("provider_task_id"), timeout=30, interval=0.01)


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def run(bench: BenchStack, rounds: int, per_round: int, progress: Any) -> dict[str, Any]:
    """``rounds`` x ``per_round`` submits and finalises, each next to its floor."""
    runtime = bench.devstack.runtime

    def submit() -> str:
        return str(bench.submit(SUBMIT_BODY)["task_id"])

    def finalise(task_id: str) -> None:
        answer = runtime.invoke("FinalizeFunction", bench.finalize_event("apimart", task_id))
        if answer.get("batchItemFailures"):
            raise RuntimeError(f"finalise of {task_id} failed: {answer}")

    for _ in range(3):  # warm both functions, their clients and connection pools
        finalise(submit())
    submit_floor = DirectCalls(*_record_once(bench, submit, "ApiFunction"))
    template = submit()
    _handed_over(bench, template)
    finalise_floor = DirectCalls(
        *_record_once(bench, lambda: finalise(template), "FinalizeFunction")
    )
    samples: dict[str, list[float]] = {
        k: [] for k in ("submit", "submit_floor", "finalise", "finalise_floor")
    }
    ratios: dict[str, list[float]] = {"submit": [], "finalise": []}
    for index in range(rounds):
        round_samples: dict[str, list[float]] = {k: [] for k in samples}
        created: list[str] = []
        for _ in range(per_round):
            started = time.perf_counter()
            created.append(submit())
            round_samples["submit"].append((time.perf_counter() - started) * 1000)
            round_samples["submit_floor"].append(_timed(submit_floor.run))
        for task_id in created:
            _handed_over(bench, task_id)
            round_samples["finalise"].append(_timed(lambda t=task_id: finalise(t)))  # type: ignore[misc]
            round_samples["finalise_floor"].append(_timed(finalise_floor.run))
        for kind in ratios:
            ratios[kind].append(
                percentile(round_samples[kind], 50) / percentile(round_samples[f"{kind}_floor"], 50)
            )
        for key, values in round_samples.items():
            samples[key].extend(values)
        progress(
            f"  overhead round {index + 1}/{rounds}: submit p50 x{ratios['submit'][-1]:.2f}, "
            f"finalise p50 x{ratios['finalise'][-1]:.2f} of the direct calls"
        )
    submit_floor.close()
    finalise_floor.close()
    result: dict[str, Any] = {}
    for kind in ("submit", "finalise"):
        gateway, floor = samples[kind], samples[f"{kind}_floor"]
        ratio = summary(ratios[kind])
        result[kind] = {
            "p50_ms": percentile(gateway, 50),
            "p99_ms": percentile(gateway, 99),
            "floor_p50_ms": percentile(floor, 50),
            "floor_p99_ms": percentile(floor, 99),
            "p50_ms_by_round": summary(
                [
                    percentile(gateway[i : i + per_round], 50)
                    for i in range(0, len(gateway), per_round)
                ]
            ),
            "ratio_p50": ratio,
            "ratio_p99": percentile(gateway, 99) / percentile(floor, 99),
            "target_ratio": TARGETS[kind],
            "met": ratio["median"] <= TARGETS[kind],
            "requests": len(gateway),
            "direct_calls": (
                len(submit_floor._aws) + len(submit_floor._calls)
                if kind == "submit"
                else len(finalise_floor._aws) + len(finalise_floor._calls)
            ),
        }
    return result
