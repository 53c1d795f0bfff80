"""The poll step: one iteration of a task's poll loop, its backoff and its deadline."""

from __future__ import annotations

from datetime import timedelta

from image_gateway.models.task import Task, TaskStatus, utc_now
from image_gateway.providers.base import ProviderState
from image_gateway.service.lifecycle import cancel_task
from image_gateway.service.poll import poll_step
from image_gateway.timing import TimingPolicy

from tests.fakes import FakeDependencies, unavailable
from tests.unit.service.conftest import DepsFactory
from tests.unit.service.support import fox, make_overdue, submit_and_dispatch

MOUNTSEA_INTERVAL = 3.0  # MountseaAsyncProvider.poll_interval_seconds


def polled_task(deps: FakeDependencies, *states: ProviderState) -> Task:
    """A mountsea-async task (poll loop) whose provider answers ``states`` (the last repeats)."""
    deps.providers.script("mountsea-async").statuses = list(states)
    return submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task


def test_waits_follow_the_timing_policy_from_the_providers_interval(
    deps: FakeDependencies,
) -> None:
    # GIVEN a task its provider keeps working on WHEN polled nine times
    task = polled_task(deps, ProviderState.RUNNING)

    waits = [poll_step(deps, task.task_id, attempt).wait_seconds for attempt in range(9)]

    # THEN each wait is the policy's backoff from mountsea-async's 3 s interval, whole seconds
    assert waits == [
        max(1, round(deps.timing.poll_wait(MOUNTSEA_INTERVAL, attempt))) for attempt in range(9)
    ]
    assert waits[-1] == deps.timing.poll_wait_cap_seconds


def test_the_backoff_is_the_injected_policy(make_deps: DepsFactory) -> None:
    # GIVEN a policy doubling each wait, for two steps, capped at 10 s
    deps = make_deps(
        timing=TimingPolicy(
            poll_backoff_factor=2.0, poll_backoff_steps=2, poll_wait_cap_seconds=10.0
        )
    )
    task = polled_task(deps, ProviderState.RUNNING)

    # WHEN polled five times THEN 3, 6, then the 10 s cap (12 s capped; exponent stops at 2)
    waits = [poll_step(deps, task.task_id, attempt).wait_seconds for attempt in range(5)]

    assert waits == [3, 6, 10, 10, 10]


def test_each_poll_is_counted_on_the_task(deps: FakeDependencies) -> None:
    # GIVEN a running task WHEN polled three times THEN task.polls is 3
    task = polled_task(deps, ProviderState.RUNNING)

    for attempt in range(3):
        poll_step(deps, task.task_id, attempt)

    assert deps.tasks.require(task.task_id).polls == 3


def test_scaled_waits_never_drop_below_one_second(make_deps: DepsFactory) -> None:
    # GIVEN devstack's time scale (0.02) WHEN polled THEN the wait is 1 s, not 0
    deps = make_deps(time_scale=0.02)
    task = polled_task(deps, ProviderState.RUNNING)

    assert poll_step(deps, task.task_id, 6).wait_seconds == 1


def test_the_last_wait_ends_at_the_deadline(deps: FakeDependencies) -> None:
    # GIVEN a task whose deadline is ten seconds away and a backoff of 30 s
    task = polled_task(deps, ProviderState.RUNNING)
    deps.tasks.update(
        task.task_id, lambda t: setattr(t, "deadline_at", utc_now() + timedelta(seconds=10.2))
    )

    # WHEN polled THEN the loop wakes at the deadline (10.7 s rounded), not after 30 s
    decision = poll_step(deps, task.task_id, 6)

    assert decision.done is False
    assert 10 <= decision.wait_seconds <= 11


def test_a_task_still_running_at_its_deadline_expires(deps: FakeDependencies) -> None:
    # GIVEN a task the provider is still working on, past its deadline WHEN polled
    task = polled_task(deps, ProviderState.RUNNING)
    make_overdue(deps, task.task_id)

    decision = poll_step(deps, task.task_id, 3)

    # THEN the loop ends and the task is expired, with its event
    assert decision.done is True
    assert deps.tasks.require(task.task_id).status is TaskStatus.EXPIRED
    assert deps.events.for_task(task.task_id)[-1] == "Image Task Expired"


def test_a_result_ready_at_the_deadline_wins_over_expiry(deps: FakeDependencies) -> None:
    # GIVEN a task past its deadline whose provider has just finished WHEN polled
    task = polled_task(deps, ProviderState.SUCCEEDED)
    make_overdue(deps, task.task_id)

    decision = poll_step(deps, task.task_id, 3)

    # THEN the result is kept: succeeded, not expired
    assert decision.done is True
    assert deps.tasks.require(task.task_id).status is TaskStatus.SUCCEEDED


def test_a_provider_outage_keeps_the_loop_going(deps: FakeDependencies) -> None:
    # GIVEN the status endpoint answering 503 WHEN polled
    # THEN the loop waits and tries again (the task is untouched but for the poll count)
    deps.providers.script("mountsea-async").statuses = [unavailable("mountsea-async")]
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task

    decision = poll_step(deps, task.task_id, 0)

    assert (decision.done, decision.wait_seconds) == (False, 3)
    stored = deps.tasks.require(task.task_id)
    assert (stored.status, stored.polls) == (TaskStatus.SUBMITTED, 1)


def test_a_task_the_provider_failed_ends_the_loop(deps: FakeDependencies) -> None:
    # GIVEN the provider reporting failure WHEN polled THEN done, task failed
    task = polled_task(deps, ProviderState.FAILED)

    assert poll_step(deps, task.task_id, 0).done is True
    assert deps.tasks.require(task.task_id).status is TaskStatus.FAILED


def test_a_cancelled_task_ends_the_loop_without_asking(deps: FakeDependencies) -> None:
    # GIVEN a task the client cancelled WHEN its loop polls THEN done, the provider not asked
    task = polled_task(deps, ProviderState.RUNNING)
    cancel_task(deps, task)

    assert poll_step(deps, task.task_id, 1).done is True
    assert deps.providers.calls_to("mountsea-async", "status") == []


def test_an_unknown_task_ends_the_loop(deps: FakeDependencies) -> None:
    # GIVEN a loop for a task that does not exist WHEN it polls THEN it stops
    decision = poll_step(deps, "tsk_nobody", 0)

    assert (decision.done, decision.wait_seconds) == (True, 0)
