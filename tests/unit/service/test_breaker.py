"""The provider circuit breaker in the flows: counted in shared state, skipped while open,
one trial when half-open, closed or opened again by it; on fakes, with a clock moved by hand."""

from __future__ import annotations

from typing import Any

import pytest
from image_gateway.errors import ProviderBadResponse, ProviderRejected
from image_gateway.health.breaker import BreakerPolicy
from image_gateway.health.circuit import Circuit, CircuitState
from image_gateway.models.task import Task, TaskStatus
from image_gateway.service.dispatch import dispatch
from image_gateway.service.health import admit, policy_for, read_circuits
from image_gateway.service.submit import submit_task

from tests.fakes import FakeDependencies, unavailable
from tests.unit.service.conftest import DepsFactory
from tests.unit.service.support import drain, fox, submit_and_dispatch

FAILURES, WINDOW, COOLDOWN = 3, 60.0, 30.0
PAIR = ["apimart", "mountsea-async"]


@pytest.fixture
def deps(deps: FakeDependencies) -> FakeDependencies:
    """apimart's breaker opens after 3 retryable failures within 60 s, for 30 s."""
    deps.configure(
        breaker={
            "apimart": {
                "failures": FAILURES,
                "window_seconds": WINDOW,
                "cooldown_seconds": COOLDOWN,
            }
        }
    )
    return deps


def apimart_down(deps: FakeDependencies) -> None:
    deps.providers.script("apimart").create_error = unavailable("apimart")


def apimart_up(deps: FakeDependencies) -> None:
    deps.providers.script("apimart").create_error = None


def run(deps: FakeDependencies, providers: list[str] | None = None, **fields: Any) -> Task:
    """Submit a task (apimart first, then mountsea-async) and dispatch every attempt."""
    request = fox(providers=providers or PAIR, **fields)
    return submit_and_dispatch(deps, request, client_id="c").task


def circuit(deps: FakeDependencies, provider: str = "apimart") -> Circuit:
    return deps.health.circuits.get(provider)


def open_apimart(deps: FakeDependencies) -> None:
    apimart_down(deps)
    for _ in range(FAILURES):
        run(deps)
    assert circuit(deps).state is CircuitState.OPEN


def apimart_creates(deps: FakeDependencies) -> int:
    return len(deps.providers.calls_to("apimart", "create"))


# -- counting --------------------------------------------------------------------------------------
def test_n_retryable_failures_within_the_window_open_the_breaker_once(
    deps: FakeDependencies,
) -> None:
    # GIVEN apimart answering 503 WHEN three tasks try it within the window
    apimart_down(deps)
    tasks = [run(deps) for _ in range(FAILURES)]

    # THEN each fell back and succeeded, and the third failure opened the breaker for 30 s
    assert all(t.status is TaskStatus.SUBMITTED and t.provider == "mountsea-async" for t in tasks)
    opened = circuit(deps)
    assert opened.state is CircuitState.OPEN
    assert opened.open_until == deps.health.now() + COOLDOWN
    # AND the change was announced once, with its metric
    (event,) = deps.health.events.published
    assert (event.provider, event.state, event.previous_state) == ("apimart", "open", "closed")
    assert event.task_id == tasks[-1].task_id
    assert "3 retryable failures within 60 s" in event.reason
    assert deps.metrics.values("ProviderCircuitChanged", Provider="apimart", State="open") == [1]


def test_failures_spread_over_more_than_the_window_do_not_open_it(deps: FakeDependencies) -> None:
    apimart_down(deps)
    run(deps)
    run(deps)
    deps.health.advance(WINDOW + 1)  # the first two fall out of the window

    run(deps)

    assert circuit(deps).state is CircuitState.CLOSED
    assert len(circuit(deps).failures) == 1


def test_a_success_starts_the_count_again(deps: FakeDependencies) -> None:
    apimart_down(deps)
    run(deps)
    run(deps)
    apimart_up(deps)
    run(deps)  # a success
    apimart_down(deps)

    run(deps)
    run(deps)

    assert circuit(deps).state is CircuitState.CLOSED
    assert circuit(deps).recent == "FFSFF"
    assert circuit(deps).success_rate == 0.2


@pytest.mark.parametrize(
    "error",
    [
        ProviderRejected("blocked", provider="apimart", code="moderation_blocked"),
        ProviderRejected("bad input", provider="apimart", code="invalid_request"),
    ],
    ids=["moderation", "bad-input"],
)
def test_moderation_and_bad_input_never_count(
    deps: FakeDependencies, error: ProviderRejected
) -> None:
    # GIVEN apimart refusing the requests themselves WHEN it does so more than N times
    deps.providers.script("apimart").create_error = error
    tasks = [run(deps) for _ in range(FAILURES + 2)]

    # THEN the tasks failed (no fallback) and the breaker has nothing against apimart
    assert all(t.status is TaskStatus.FAILED for t in tasks)
    assert circuit(deps) == Circuit("apimart")
    assert deps.health.circuits.writes == 0
    assert deps.health.events.published == []


def test_answers_that_break_the_providers_own_documentation_count(
    deps: FakeDependencies,
) -> None:
    deps.providers.script("apimart").create_error = ProviderBadResponse(
        "apimart answered <html>", provider="apimart"
    )
    for _ in range(FAILURES):
        assert run(deps).status is TaskStatus.FAILED  # not retryable: the task ends

    assert circuit(deps).state is CircuitState.OPEN


def test_a_provider_without_a_key_is_our_configuration_not_its_health(
    deps: FakeDependencies,
) -> None:
    deps.providers.keyless.add("apimart")
    for _ in range(FAILURES + 1):
        run(deps)

    assert circuit(deps) == Circuit("apimart")


# -- open: skipped -------------------------------------------------------------------------------
def test_while_open_new_tasks_go_straight_to_the_next_provider(deps: FakeDependencies) -> None:
    # GIVEN apimart's breaker open
    open_apimart(deps)
    calls_before = apimart_creates(deps)

    # WHEN two more tasks list apimart first
    tasks = [run(deps) for _ in range(2)]

    # THEN routing put mountsea-async first: apimart got no call, nobody paid its failure
    assert apimart_creates(deps) == calls_before
    for task in tasks:
        assert (task.status, task.provider) == (TaskStatus.SUBMITTED, "mountsea-async")
        assert [(a.provider, a.outcome) for a in task.attempts] == [("mountsea-async", "submitted")]
        assert task.fallbacks == ["apimart"]


def test_an_attempt_queued_before_the_breaker_opened_skips_it_at_dispatch(
    deps: FakeDependencies,
) -> None:
    # GIVEN a task queued for apimart, and then apimart's breaker opening
    waiting = submit_task(deps, fox(providers=PAIR), client_id="c").task
    assert deps.dispatch_queue.take() == [(waiting.task_id, "apimart")]
    open_apimart(deps)
    calls_before = apimart_creates(deps)

    # WHEN its attempt is dispatched
    dispatch(deps, waiting.task_id, "apimart")
    drain(deps)

    # THEN it was not sent to apimart: it moved on to mountsea-async, the skip on the record
    task = deps.tasks.require(waiting.task_id)
    assert apimart_creates(deps) == calls_before
    assert (task.provider, task.status) == ("mountsea-async", TaskStatus.SUBMITTED)
    assert task.attempts[0].error is not None
    assert task.attempts[0].error.code == "provider_circuit_open"
    assert circuit(deps).recent == "FFF"  # the skip is not one of apimart's calls


def test_a_routing_decision_reads_the_breakers_once(deps: FakeDependencies) -> None:
    reads = deps.health.circuits.reads

    submit_task(deps, fox(providers=PAIR), client_id="c")

    assert deps.health.circuits.reads == reads + 1


def test_a_healthy_providers_steady_successes_write_nothing(deps: FakeDependencies) -> None:
    # GIVEN apimart whose last 20 calls all succeeded
    for _ in range(deps.timing.breaker_recent_calls):
        run(deps, ["apimart"])
    writes = deps.health.circuits.writes

    # WHEN it succeeds again THEN its circuit is not written
    run(deps, ["apimart"])

    assert deps.health.circuits.writes == writes
    assert circuit(deps).success_rate == 1.0


# -- half-open: one trial ------------------------------------------------------------------------
def test_after_the_cool_down_one_trial_that_succeeds_closes_the_breaker(
    deps: FakeDependencies,
) -> None:
    # GIVEN apimart open, healthy again, and its cool-down over
    open_apimart(deps)
    apimart_up(deps)
    deps.health.advance(COOLDOWN)

    # WHEN a task lists it first
    trial = run(deps)

    # THEN the task is apimart's trial, which closed the breaker, and apimart is first again
    assert (trial.provider, trial.status) == ("apimart", TaskStatus.SUBMITTED)
    assert circuit(deps).state is CircuitState.CLOSED
    assert deps.health.events.states("apimart") == ["open", "half_open", "closed"]
    assert run(deps).provider == "apimart"
    assert deps.metrics.values("ProviderCircuitChanged", State="closed") == [1]


def test_a_trial_that_fails_opens_the_breaker_for_another_cool_down(
    deps: FakeDependencies,
) -> None:
    open_apimart(deps)
    deps.health.advance(COOLDOWN + 5)

    trial = run(deps)

    # THEN the trial's failure reopened it; the task itself fell back as usual
    assert (trial.provider, trial.status) == ("mountsea-async", TaskStatus.SUBMITTED)
    reopened = circuit(deps)
    assert reopened.state is CircuitState.OPEN
    assert reopened.open_until == deps.health.now() + COOLDOWN
    assert deps.health.events.states("apimart") == ["open", "half_open", "open"]
    assert "the trial call failed: provider_unavailable" in deps.health.events.published[-1].reason


def test_concurrent_dispatchers_let_exactly_one_trial_through(deps: FakeDependencies) -> None:
    # GIVEN apimart half-open, and two tasks queued for it, whose dispatchers both read the
    # breakers before either claimed the trial
    open_apimart(deps)
    deps.health.advance(COOLDOWN)
    first, second = (submit_task(deps, fox(providers=PAIR), client_id="c").task for _ in "ab")
    assert first.provider == second.provider == "apimart"
    seen = read_circuits(deps)

    # WHEN both ask to call apimart
    gates = [admit(deps, t, seen, lambda: ["mountsea-async"], 80.0) for t in (first, second)]

    # THEN the first holds the trial (a conditional write), the second is sent elsewhere
    assert gates[0] is not None and gates[0].ticket == "trial"
    assert gates[1] is None
    held = circuit(deps)
    assert (held.state, held.trial_holder) == (CircuitState.HALF_OPEN, first.task_id)
    assert deps.health.events.states("apimart") == ["open", "half_open"]


def test_a_trial_lost_to_a_racing_writer_is_not_taken_twice(deps: FakeDependencies) -> None:
    # GIVEN apimart half-open, and another dispatcher claiming the trial just before our write
    open_apimart(deps)
    deps.health.advance(COOLDOWN)
    ours, theirs = (submit_task(deps, fox(providers=PAIR), client_id="c").task for _ in "ab")
    deps.health.circuits.before_next_put(
        lambda: admit(deps, theirs, read_circuits(deps), lambda: ["mountsea-async"], 80.0)
    )

    gate = admit(deps, ours, read_circuits(deps), lambda: ["mountsea-async"], 80.0)

    assert gate is None
    assert circuit(deps).trial_holder == theirs.task_id


def test_a_trial_whose_holder_crashed_is_free_again_after_its_lease(
    deps: FakeDependencies,
) -> None:
    open_apimart(deps)
    deps.health.advance(COOLDOWN)
    crashed, later = (submit_task(deps, fox(providers=PAIR), client_id="c").task for _ in "ab")
    assert admit(deps, crashed, read_circuits(deps), list, 80.0) is not None  # then it dies
    assert admit(deps, later, read_circuits(deps), lambda: ["mountsea-async"], 80.0) is None

    deps.health.advance(80.0)

    gate = admit(deps, later, read_circuits(deps), lambda: ["mountsea-async"], 80.0)
    assert gate is not None and gate.ticket == "trial"


def test_a_trial_that_never_reached_the_provider_is_given_back(deps: FakeDependencies) -> None:
    # GIVEN apimart half-open and at its concurrency limit
    open_apimart(deps)
    deps.health.advance(COOLDOWN)
    deps.configure(concurrency={"apimart": 1}, breaker={"apimart": {"failures": FAILURES}})
    assert deps.slots.acquire("apimart", "someone", limit=1, lease_seconds=300) is not None
    task = submit_task(deps, fox(providers=PAIR), client_id="c").task
    deps.dispatch_queue.take()

    # WHEN its attempt finds no free slot and is queued again
    dispatch(deps, task.task_id, "apimart")

    # THEN the trial it claimed is free for the next caller at once
    assert deps.dispatch_queue.messages == [(task.task_id, "apimart")]
    assert circuit(deps).trial_holder is None
    assert admit(deps, task, read_circuits(deps), list, 80.0) is not None


# -- every candidate open -------------------------------------------------------------------------
def test_with_every_candidate_open_the_one_reopening_first_gets_the_call(
    deps: FakeDependencies,
) -> None:
    # GIVEN apimart opened first, then mountsea-async, both still cooling down
    deps.configure(
        breaker={n: {"failures": 1, "cooldown_seconds": COOLDOWN} for n in PAIR},
    )
    deps.providers.script("apimart").create_error = unavailable("apimart")
    run(deps, ["apimart"])
    deps.health.advance(5)
    deps.providers.script("mountsea-async").create_error = unavailable("mountsea-async")
    run(deps, ["mountsea-async"])
    assert {n: circuit(deps, n).state for n in PAIR} == dict.fromkeys(PAIR, CircuitState.OPEN)
    apimart_up(deps)

    # WHEN a task lists mountsea-async first
    task = run(deps, ["mountsea-async", "apimart"])

    # THEN it is not stranded: apimart, whose cool-down ends first, got the call, and its
    # success closed apimart's breaker
    assert (task.provider, task.status) == ("apimart", TaskStatus.SUBMITTED)
    assert [a.provider for a in task.attempts] == ["apimart"]
    assert circuit(deps).state is CircuitState.CLOSED
    assert circuit(deps, "mountsea-async").state is CircuitState.OPEN
    assert "every candidate was open" in deps.health.events.published[-1].reason


def test_a_pinned_provider_is_called_even_while_its_breaker_is_open(
    deps: FakeDependencies,
) -> None:
    open_apimart(deps)
    calls_before = apimart_creates(deps)

    task = run(deps, ["apimart"])

    assert apimart_creates(deps) == calls_before + 1
    assert task.status is TaskStatus.FAILED  # still down: the caller hears it at once
    assert task.error is not None and task.error.code == "provider_unavailable"
    assert circuit(deps).state is CircuitState.OPEN


# -- announcements -------------------------------------------------------------------------------
def test_a_refused_event_leaves_the_state_and_its_metric(deps: FakeDependencies) -> None:
    deps.health.events.refuse = True

    open_apimart(deps)

    assert deps.health.events.published == []
    assert deps.metrics.values("ProviderCircuitChanged", Provider="apimart") == [1]


def test_only_the_writer_that_wins_a_change_announces_it(deps: FakeDependencies) -> None:
    # GIVEN two failures counted, and a third racing in from another dispatcher
    apimart_down(deps)
    run(deps)
    run(deps)
    racer = submit_task(deps, fox(providers=PAIR), client_id="c").task
    ours = submit_task(deps, fox(providers=PAIR), client_id="c").task
    deps.dispatch_queue.take()
    deps.health.circuits.before_next_put(lambda: dispatch(deps, racer.task_id, "apimart"))

    # WHEN ours loses the write, reads again and counts its own failure
    dispatch(deps, ours.task_id, "apimart")

    # THEN the breaker opened once (by the racer), announced once
    assert circuit(deps).state is CircuitState.OPEN
    assert circuit(deps).recent == "FFFF"
    assert deps.health.events.states("apimart") == ["open"]
    assert deps.health.events.published[0].task_id == racer.task_id


# -- thresholds ------------------------------------------------------------------------------------
def test_unset_thresholds_are_the_timing_policys_under_the_stacks_time_scale(
    make_deps: DepsFactory,
) -> None:
    # GIVEN devstack's time scale and a parameter that sets only apimart's failures
    scaled = make_deps(time_scale=0.02)
    scaled.configure(breaker={"apimart": {"failures": 2}})

    # THEN apimart opens after 2, within 60 s x 0.02, for 30 s x 0.02; pmock has every default
    assert policy_for(scaled, "apimart") == BreakerPolicy(2, 1.2, 0.6, 20)
    assert policy_for(scaled, "pmock") == BreakerPolicy(5, 1.2, 0.6, 20)


def test_a_trial_that_found_no_key_is_given_back_not_judged(deps: FakeDependencies) -> None:
    # GIVEN apimart half-open, and its key missing from the secret
    open_apimart(deps)
    deps.health.advance(COOLDOWN)
    deps.providers.keyless.add("apimart")

    # WHEN a task's trial call cannot even be made
    task = run(deps)

    # THEN the task moved on, and apimart's trial is free again, the breaker neither closed
    # nor opened again by it
    assert task.provider == "mountsea-async"
    assert circuit(deps).state is CircuitState.OPEN
    assert circuit(deps).open_until == deps.health.now()
    assert deps.health.events.states("apimart") == ["open", "half_open"]
