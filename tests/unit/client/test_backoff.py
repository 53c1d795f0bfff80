"""The polling policy: looks spaced by the provider's expected latency, then backing off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from imagegw import Backoff, Gateway

from tests.unit.client.support import FakeClock, ScriptedGateway, view


def test_before_the_expected_latency_looks_come_every_fifth_of_it() -> None:
    backoff = Backoff()

    assert backoff.delay(elapsed=0, expected=30, late_looks=0) == 5.0
    assert backoff.delay(elapsed=12, expected=30, late_looks=0) == 5.0


def test_the_last_early_look_lands_on_the_expected_latency() -> None:
    assert Backoff().delay(elapsed=28, expected=30, late_looks=0) == pytest.approx(2.0)


def test_early_looks_stay_within_their_bounds() -> None:
    backoff = Backoff()

    assert backoff.delay(elapsed=0, expected=0.6, late_looks=0) == 0.25
    assert backoff.delay(elapsed=0, expected=600, late_looks=0) == 5.0


def test_after_the_expected_latency_looks_back_off_from_a_tenth_of_it() -> None:
    backoff = Backoff()

    delays = [backoff.delay(elapsed=31, expected=30, late_looks=n) for n in range(8)]

    assert delays == [2.0, 3.0, 4.5, 6.75, 10.125, 15.0, 15.0, 15.0]


def test_without_an_expected_latency_looks_start_at_half_a_second() -> None:
    backoff = Backoff()

    assert [backoff.delay(elapsed=5, expected=None, late_looks=n) for n in range(3)] == [
        0.5,
        0.75,
        1.125,
    ]


def test_wait_sleeps_by_the_policy_and_reports_the_changes(
    gateway: Gateway, server: ScriptedGateway, clock: FakeClock
) -> None:
    # Given a task whose provider got it just now and typically takes 30 s
    running = view("running")
    server.on("GET /v1/tasks/tsk_1", running, dict(running), view("succeeded"))
    task = gateway.task("tsk_1")
    seen: list[str] = []

    # When the caller waits
    info = task.wait(on_update=lambda t: seen.append(t.status))

    # Then it looked twice, five seconds apart, and was told of the first snapshot and the change
    assert info.status == "succeeded"
    assert seen == ["running", "succeeded"]
    assert clock.sleeps == [5.0, 5.0]


def test_wait_calls_back_on_each_change_not_on_each_look(
    gateway: Gateway, server: ScriptedGateway, clock: FakeClock
) -> None:
    # Given a task read four times: the same running snapshot twice, then a fallback to
    # another provider, then its end
    running = view("running", provider="apimart")
    moved = {**running, "provider": "mountsea-async"}
    done = {**running, "status": "succeeded"}
    server.on("GET /v1/tasks/tsk_1", running, dict(running), moved, done)
    task = gateway.task("tsk_1")
    seen: list[tuple[str, str]] = []

    # When the caller waits
    task.wait(on_update=lambda t: seen.append((t.status, t.provider)))

    # Then it heard of the first snapshot and of each change, once
    assert seen == [("running", "apimart"), ("running", "mountsea-async"), ("succeeded", "apimart")]
    assert len(clock.sleeps) == 3


def test_wait_backs_off_once_the_expected_latency_has_passed(
    gateway: Gateway, server: ScriptedGateway, clock: FakeClock
) -> None:
    late = (datetime.now(UTC) - timedelta(seconds=60)).isoformat()
    server.on(
        "GET /v1/tasks/tsk_1",
        view("running", submitted_at=late),
        view("running", submitted_at=late),
        view("running", submitted_at=late),
        view("succeeded"),
    )

    gateway.task("tsk_1").wait()

    assert clock.sleeps == [2.0, 3.0, 4.5]
