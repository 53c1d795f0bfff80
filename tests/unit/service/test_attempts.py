"""Every path that ends a task closes its provider attempt with the real outcome and time, and
records which path ended it (``finished_by``)."""

from __future__ import annotations

from image_gateway.errors import ProviderRejected
from image_gateway.models.task import Task, TaskStatus
from image_gateway.providers.base import ProviderState
from image_gateway.service.lifecycle import cancel_task
from image_gateway.service.poll import poll_step
from image_gateway.service.refresh import refresh_task
from image_gateway.service.sweep import sweep

from tests.fakes import FakeDependencies, unavailable
from tests.unit.service.support import fox, make_overdue, submit_and_dispatch


def taken(deps: FakeDependencies, provider: str, *states: ProviderState) -> Task:
    """A task ``provider`` took, whose status answers are ``states`` (the last repeats)."""
    deps.providers.script(provider).statuses = list(states)
    return submit_and_dispatch(deps, fox(provider=provider), client_id="c").task


def only_attempt(task: Task) -> tuple[str, str, bool]:
    """(provider, outcome, has an end time) of the task's one attempt."""
    (attempt,) = task.attempts
    return attempt.provider, attempt.outcome, attempt.finished_at is not None


def test_an_attempt_is_open_while_the_provider_works(deps: FakeDependencies) -> None:
    # GIVEN mountsea-async working on a task WHEN it is polled
    task = taken(deps, "mountsea-async", ProviderState.RUNNING)
    poll_step(deps, task.task_id, 0)

    # THEN its attempt says submitted, with no end yet, and nothing ended the task
    now = deps.tasks.require(task.task_id)
    assert only_attempt(now) == ("mountsea-async", "submitted", False)
    assert now.finished_by is None


def test_the_poll_path_closes_a_succeeded_attempt(deps: FakeDependencies) -> None:
    # GIVEN mountsea-async (poll loop) done WHEN the poll step finds it
    task = taken(deps, "mountsea-async", ProviderState.SUCCEEDED)
    poll_step(deps, task.task_id, 0)

    # THEN the attempt is completed at the task's end, and the poll finished it
    done = deps.tasks.require(task.task_id)
    assert done.status is TaskStatus.SUCCEEDED
    assert only_attempt(done) == ("mountsea-async", "completed", True)
    assert done.attempts[0].finished_at == done.finished_at
    assert done.finished_by == "poll"


def test_the_poll_path_closes_a_failed_attempt_with_its_error(deps: FakeDependencies) -> None:
    # GIVEN mountsea-async answering that the task failed WHEN polled
    deps.providers.script("mountsea-async").failure = ProviderRejected(
        "blocked", provider="mountsea-async", code="moderation_blocked"
    )
    task = taken(deps, "mountsea-async", ProviderState.FAILED)
    poll_step(deps, task.task_id, 0)

    # THEN the attempt is failed with the task's own error
    done = deps.tasks.require(task.task_id)
    assert only_attempt(done) == ("mountsea-async", "failed", True)
    assert done.attempts[0].error == done.error and done.error is not None
    assert done.finished_by == "poll"


def test_the_callback_path_closes_its_attempt(deps: FakeDependencies) -> None:
    # GIVEN apimart done WHEN its callback is finalised
    task = taken(deps, "apimart", ProviderState.SUCCEEDED)
    done = refresh_task(deps, task.task_id, by="callback").task

    # THEN completed, finished by the callback
    assert only_attempt(done) == ("apimart", "completed", True)
    assert done.finished_by == "callback"


def test_the_sweeper_closes_an_expired_attempt(deps: FakeDependencies) -> None:
    # GIVEN a task its provider never finishes, past its deadline WHEN the sweep runs
    task = taken(deps, "mountsea-async", ProviderState.RUNNING)
    make_overdue(deps, task.task_id)
    sweep(deps)

    # THEN the attempt is expired with the deadline's error, ended by the sweeper
    done = deps.tasks.require(task.task_id)
    assert done.status is TaskStatus.EXPIRED
    assert only_attempt(done) == ("mountsea-async", "expired", True)
    assert done.attempts[0].error is not None
    assert done.attempts[0].error.code == "deadline_exceeded"
    assert done.finished_by == "sweeper"


def test_a_cancel_closes_the_attempt(deps: FakeDependencies) -> None:
    # GIVEN a task at work WHEN its client cancels it THEN the attempt says cancelled
    task = taken(deps, "apimart", ProviderState.RUNNING)
    done = cancel_task(deps, task)

    assert only_attempt(done) == ("apimart", "cancelled", True)
    assert done.finished_by == "cancel"


def test_a_sync_call_records_a_completed_attempt_with_its_times(deps: FakeDependencies) -> None:
    # GIVEN mountsea-compat (one sync call) WHEN dispatched
    done = submit_and_dispatch(deps, fox(provider="mountsea-compat"), client_id="c").task

    # THEN its attempt is completed, from the call to its answer, and dispatch finished it
    assert done.status is TaskStatus.SUCCEEDED
    (attempt,) = done.attempts
    assert attempt.outcome == "completed" and attempt.finished_at is not None
    assert attempt.at <= attempt.finished_at
    assert done.finished_by == "dispatch"


def test_a_failed_attempt_before_a_fallback_stays_failed(deps: FakeDependencies) -> None:
    # GIVEN mountsea-compat refusing for a moment, then mountsea-async taking and finishing it
    deps.providers.script("mountsea-compat").sync_error = unavailable("mountsea-compat")
    deps.providers.script("mountsea-async").statuses = [ProviderState.SUCCEEDED]
    task = submit_and_dispatch(
        deps, fox(providers=["mountsea-compat", "mountsea-async"]), client_id="c"
    ).task
    poll_step(deps, task.task_id, 0)

    # THEN the first attempt keeps its failure and only the open one is closed
    done = deps.tasks.require(task.task_id)
    outcomes = [(a.provider, a.outcome) for a in done.attempts]
    assert outcomes == [("mountsea-compat", "failed"), ("mountsea-async", "completed")]
    assert all(a.finished_at is not None for a in done.attempts)
