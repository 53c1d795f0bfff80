"""Errors: the gateway's stable code on every exception; retries where another try may work."""

from __future__ import annotations

import httpx
import pytest
from imagegw import (
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Gateway,
    NotFound,
    RateLimited,
    ServerError,
    TaskFailed,
    Unauthorized,
    Unprocessable,
    WaitTimeout,
)
from imagegw.errors import api_error

from tests.unit.client.support import FakeClock, ScriptedGateway, error_body, view


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "validation_error", BadRequest),
        (401, "unauthorized", Unauthorized),
        (404, "task_not_found", NotFound),
        (409, "task_not_cancellable", Conflict),
        (422, "no_provider_can_honour", Unprocessable),
        (500, "internal_error", ServerError),
    ],
)
def test_an_error_answer_becomes_its_exception_with_the_gateways_code(
    status: int, code: str, kind: type[ApiError]
) -> None:
    error = api_error(status, error_body(code, "why", fields=[{"field": "size"}]))

    assert isinstance(error, kind)
    assert (error.status, error.code, error.message) == (status, code, "why")
    assert error.details == {"fields": [{"field": "size"}]}


def test_an_answer_not_in_the_gateways_shape_gets_a_code_from_its_status() -> None:
    error = api_error(413, {"message": "Request Entity Too Large"})

    assert (error.code, error.message) == ("payload_too_large", "Request Entity Too Large")


def test_a_refused_submit_raises_with_the_code_and_the_fields(
    gateway: Gateway, server: ScriptedGateway
) -> None:
    server.on("POST /v1/images", (400, error_body("validation_error", "size: bad", fields=[])))

    with pytest.raises(BadRequest) as caught:
        gateway.generate("x", size="9x9")

    assert caught.value.code == "validation_error"
    assert len(server.sent("POST /v1/images")) == 1  # a 400 is not tried again


def test_every_submit_carries_an_idempotency_key_so_a_retry_makes_one_task(
    gateway: Gateway, server: ScriptedGateway
) -> None:
    server.on("POST /v1/images", (503, error_body("busy")), (202, view("queued")))

    task = gateway.generate("a fox")

    keys = {r.headers["idempotency-key"] for r in server.sent("POST /v1/images")}
    assert task.status == "queued"
    assert len(keys) == 1 and next(iter(keys)).startswith("imagegw-")


def test_a_rate_limit_is_waited_out_as_the_gateway_says(
    gateway: Gateway, server: ScriptedGateway, clock: FakeClock
) -> None:
    server.on(
        "GET /v1/providers",
        httpx.Response(429, json=error_body("rate_limited"), headers={"retry-after": "3"}),
        {"default_order": [], "providers": []},
    )

    assert gateway.providers() == []
    assert clock.sleeps == [3.0]


def test_a_rate_limit_that_lasts_raises_rate_limited_with_retry_after(
    gateway: Gateway, server: ScriptedGateway
) -> None:
    server.on(
        "GET /v1/providers",
        httpx.Response(429, json=error_body("rate_limited"), headers={"retry-after": "7"}),
    )

    with pytest.raises(RateLimited) as caught:
        gateway.providers()

    assert caught.value.retry_after == 7.0


def test_a_refusal_until_tomorrow_is_raised_at_once_not_waited_out(
    gateway: Gateway, server: ScriptedGateway, clock: FakeClock
) -> None:
    # GIVEN a spent daily budget (the gateway says: retry in 9 hours)
    server.on(
        "POST /v1/images",
        httpx.Response(429, json=error_body("budget_exceeded"), headers={"retry-after": "32400"}),
    )

    with pytest.raises(RateLimited) as caught:
        gateway.generate("a fox")

    # THEN the caller hears it at once, with the code and the wait
    assert (caught.value.code, caught.value.retry_after) == ("budget_exceeded", 32400.0)
    assert len(server.sent("POST /v1/images")) == 1
    assert clock.sleeps == []


def test_no_answer_at_all_is_a_connection_error_after_the_retries(
    gateway: Gateway, server: ScriptedGateway, clock: FakeClock
) -> None:
    server.on("GET /v1/tasks/tsk_1", httpx.ConnectError("refused"))

    with pytest.raises(ConnectionFailed) as caught:
        gateway.get_task("tsk_1")

    assert caught.value.code == "connection_error"
    assert len(server.sent("GET /v1/tasks/tsk_1")) == 3
    assert clock.sleeps == [0.5, 1.0]


def test_a_task_that_fails_raises_task_failed_with_its_error_code(
    gateway: Gateway, server: ScriptedGateway
) -> None:
    error = {"code": "moderation_blocked", "message": "refused", "provider": "apimart"}
    server.on("GET /v1/tasks/tsk_1", view("failed", error=error))

    with pytest.raises(TaskFailed) as caught:
        gateway.task("tsk_1").wait()

    assert caught.value.code == "moderation_blocked"
    assert caught.value.task.status == "failed"


def test_a_cancelled_task_raises_task_failed_coded_by_its_status(
    gateway: Gateway, server: ScriptedGateway
) -> None:
    server.on("GET /v1/tasks/tsk_1", view("cancelled"))

    with pytest.raises(TaskFailed) as caught:
        gateway.task("tsk_1").wait()

    assert caught.value.code == "cancelled"


def test_a_failed_task_can_be_waited_for_without_raising(
    gateway: Gateway, server: ScriptedGateway
) -> None:
    server.on("GET /v1/tasks/tsk_1", view("expired"))

    assert gateway.task("tsk_1").wait(raise_on_failure=False).status == "expired"


def test_a_wait_that_runs_out_raises_wait_timeout_with_the_last_snapshot(
    gateway: Gateway, server: ScriptedGateway, clock: FakeClock
) -> None:
    server.on("GET /v1/tasks/tsk_1", view("running"))
    task = gateway.task("tsk_1")

    with pytest.raises(WaitTimeout) as caught:
        task.wait(timeout=12)

    assert caught.value.code == "wait_timeout"
    assert task.status == "running"
    assert sum(clock.sleeps) == pytest.approx(12)


def test_a_wait_rides_out_a_few_lost_answers(
    gateway: Gateway, server: ScriptedGateway, clock: FakeClock
) -> None:
    server.on(
        "GET /v1/tasks/tsk_1",
        view("running"),
        (503, error_body("busy")), (503, error_body("busy")), (503, error_body("busy")),
        (503, error_body("busy")), (503, error_body("busy")), (503, error_body("busy")),
        view("succeeded"),
    )  # fmt: skip

    assert gateway.task("tsk_1").wait().status == "succeeded"


def test_a_wait_stops_at_an_error_that_will_not_pass(
    gateway: Gateway, server: ScriptedGateway
) -> None:
    server.on("GET /v1/tasks/tsk_1", view("running"), (404, error_body("task_not_found")))

    with pytest.raises(NotFound):
        gateway.task("tsk_1").wait()


def test_cancelling_a_finished_task_is_a_conflict(
    gateway: Gateway, server: ScriptedGateway
) -> None:
    server.on("POST /v1/tasks/tsk_1/cancel", (409, error_body("task_not_cancellable", "it ended")))

    with pytest.raises(Conflict) as caught:
        gateway.cancel("tsk_1")

    assert caught.value.code == "task_not_cancellable"
