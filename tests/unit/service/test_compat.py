"""The OpenAI-compatible call: submit an ordinary task, then wait for it on the provider's
latency schedule (injected clock: no sleeps; the dispatch function runs while the call waits)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from image_gateway.errors import InvalidRequest
from image_gateway.models.task import TaskStatus
from image_gateway.providers.base import ProviderState
from image_gateway.service.compat import Clock, CompatResult, create_and_wait, wait_budget
from image_gateway.service.dispatch import dispatch
from image_gateway.service.refresh import refresh_task
from image_gateway.timing import TimingPolicy

from tests.fakes import FakeDependencies, unavailable
from tests.unit.service.conftest import DepsFactory
from tests.unit.service.support import counted_reads, drain, fox

MOUNTSEA_LATENCY = 30.0  # MountseaAsyncProvider / mountsea-compat, quality auto
MOUNTSEA_INTERVAL = 3.0


class FakeClock:
    """Time that moves only when the call sleeps; ``meanwhile`` runs at every sleep (what the
    rest of the stack does while the call waits: the dispatch function, a callback...)."""

    def __init__(self, meanwhile: Callable[[], object] | None = None) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []
        self.meanwhile = meanwhile

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        if self.meanwhile is not None:
            self.meanwhile()

    @property
    def clock(self) -> Clock:
        return Clock(now=lambda: self.t, sleep=self.sleep)


def dispatch_one(deps: FakeDependencies) -> list[tuple[str, str]]:
    """The dispatch function on the attempts queued now (one round)."""
    batch = deps.dispatch_queue.take()
    for task_id, provider in batch:
        dispatch(deps, task_id, provider)
    return batch


def run(deps: FakeDependencies, clock: FakeClock, budget: float = 540.0, **fields: object):
    return create_and_wait(
        deps, fox(**fields), client_id="c", budget_seconds=budget, clock=clock.clock
    )


def test_a_sync_provider_is_called_by_the_compat_call_itself_and_never_waited_on_twice(
    deps: FakeDependencies,
) -> None:
    # GIVEN a sync provider, and the dispatch function running on whatever is queued
    clock = FakeClock(meanwhile=lambda: drain(deps))

    # WHEN the compat call runs
    result = run(deps, clock, provider="mountsea-compat")

    # THEN the call made the provider call itself: finished before any look or sleep
    task = result.outcome.task
    assert result.outcome.finished and task.status is TaskStatus.SUCCEEDED
    assert (result.outcome.looks, clock.sleeps) == (0, [])
    assert len(deps.providers.calls_to("mountsea-compat", "sync")) == 1
    # AND the safety-net attempt, queued past the function's timeout, does nothing later
    assert deps.dispatch_queue.delays == [TimingPolicy().compat_dispatch_safety_delay_seconds]
    dispatch_one(deps)
    assert len(deps.providers.calls_to("mountsea-compat", "sync")) == 1
    assert deps.events.for_task(task.task_id).count("Image Task Succeeded") == 1


def test_the_attempt_starts_from_the_task_its_submit_wrote(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a store that counts reads, up to the provider's sync call
    reads = counted_reads(deps, monkeypatch)
    at_call: list[list[str]] = []
    deps.providers.script("mountsea-compat").while_working = lambda: at_call.append(list(reads))

    # WHEN the compat call runs THEN the provider was called without the task read again
    # (dispatch read it once before, right after the submit wrote it)
    result = run(deps, FakeClock(), provider="mountsea-compat")

    assert result.outcome.task.status is TaskStatus.SUCCEEDED
    assert at_call == [[]]


def test_a_compat_call_that_dies_mid_attempt_leaves_it_to_the_dispatch_function(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the function dying inside the provider call (the task stays queued)
    import image_gateway.service.compat as compat

    def crash(*_: object, **__: object) -> None:
        raise SystemExit("Lambda timed out")

    monkeypatch.setattr(compat, "dispatch", crash)
    with pytest.raises(SystemExit):
        run(deps, FakeClock(), provider="mountsea-compat")

    # WHEN the delayed attempt reaches the dispatch function THEN it makes the call
    [(task_id, provider)] = dispatch_one(deps)
    assert provider == "mountsea-compat"
    assert deps.tasks.require(task_id).status is TaskStatus.SUCCEEDED


def test_a_failure_of_our_side_in_the_attempt_hands_it_to_the_dispatch_function_now(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the attempt failing on our side (a bug, an input download cut)
    import image_gateway.service.compat as compat

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(compat, "dispatch", broken)
    clock = FakeClock(meanwhile=lambda: dispatch_one(deps))

    # WHEN the compat call runs
    result = run(deps, clock, provider="mountsea-compat")

    # THEN an immediate attempt was queued next to the delayed one, and the task finished
    assert deps.dispatch_queue.delays == [TimingPolicy().compat_dispatch_safety_delay_seconds, 0]
    assert result.outcome.task.status is TaskStatus.SUCCEEDED


def test_a_polled_provider_is_asked_on_the_backoff_and_finalised_by_the_call(
    deps: FakeDependencies,
) -> None:
    # GIVEN an async provider without callbacks that is still working at the first two looks
    deps.providers.script("mountsea-async").statuses = [
        ProviderState.RUNNING,
        ProviderState.RUNNING,
        ProviderState.SUCCEEDED,
    ]
    clock = FakeClock(meanwhile=lambda: drain(deps))

    # WHEN the compat call runs
    result = run(deps, clock, provider="mountsea-async")

    # THEN it waits the expected latency, then the policy's backoff from the poll interval,
    # and the third look (a status call) stores the image and ends the task
    timing = deps.timing
    assert clock.sleeps == [
        pytest.approx(MOUNTSEA_LATENCY, abs=0.5),
        timing.compat_look_wait(MOUNTSEA_INTERVAL, 0),
        timing.compat_look_wait(MOUNTSEA_INTERVAL, 1),
    ]
    task = result.outcome.task
    assert task.status is TaskStatus.SUCCEEDED and task.finalized_by == "compat"
    assert len(deps.providers.calls_to("mountsea-async", "status")) == 3
    assert deps.events.for_task(task.task_id)[-1] == "Image Task Succeeded"


def test_later_looks_never_wait_longer_than_the_cap(make_deps: DepsFactory) -> None:
    # GIVEN a policy whose looks are capped at 4 s and a provider that takes long
    deps = make_deps(timing=TimingPolicy(compat_look_cap_seconds=4.0))
    deps.providers.script("mountsea-async").statuses = [ProviderState.RUNNING] * 6 + [
        ProviderState.SUCCEEDED
    ]
    clock = FakeClock(meanwhile=lambda: drain(deps))

    # WHEN the compat call runs
    result = run(deps, clock, provider="mountsea-async")

    # THEN after the first wait every wait is 3 s x 1.5^n, at most 4 s
    assert result.outcome.finished
    assert clock.sleeps[1:] == [3.0, 4.0, 4.0, 4.0, 4.0, 4.0]


def test_the_wait_ends_at_its_budget_with_the_task_still_open(deps: FakeDependencies) -> None:
    # GIVEN a provider that never finishes
    deps.providers.script("mountsea-async").statuses = [ProviderState.RUNNING]
    clock = FakeClock(meanwhile=lambda: drain(deps))

    # WHEN the call may wait 60 s
    result = run(deps, clock, budget=60.0, provider="mountsea-async")

    # THEN it stops at exactly 60 s, the task open (it goes on: the poll loop still runs)
    assert not result.outcome.finished
    assert result.outcome.task.status is TaskStatus.RUNNING
    assert sum(clock.sleeps) == pytest.approx(60.0)
    assert deps.poll_loops.started == {result.outcome.task.task_id: 30}


def test_a_fallback_in_the_attempt_is_followed_by_the_dispatch_function(
    deps: FakeDependencies,
) -> None:
    # GIVEN apimart down at create, mountsea-compat (sync) next in the list
    deps.providers.script("apimart").create_error = unavailable("apimart")
    clock = FakeClock(meanwhile=lambda: dispatch_one(deps))

    # WHEN the compat call runs (its own attempt fails over; the dispatch function takes the next)
    result = run(deps, clock, providers=["apimart", "mountsea-compat"], aspect_ratio="1:1")

    # THEN the first look, at the sync provider's latency, finds the task finished by it
    assert clock.sleeps == [pytest.approx(MOUNTSEA_LATENCY, abs=0.5)]
    assert result.outcome.task.status is TaskStatus.SUCCEEDED
    assert result.outcome.task.provider == "mountsea-compat"
    assert result.outcome.task.finalized_by == "dispatch"


def test_after_a_fallback_in_the_attempt_the_first_wait_is_the_next_providers_latency(
    deps: FakeDependencies,
) -> None:
    # GIVEN apimart down at create, mountsea-async (polled) next in the list
    deps.providers.script("apimart").create_error = unavailable("apimart")
    clock = FakeClock(meanwhile=lambda: dispatch_one(deps))

    # WHEN the compat call runs (its own attempt at apimart fails over to mountsea-async)
    result = run(deps, clock, providers=["apimart", "mountsea-async"], aspect_ratio="1:1")

    # THEN its first wait was mountsea's expected latency (the task had moved), not apimart's
    assert clock.sleeps[0] == pytest.approx(MOUNTSEA_LATENCY, abs=0.5)
    assert result.outcome.task.status is TaskStatus.SUCCEEDED
    assert result.outcome.task.provider == "mountsea-async"


def test_a_task_a_callback_finished_first_is_found_finished(deps: FakeDependencies) -> None:
    # GIVEN apimart (callback) whose callback is finalised while the call waits
    def meanwhile() -> None:
        for task_id, _ in dispatch_one(deps):
            refresh_task(deps, task_id, by="callback")

    clock = FakeClock(meanwhile=meanwhile)

    # WHEN the compat call runs
    result = run(deps, clock, provider="apimart", aspect_ratio="1:1")

    # THEN the callback's finaliser won; the call found the task finished; one success event
    task = result.outcome.task
    assert task.status is TaskStatus.SUCCEEDED and task.finalized_by == "callback"
    assert deps.events.for_task(task.task_id).count("Image Task Succeeded") == 1


def test_a_transient_provider_error_at_a_look_is_looked_at_again(
    deps: FakeDependencies,
) -> None:
    # GIVEN a provider whose status call fails once, then succeeds
    deps.providers.script("mountsea-async").statuses = [
        unavailable("mountsea-async"),
        ProviderState.SUCCEEDED,
    ]
    clock = FakeClock(meanwhile=lambda: drain(deps))

    # WHEN the compat call runs THEN the second look finishes the task
    result = run(deps, clock, provider="mountsea-async")

    assert result.outcome.looks == 2
    assert result.outcome.task.status is TaskStatus.SUCCEEDED


def test_a_refused_request_raises_before_anything_is_written(deps: FakeDependencies) -> None:
    # GIVEN an unknown provider WHEN the call runs THEN the submit refusal comes through
    with pytest.raises(InvalidRequest):
        run(deps, FakeClock(), provider="nobody")
    assert deps.tasks.writes == 0


def test_the_budget_is_the_policy_and_leaves_time_to_answer(make_deps: DepsFactory) -> None:
    deps = make_deps(time_scale=0.5)
    margin = deps.timing.compat_answer_margin_seconds

    assert wait_budget(deps, None) == deps.timing.compat_wait_seconds * 0.5
    assert wait_budget(deps, 100.0) == 100.0 - margin
    assert wait_budget(deps, 5.0) == 0.0


def test_an_idempotent_replay_answers_the_first_task_without_a_second(
    deps: FakeDependencies,
) -> None:
    # GIVEN a finished compat call made with an Idempotency-Key
    def call() -> CompatResult:
        return create_and_wait(
            deps,
            fox(provider="mountsea-compat"),
            client_id="c",
            budget_seconds=540.0,
            idempotency_key="order-7",
            clock=FakeClock(meanwhile=lambda: drain(deps)).clock,
        )

    first = call()

    # WHEN the SDK sends it again (a lost answer)
    again = call()

    # THEN the same task comes back, finished, and nothing new was sent to a provider
    assert again.replayed and again.outcome.task.task_id == first.outcome.task.task_id
    assert again.outcome.finished and again.outcome.looks == 0
    assert len(deps.providers.calls_to("mountsea-compat", "sync")) == 1
