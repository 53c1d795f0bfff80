"""The sweep: late callbacks polled once (in batches where the provider allows), overdue tasks
expired, missing events re-emitted, and every open task given its next check time."""

from __future__ import annotations

import math
from datetime import timedelta

from image_gateway.models.request import ImageRequest, Operation
from image_gateway.models.task import Task, TaskError, TaskStatus, utc_now
from image_gateway.providers.base import ProviderState
from image_gateway.service.lifecycle import fail_task
from image_gateway.service.submit import submit_task
from image_gateway.service.sweep import sweep
from image_gateway.timing import TimingPolicy

from tests.fakes import FakeDependencies, unavailable
from tests.unit.service.conftest import DepsFactory
from tests.unit.service.support import fox, make_due, make_overdue, submit_and_dispatch


def late_callback(deps: FakeDependencies, provider: str = "apimart") -> Task:
    """A task whose callback grace has passed without a callback (due, not overdue)."""
    task = submit_and_dispatch(deps, fox(provider=provider), client_id="c").task
    return make_due(deps, task.task_id)


def single_reads(deps: FakeDependencies) -> int:
    return len(deps.providers.calls_to("apimart", "status"))


def batches(deps: FakeDependencies) -> list[int]:
    return [
        len(c.provider_task_ids or []) for c in deps.providers.calls_to("apimart", "batch_status")
    ]


# -- late callbacks ------------------------------------------------------------------------------
def test_a_task_whose_callback_is_late_is_polled_once(deps: FakeDependencies) -> None:
    # GIVEN an apimart task whose callback did not come within the grace WHEN the sweep runs
    deps.providers.script("apimart").statuses = [ProviderState.RUNNING]
    task = late_callback(deps)

    seen = sweep(deps)

    # THEN the provider is asked once, the task is running, and it is looked at again later
    assert seen == [task.task_id]
    assert single_reads(deps) == 1
    stored = deps.tasks.require(task.task_id)
    assert stored.status is TaskStatus.RUNNING
    assert stored.check_at is not None and stored.check_at > utc_now()


def test_a_late_callback_task_the_provider_finished_is_finalised(
    deps: FakeDependencies,
) -> None:
    # GIVEN a late callback and the provider done WHEN the sweep runs THEN the task succeeds
    task = late_callback(deps)

    sweep(deps)

    stored = deps.tasks.require(task.task_id)
    assert (stored.status, stored.finalized_by) == (TaskStatus.SUCCEEDED, "sweeper")
    assert deps.events.for_task(task.task_id)[-1] == "Image Task Succeeded"


def test_a_task_that_is_not_due_is_left_alone(deps: FakeDependencies) -> None:
    # GIVEN a task still within its callback grace WHEN the sweep runs THEN nobody is asked
    submit_and_dispatch(deps, fox(provider="apimart"), client_id="c")

    assert sweep(deps) == []
    assert single_reads(deps) == 0


def test_an_open_task_is_looked_at_again_after_the_recheck_interval(
    deps: FakeDependencies,
) -> None:
    # GIVEN a late callback the provider is still working on WHEN swept
    deps.providers.script("apimart").statuses = [ProviderState.RUNNING]
    task = late_callback(deps)
    before = utc_now()

    sweep(deps)

    # THEN its next check is timing.sweep_recheck_seconds away
    stored = deps.tasks.require(task.task_id)
    assert stored.check_at is not None
    step = timedelta(seconds=deps.timing.sweep_recheck_seconds)
    assert before + step <= stored.check_at <= utc_now() + step


def test_the_recheck_never_goes_past_the_deadline(deps: FakeDependencies) -> None:
    # GIVEN a late callback whose deadline is 10 s away (sooner than the 60 s recheck)
    deps.providers.script("apimart").statuses = [ProviderState.RUNNING]
    task = late_callback(deps)
    deadline = utc_now() + timedelta(seconds=10)
    deps.tasks.update(task.task_id, lambda t: setattr(t, "deadline_at", deadline))

    # WHEN swept THEN it is looked at again at its deadline
    sweep(deps)

    assert deps.tasks.require(task.task_id).check_at == deadline


def test_a_provider_outage_only_postpones_the_next_look(deps: FakeDependencies) -> None:
    # GIVEN the provider answering 503 WHEN the sweep polls a late callback
    # THEN the task stays open, due again after the recheck interval
    deps.providers.script("apimart").statuses = [unavailable("apimart")]
    task = late_callback(deps)

    sweep(deps)

    stored = deps.tasks.require(task.task_id)
    assert stored.status is TaskStatus.SUBMITTED
    assert stored.check_at is not None and stored.check_at > utc_now()


# -- batched status reads ------------------------------------------------------------------------
def test_due_tasks_of_a_batch_provider_are_read_in_batches(deps: FakeDependencies) -> None:
    # GIVEN 45 late apimart tasks (apimart has a batch status query)
    tasks = [late_callback(deps) for _ in range(45)]

    # WHEN swept THEN they are read in groups of timing.batch_status_size, none one by one
    sweep(deps)

    size = deps.timing.batch_status_size
    assert len(batches(deps)) == math.ceil(45 / size)
    assert max(batches(deps)) == size and sum(batches(deps)) == 45
    assert single_reads(deps) == 0
    assert {deps.tasks.require(t.task_id).status for t in tasks} == {TaskStatus.SUCCEEDED}


def test_the_batch_size_is_the_injected_policy(make_deps: DepsFactory) -> None:
    # GIVEN a policy of 4 tasks per batch query and 10 late tasks WHEN swept THEN 4 + 4 + 2
    deps = make_deps(timing=TimingPolicy(batch_status_size=4))
    for _ in range(10):
        late_callback(deps)

    sweep(deps)

    assert batches(deps) == [4, 4, 2]


def test_a_lone_task_is_read_on_its_own(deps: FakeDependencies) -> None:
    # GIVEN one late apimart task WHEN swept THEN a single status read, no batch query
    late_callback(deps)

    sweep(deps)

    assert (batches(deps), single_reads(deps)) == ([], 1)


def test_providers_without_a_batch_query_are_read_one_by_one(deps: FakeDependencies) -> None:
    # GIVEN three due tasks at mountsea-async (no batch query) WHEN swept
    # THEN three single reads
    for _ in range(3):
        late_callback(deps, "mountsea-async")

    sweep(deps)

    assert len(deps.providers.calls_to("mountsea-async", "status")) == 3
    assert deps.providers.calls_to("mountsea-async", "batch_status") == []


def test_a_failed_batch_query_falls_back_to_single_reads(deps: FakeDependencies) -> None:
    # GIVEN apimart's batch query failing WHEN two late tasks are swept
    # THEN each is read on its own, and both are finalised
    deps.providers.script("apimart").batch_error = unavailable("apimart")
    tasks = [late_callback(deps) for _ in range(2)]

    sweep(deps)

    assert single_reads(deps) == 2
    assert {deps.tasks.require(t.task_id).status for t in tasks} == {TaskStatus.SUCCEEDED}


def test_a_task_the_batch_answer_leaves_out_is_read_on_its_own(deps: FakeDependencies) -> None:
    # GIVEN two late tasks, one of which apimart's batch answer does not know
    known = late_callback(deps)
    unknown = late_callback(deps)
    deps.tasks.update(unknown.task_id, lambda t: setattr(t, "provider_task_id", "apimart-lost"))

    # WHEN swept THEN the known one comes from the batch, the other is asked for alone
    sweep(deps)

    assert [c.provider_task_id for c in deps.providers.calls_to("apimart", "status")] == [
        "apimart-lost"
    ]
    assert deps.tasks.require(known.task_id).status is TaskStatus.SUCCEEDED


def test_a_sweep_out_of_time_reads_no_page_after_its_first(make_deps: DepsFactory) -> None:
    # GIVEN sweep_due_per_shard = 2, three due tasks, and a first page that took the whole run
    deps = make_deps(timing=TimingPolicy(sweep_due_per_shard=2, sweep_run_seconds=45))
    for _ in range(3):
        late_callback(deps)
    ticks = iter([0.0, 46.0])

    # WHEN swept THEN two are looked at; the third waits for the next run
    assert len(sweep(deps, clock=lambda: next(ticks))) == 2


def test_a_sweep_with_time_left_reads_page_after_page_until_none_is_due(
    make_deps: DepsFactory,
) -> None:
    # GIVEN sweep_due_per_shard = 2 and seven due tasks, and a run that has time
    deps = make_deps(timing=TimingPolicy(sweep_due_per_shard=2))
    tasks = {late_callback(deps).task_id for _ in range(7)}

    # WHEN swept THEN every one is looked at, once
    seen = sweep(deps, clock=lambda: 0.0)
    assert sorted(seen) == sorted(tasks)


# -- overdue tasks -------------------------------------------------------------------------------
def test_an_overdue_task_is_polled_once_more_then_expired(deps: FakeDependencies) -> None:
    # GIVEN a task past its deadline that the provider is still working on WHEN swept
    deps.providers.script("mountsea-async").statuses = [ProviderState.RUNNING]
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task
    make_overdue(deps, task.task_id)

    sweep(deps)

    # THEN it was asked once more, then expired with its event
    assert len(deps.providers.calls_to("mountsea-async", "status")) == 1
    assert deps.tasks.require(task.task_id).status is TaskStatus.EXPIRED
    assert deps.events.for_task(task.task_id)[-1] == "Image Task Expired"


def test_an_overdue_task_the_provider_finished_is_kept(deps: FakeDependencies) -> None:
    # GIVEN a task past its deadline whose result is ready WHEN swept THEN it succeeds
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task
    make_overdue(deps, task.task_id)

    sweep(deps)

    assert deps.tasks.require(task.task_id).status is TaskStatus.SUCCEEDED


def test_an_overdue_sync_task_is_expired(deps: FakeDependencies) -> None:
    # GIVEN a task whose dispatch never came, past its deadline WHEN swept
    # THEN it expires (there is no provider task to ask)
    task = submit_task(deps, fox(provider="mountsea-compat"), client_id="c").task
    make_overdue(deps, task.task_id)

    sweep(deps)

    assert deps.tasks.require(task.task_id).status is TaskStatus.EXPIRED
    assert deps.providers.calls == []


def test_a_task_left_queued_by_a_crash_is_ended_at_its_deadline(
    deps: FakeDependencies,
) -> None:
    # GIVEN a task written but never handed to a provider (the API died in between)
    now = utc_now()
    deps.tasks.create(
        Task(
            task_id="tsk_orphan",
            client_id="c",
            operation=Operation.GENERATE,
            model="gpt-image-2",
            provider="apimart",
            request=ImageRequest(prompt="a fox"),
            created_at=now,
            updated_at=now,
            deadline_at=now - timedelta(seconds=1),
            check_at=now - timedelta(seconds=1),
        )
    )

    # WHEN the sweep runs past its deadline
    sweep(deps)

    # THEN the task ends, announced, and is not swept again
    stored = deps.tasks.require("tsk_orphan")
    assert stored.status.terminal
    assert deps.events.for_task("tsk_orphan") != []
    assert sweep(deps) == []


# -- missing events ------------------------------------------------------------------------------
def test_a_just_finished_tasks_missing_event_waits_for_the_recheck_time(
    deps: FakeDependencies,
) -> None:
    # GIVEN a task that just failed while EventBridge refused its event
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task
    deps.events.refuse_next = 1
    fail_task(deps, task.task_id, TaskError(code="x", message="y"), by="poll")

    # WHEN the sweep runs at once THEN it does not look (the winner may still be publishing)
    assert sweep(deps) == []
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted"]


def test_a_terminal_event_the_bus_refused_is_emitted_by_the_sweep(
    deps: FakeDependencies,
) -> None:
    # GIVEN a task that failed while EventBridge refused its event
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task
    deps.events.refuse_next = 1
    fail_task(deps, task.task_id, TaskError(code="x", message="y"), by="poll")
    make_due(deps, task.task_id)  # the event recheck time has passed

    # WHEN the sweep runs (twice) THEN the Failed event goes out exactly once
    assert sweep(deps) == [task.task_id]
    assert sweep(deps) == []
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted", "Image Task Failed"]


def test_a_refused_event_stays_due_until_the_bus_takes_it(deps: FakeDependencies) -> None:
    # GIVEN a failed task whose event the bus refuses on the first sweep too
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task
    deps.events.refuse_next = 2
    fail_task(deps, task.task_id, TaskError(code="x", message="y"), by="poll")
    make_due(deps, task.task_id)

    # WHEN swept twice THEN the second sweep emits it
    sweep(deps)
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted"]
    sweep(deps)

    assert deps.events.for_task(task.task_id) == ["Image Task Submitted", "Image Task Failed"]


def test_a_refused_submitted_event_is_emitted_by_the_sweep(deps: FakeDependencies) -> None:
    # GIVEN a task handed over while EventBridge refused its Submitted event
    deps.providers.script("mountsea-async").statuses = [ProviderState.RUNNING]
    deps.events.refuse_next = 1
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task
    make_due(deps, task.task_id)

    # WHEN the sweep looks at it
    sweep(deps)

    # THEN the Submitted event goes out
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted"]
