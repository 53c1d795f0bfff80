"""Operator metrics from the service layer: each ended task counted once, by provider and
finish path, with its cost, latency, fallbacks and error code; the sweep's overdue age."""

from __future__ import annotations

from datetime import timedelta

from image_gateway.models.task import TaskError, TaskStatus, utc_now
from image_gateway.providers.base import ProviderState
from image_gateway.service.lifecycle import change_status, fail_task
from image_gateway.service.refresh import refresh_task
from image_gateway.service.sweep import sweep
from image_gateway.service.sweep_check import (
    HOLDS_GIVEN_BACK_METRIC,
    OVERDUE_METRIC,
    nothing_due,
)
from image_gateway.webhooks.delivery import deliver

from tests.fakes import FakeDependencies, unavailable
from tests.unit.service.conftest import DepsFactory
from tests.unit.service.support import fox, make_due, make_overdue, submit_and_dispatch

BROKEN = TaskError(code="provider_task_failed", message="the provider gave up")


def test_a_succeeded_task_is_counted_with_its_cost_and_latency(deps: FakeDependencies) -> None:
    # GIVEN a sync provider with a price WHEN its task finishes
    deps.configure(prices={"mountsea-compat": {"per_image": {"1K": {"medium": 0.04}}}})
    submitted = submit_and_dispatch(deps, fox(provider="mountsea-compat"), client_id="c").task
    task = deps.tasks.require(submitted.task_id)

    # THEN one success by provider and path, its estimate and its provider latency
    assert task.status is TaskStatus.SUCCEEDED
    sync = {"Provider": "mountsea-compat", "Path": "sync"}
    assert deps.metrics.values("TasksSucceeded", **sync) == [1.0]
    assert deps.metrics.values("CostEstimateUsd", Provider="mountsea-compat") == [0.04]
    [latency] = deps.metrics.values("ProviderLatencySeconds", Provider="mountsea-compat")
    assert latency >= 0


def test_each_attempt_of_an_ended_task_feeds_the_measured_widgets(
    deps: FakeDependencies,
) -> None:
    # GIVEN apimart failing with a 503 and mountsea-compat (sync) making the image
    deps.providers.script("apimart").create_error = unavailable("apimart")

    # WHEN the task ends
    submit_and_dispatch(deps, fox(providers=["apimart", "mountsea-compat"]), client_id="c")

    # THEN per provider: answered 1 or 0, the time to done and the slot wait of the answer
    assert deps.metrics.values("ProviderAttemptAnswered", Provider="apimart") == [0.0]
    assert deps.metrics.values("ProviderAttemptAnswered", Provider="mountsea-compat") == [1.0]
    [seconds] = deps.metrics.values("ProviderAttemptSeconds", Provider="mountsea-compat")
    [waited] = deps.metrics.values("ProviderSlotWaitSeconds", Provider="mountsea-compat")
    assert seconds >= 0 and waited >= 0
    assert deps.metrics.values("ProviderAttemptSeconds", Provider="apimart") == []


def test_a_failed_task_is_counted_once_with_its_error_code(deps: FakeDependencies) -> None:
    # GIVEN a submitted task WHEN two finalisers fail it
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task
    fail_task(deps, task.task_id, BROKEN, by="poll")
    fail_task(deps, task.task_id, BROKEN, by="sweeper")

    # THEN only the winner counts it, with the error code; a failure costs nothing
    assert deps.metrics.values("TasksFailed", Provider="mountsea-async") == [1.0]
    code = {"Provider": "mountsea-async", "Code": "provider_task_failed"}
    assert deps.metrics.values("TaskErrors", **code) == [1.0]
    assert deps.metrics.values("CostEstimateUsd") == []


def test_a_cancelled_task_is_counted_and_not_a_success(deps: FakeDependencies) -> None:
    # GIVEN a submitted task WHEN it is cancelled THEN TasksCancelled, no success
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task

    change_status(deps, task.task_id, TaskStatus.CANCELLED, by="cancel")

    assert deps.metrics.values("TasksCancelled", Provider="mountsea-async") == [1.0]
    assert deps.metrics.values("TasksSucceeded") == []


def test_the_sweep_publishes_zero_when_no_open_task_is_overdue(deps: FakeDependencies) -> None:
    # GIVEN a due task within its deadline WHEN the sweep runs THEN the overdue age is 0
    deps.providers.script("mountsea-async").statuses = [ProviderState.RUNNING]
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task
    make_due(deps, task.task_id)

    sweep(deps)

    assert deps.metrics.values(OVERDUE_METRIC) == [0.0]


def test_an_idle_run_publishes_what_a_sweep_that_found_nothing_publishes(
    deps: FakeDependencies, make_deps: DepsFactory
) -> None:
    # GIVEN a stack with nothing due: the first look ends the run, with the sweep's metrics
    assert nothing_due(deps) is True
    idle = (deps.metrics.values(OVERDUE_METRIC), deps.metrics.values(HOLDS_GIVEN_BACK_METRIC))

    # THEN they are those the sweep itself publishes when it finds nothing (the alarm reads
    # the overdue age every minute, and its absence)
    swept = make_deps()
    assert sweep(swept) == []
    assert idle == ([0.0], [0.0])
    assert idle == (
        swept.metrics.values(OVERDUE_METRIC),
        swept.metrics.values(HOLDS_GIVEN_BACK_METRIC),
    )


def test_a_run_with_a_task_due_goes_on_to_the_sweep_and_publishes_nothing_first(
    deps: FakeDependencies,
) -> None:
    deps.providers.script("mountsea-async").statuses = [ProviderState.RUNNING]
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task
    make_due(deps, task.task_id)

    assert nothing_due(deps) is False
    assert deps.metrics.values(OVERDUE_METRIC) == []


def test_the_sweep_publishes_how_far_past_its_deadline_the_oldest_open_task_is(
    deps: FakeDependencies,
) -> None:
    # GIVEN an open task ten minutes past its deadline WHEN the sweep runs
    deps.providers.script("mountsea-async").statuses = [ProviderState.RUNNING]
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task
    make_overdue(deps, task.task_id)

    def ten_minutes_late(t: object) -> None:
        t.deadline_at = utc_now() - timedelta(minutes=10)  # type: ignore[attr-defined]

    deps.tasks.update(task.task_id, ten_minutes_late)

    sweep(deps)

    # THEN the age is published (about 600 s) and the task expires
    [overdue] = deps.metrics.values(OVERDUE_METRIC)
    assert 590 <= overdue <= 660
    assert deps.tasks.require(task.task_id).status is TaskStatus.EXPIRED
    assert deps.metrics.values("TasksExpired", Provider="mountsea-async") == [1.0]


def test_the_gateway_overhead_is_measured_from_when_the_callback_arrived(
    deps: FakeDependencies,
) -> None:
    # GIVEN an apimart task whose callback arrived 3 s before the finaliser got to it
    task = submit_and_dispatch(deps, fox(provider="apimart"), client_id="c").task
    arrived = utc_now() - timedelta(seconds=3)

    # WHEN finalised, twice (a duplicate finaliser)
    refresh_task(deps, task.task_id, by="callback", learned_at=arrived)
    refresh_task(deps, task.task_id, by="callback", learned_at=arrived)

    # THEN one overhead value, by provider and path, from the arrival to the event
    [overhead] = deps.metrics.values("GatewayOverheadSeconds", Provider="apimart")
    assert 3 <= overhead < 30
    point = next(p for p in deps.metrics.points if p.name == "GatewayOverheadSeconds")
    assert point.dimensions == {"Provider": "apimart", "Path": "callback"}


def test_no_overhead_is_measured_while_the_event_could_not_be_published(
    deps: FakeDependencies,
) -> None:
    # GIVEN the bus refusing events WHEN a sync task finishes
    deps.events.refuse_next = 10**6
    submit_and_dispatch(deps, fox(provider="mountsea-compat"), client_id="c")

    # THEN it is counted as succeeded, but its overhead waits for the event
    assert deps.metrics.values("TasksSucceeded", Provider="mountsea-compat") == [1.0]
    assert deps.metrics.values("GatewayOverheadSeconds") == []


def test_each_webhook_attempt_is_counted_by_outcome_and_a_delivery_timed(
    deps: FakeDependencies,
) -> None:
    # GIVEN a finished task whose receiver fails once, then answers 204
    request = fox(provider="mountsea-compat", callback_url="https://receiver.example/h")
    submit_and_dispatch(deps, request, client_id="c")
    answers = iter([503, 204])
    deps.webhooks.transport.answer = lambda *_: next(answers)
    message = deps.webhooks.deliveries.take()[0]

    # WHEN both attempts are made (the clock moved to the second's time, not slept)
    deliver(deps, message, draw=lambda: 0.5)
    following = deps.webhooks.deliveries.take()[0]
    at = following.not_before
    assert at is not None
    deliver(deps, following, now=lambda: at)

    # THEN one attempt of each outcome, and the delivery's time since the status change
    assert deps.metrics.values("WebhookAttempts", Outcome="retrying") == [1.0]
    assert deps.metrics.values("WebhookAttempts", Outcome="delivered") == [1.0]
    [seconds] = deps.metrics.values("WebhookDeliverySeconds")
    assert seconds >= 5  # the first retry waits 5 s


def test_a_task_a_provider_accepts_is_counted_submitted_by_provider_and_path(
    deps: FakeDependencies,
) -> None:
    # GIVEN a task on apimart (callbacks) WHEN dispatched, and the message delivered twice
    task = submit_and_dispatch(deps, fox(provider="apimart"), client_id="c").task
    change_status(deps, task.task_id, TaskStatus.SUBMITTED, by="dispatch")

    # THEN one submission, by provider and path
    assert deps.metrics.values("TasksSubmitted", Provider="apimart", Path="callback") == [1.0]
