"""Hedging (``health.hedging``, ``service.hedging``, ``service.hedge_dispatch``): when a hedging
task's first provider has not finished by its measured p90, the next provider of its ranking is
started too; the first image stored wins, the other attempt is superseded and its price
counted."""

from __future__ import annotations

import threading
from typing import Any

from image_gateway.health.hedging import (
    HEDGE_STEM_SUFFIX,
    MAX_DELAY_SECONDS,
    UNMEASURED_FACTOR,
    hedge_delay,
)
from image_gateway.health.measure import Measured, Sample
from image_gateway.models.request import Operation
from image_gateway.models.task import Task, TaskStatus
from image_gateway.providers.base import ProviderState
from image_gateway.service.hedge_dispatch import dispatch_hedge
from image_gateway.service.refresh import finalize_success, refresh_task
from image_gateway.service.submit import submit_task

from tests.fakes import FakeDependencies, unavailable
from tests.unit.service.support import drain, fox

PAIR = ["apimart", "mountsea-async"]  # apimart: callbacks; mountsea-async: a poll loop
APIMART_1K_LATENCY = 40.0  # apimart's documented latency at 1K
PRICES = {
    "apimart": {"per_image": {"1K": {"medium": 0.04}}},
    "mountsea-async": {"per_image": {"1K": {"medium": 0.02}}},
}


def figures(samples: int, p90: float | None) -> Measured:
    return Measured(
        samples=samples,
        success_rate=1.0,
        latency_p50_seconds=p90,
        latency_p90_seconds=p90,
        latencies=samples,
    )


def hedged_task(deps: FakeDependencies, **fields: Any) -> Task:
    """A hedging task taken by apimart, its hedge message queued (not yet delivered)."""
    deps.configure(prices=PRICES)
    task = submit_task(deps, fox(providers=PAIR, hedge=True, **fields), client_id="c").task
    drain(deps)
    return deps.tasks.require(task.task_id)


def start_the_hedge(deps: FakeDependencies, task: Task) -> Task:
    """Deliver the task's hedge message (what SQS does after its delay)."""
    ((task_id, provider, _),) = deps.dispatch_queue.hedges
    started = dispatch_hedge(deps, task_id, provider)
    assert started is not None
    return started


# -- when: the delay ----------------------------------------------------------------------------
def test_a_measured_provider_is_hedged_after_its_p90() -> None:
    # GIVEN a provider measured at p90 12.4 s WHEN the delay is decided THEN 12 s
    assert hedge_delay(figures(20, 12.4), 40.0, lambda s: s).seconds == 12


def test_an_unmeasured_provider_is_hedged_after_twice_its_expected_latency() -> None:
    # GIVEN 3 samples only (fewer than MIN_SAMPLES) WHEN decided at devstack's 0.02 scale
    # THEN 2 x 40 s x 0.02 = 1.6 s, rounded to 2
    delay = hedge_delay(figures(3, 1.0), 40.0, lambda s: s * 0.02)

    assert delay.seconds == round(40.0 * UNMEASURED_FACTOR * 0.02)
    assert delay.basis.startswith("unmeasured")


def test_the_delay_stays_within_what_sqs_can_delay() -> None:
    # GIVEN a p90 of an hour, and one of 0.2 s WHEN decided THEN 15 minutes, and 1 s
    assert hedge_delay(figures(20, 3600.0), 40.0, lambda s: s).seconds == MAX_DELAY_SECONDS
    assert hedge_delay(figures(20, 0.2), 40.0, lambda s: s).seconds == 1


# -- whether: scheduling -------------------------------------------------------------------------
def test_a_hedging_task_queues_its_hedge_at_the_next_provider_when_taken(
    deps: FakeDependencies,
) -> None:
    # GIVEN hedge: true and apimart unmeasured WHEN apimart takes the task
    task = hedged_task(deps)

    # THEN one hedge message for mountsea-async, after 2 x apimart's expected latency
    assert task.routing is not None and task.routing.hedge
    delay = round(APIMART_1K_LATENCY * UNMEASURED_FACTOR)
    assert deps.dispatch_queue.hedges == [(task.task_id, "mountsea-async", delay)]


def test_the_measured_p90_decides_the_delay(deps: FakeDependencies) -> None:
    # GIVEN apimart measured at 6 s WHEN a hedging task goes there THEN hedged after 6 s
    for _ in range(10):
        deps.health.measurements.add(
            Sample("apimart", Operation.GENERATE, "1K", deps.health.now(), True, 6.0)
        )

    hedged_task(deps)

    ((_, _, delay),) = deps.dispatch_queue.hedges
    assert 5 <= delay <= 6  # the histogram bucket 4.5-6 s, interpolated


def test_a_task_that_does_not_hedge_queues_no_hedge(deps: FakeDependencies) -> None:
    # GIVEN no hedge asked WHEN apimart takes the task THEN no hedge message
    submit_task(deps, fox(providers=PAIR), client_id="c")
    drain(deps)

    assert deps.dispatch_queue.hedges == []


def test_a_clients_default_hedges_its_requests(deps: FakeDependencies) -> None:
    # GIVEN the client's limits item says hedge WHEN it submits without hedge THEN it hedges
    deps.usage.set_limits("c", hedge=True)

    task = submit_task(deps, fox(providers=PAIR), client_id="c").task

    assert task.routing is not None and task.routing.hedge


def test_the_request_wins_over_the_clients_default(deps: FakeDependencies) -> None:
    # GIVEN the client hedges by default WHEN a request says hedge: false THEN no hedge
    deps.usage.set_limits("c", hedge=True)

    task = submit_task(deps, fox(providers=PAIR, hedge=False), client_id="c").task

    assert task.routing is not None and not task.routing.hedge


def test_a_pinned_provider_has_nothing_to_hedge_with(deps: FakeDependencies) -> None:
    # GIVEN hedge: true and one provider WHEN it takes the task THEN no hedge message
    submit_task(deps, fox(provider="apimart", hedge=True), client_id="c")
    drain(deps)

    assert deps.dispatch_queue.hedges == []


# -- starting ------------------------------------------------------------------------------------
def test_the_hedge_starts_beside_the_first_attempt(deps: FakeDependencies) -> None:
    # GIVEN a hedging task still at apimart WHEN its hedge message comes
    task = start_the_hedge(deps, hedged_task(deps))

    # THEN mountsea-async is called too, recorded as a hedge with its own poll loop,
    # and the task stays apimart's
    assert len(deps.providers.calls_to("mountsea-async", "create")) == 1
    first, hedge = task.attempts
    assert (first.provider, first.outcome, first.hedge) == ("apimart", "submitted", False)
    assert (hedge.provider, hedge.outcome, hedge.hedge) == ("mountsea-async", "submitted", True)
    assert hedge.path == "poll" and hedge.cost_estimate_usd == 0.02
    assert hedge.note is not None and hedge.note.startswith("hedge: apimart had not finished")
    assert f"{task.task_id}-hedge" in deps.poll_loops.started
    assert (task.provider, task.fallbacks) == ("apimart", [])


def test_a_hedge_message_for_an_ended_task_does_nothing(deps: FakeDependencies) -> None:
    # GIVEN a hedging task that apimart finished before the hedge's delay
    task = hedged_task(deps)
    refresh_task(deps, task.task_id, by="callback")

    # WHEN the hedge message comes THEN no call is made
    start_the_hedge(deps, task)

    assert deps.providers.calls_to("mountsea-async") == []


def test_a_second_delivery_of_the_hedge_message_starts_no_second_hedge(
    deps: FakeDependencies,
) -> None:
    # GIVEN a started hedge WHEN its message is delivered again THEN one create call only
    task = start_the_hedge(deps, hedged_task(deps))

    dispatch_hedge(deps, task.task_id, "mountsea-async")

    assert len(deps.providers.calls_to("mountsea-async", "create")) == 1


# -- ending --------------------------------------------------------------------------------------
def test_the_hedge_that_finishes_first_wins_and_both_prices_are_counted(
    deps: FakeDependencies,
) -> None:
    # GIVEN apimart still working and the hedge at mountsea-async done
    task = start_the_hedge(deps, hedged_task(deps))
    deps.providers.script("apimart").statuses = [ProviderState.RUNNING]

    # WHEN the hedge's poll loop looks
    done = refresh_task(deps, task.task_id, by="poll").task

    # THEN the task is the hedge's: its provider, its image at its own key; apimart's attempt is
    # superseded, and the cost is both prices (apimart bills the work it accepted)
    assert done.status is TaskStatus.SUCCEEDED and done.provider == "mountsea-async"
    assert done.outputs[0].key.endswith(f"/0{HEDGE_STEM_SUFFIX}.png")
    assert [(a.provider, a.outcome) for a in done.attempts] == [
        ("apimart", "superseded"),
        ("mountsea-async", "completed"),
    ]
    assert done.cost_estimate_usd == 0.06
    assert deps.events.for_task(task.task_id).count("Image Task Succeeded") == 1


def test_the_first_provider_winning_closes_the_hedge_and_counts_its_price(
    deps: FakeDependencies,
) -> None:
    # GIVEN a started hedge still working WHEN apimart's callback says done
    task = start_the_hedge(deps, hedged_task(deps))
    deps.providers.script("mountsea-async").statuses = [ProviderState.RUNNING]

    done = refresh_task(deps, task.task_id, by="callback").task

    # THEN apimart's image is the task's, the hedge is superseded and its price counted
    assert (done.status, done.provider) == (TaskStatus.SUCCEEDED, "apimart")
    assert [(a.provider, a.outcome) for a in done.attempts] == [
        ("apimart", "completed"),
        ("mountsea-async", "superseded"),
    ]
    assert done.cost_estimate_usd == 0.06


def test_a_failed_hedge_leaves_the_task_to_its_first_provider(deps: FakeDependencies) -> None:
    # GIVEN mountsea-async refusing the hedge's create with a 503
    task = hedged_task(deps)
    deps.providers.script("mountsea-async").create_error = unavailable("mountsea-async")

    # WHEN the hedge starts THEN its attempt failed and the task is still apimart's, open
    hedged = start_the_hedge(deps, task)

    assert (hedged.status, hedged.provider) == (TaskStatus.SUBMITTED, "apimart")
    assert [(a.provider, a.outcome) for a in hedged.attempts] == [
        ("apimart", "submitted"),
        ("mountsea-async", "failed"),
    ]


def test_the_first_provider_failing_hands_the_task_to_the_running_hedge(
    deps: FakeDependencies,
) -> None:
    # GIVEN a started hedge still working and apimart answering failed
    task = start_the_hedge(deps, hedged_task(deps))
    deps.providers.script("apimart").statuses = [ProviderState.FAILED]

    # WHEN apimart's callback is handled THEN the task goes on with the hedge, not failed
    carried = refresh_task(deps, task.task_id, by="callback").task
    assert (carried.status, carried.provider) == (TaskStatus.SUBMITTED, "mountsea-async")

    # AND the hedge's next look finishes it, at the hedge's price alone
    done = refresh_task(deps, task.task_id, by="poll").task
    assert (done.status, done.provider) == (TaskStatus.SUCCEEDED, "mountsea-async")
    assert [(a.provider, a.outcome) for a in done.attempts] == [
        ("apimart", "failed"),
        ("mountsea-async", "completed"),
    ]
    assert done.cost_estimate_usd == 0.02


# -- the single winner ---------------------------------------------------------------------------
def test_two_finalisers_racing_make_one_winner_and_delete_the_losers_image(
    deps: FakeDependencies,
) -> None:
    # GIVEN a started hedge, both providers done with an image
    task = start_the_hedge(deps, hedged_task(deps))
    hedge = task.attempts[-1]
    image = deps.providers.client("apimart")._succeeded().images

    # WHEN the first provider's finaliser and the hedge's store their images at the same moment
    start = threading.Barrier(2)
    won: list[Task] = []

    def finalise(attempt: Any) -> None:
        start.wait()
        won.append(finalize_success(deps, task, image, by="race", attempt=attempt))

    threads = [threading.Thread(target=finalise, args=(a,)) for a in (None, hedge)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN one attempt won: the task names its image alone, the other's object is deleted,
    # one event; the loser's attempt is superseded
    done = deps.tasks.require(task.task_id)
    assert done.status is TaskStatus.SUCCEEDED
    (output,) = done.outputs
    folder = output.key.rsplit("/", 1)[0]
    stored = [k for k in deps.images.objects if k.startswith(folder) and k.endswith(".png")]
    assert stored == [output.key]
    assert len(deps.images.deleted) == 1 and deps.images.deleted[0] != output.key
    outcomes = sorted(a.outcome for a in done.attempts)
    assert outcomes == ["completed", "superseded"]
    winner = next(a for a in done.attempts if a.outcome == "completed")
    assert winner.provider == done.provider
    assert deps.events.for_task(task.task_id).count("Image Task Succeeded") == 1


def test_a_hedge_at_a_sync_provider_finishes_the_task_in_its_own_call(
    deps: FakeDependencies,
) -> None:
    # GIVEN a hedging task at apimart with mountsea-compat (sync) next, priced
    deps.configure(prices={**PRICES, "mountsea-compat": {"per_image": {"1K": {"medium": 0.03}}}})
    submitted = submit_task(
        deps, fox(providers=["apimart", "mountsea-compat"], hedge=True), client_id="c"
    ).task
    drain(deps)

    # WHEN the hedge message comes while apimart still works
    done = start_the_hedge(deps, deps.tasks.require(submitted.task_id))

    # THEN the sync call's image is the task's, apimart's attempt superseded, both prices
    assert (done.status, done.provider, done.path) == (
        TaskStatus.SUCCEEDED,
        "mountsea-compat",
        "sync",
    )
    assert [(a.provider, a.outcome, a.hedge) for a in done.attempts] == [
        ("apimart", "superseded", False),
        ("mountsea-compat", "completed", True),
    ]
    assert done.cost_estimate_usd == 0.07


def test_a_hedge_that_outruns_a_sync_call_wins_and_the_calls_image_is_not_stored(
    deps: FakeDependencies,
) -> None:
    # GIVEN a hedging task whose first provider is sync (mountsea-compat), mountsea-async next;
    # while the sync call is at its provider, the hedge starts and its poll finds the image
    deps.configure(prices={**PRICES, "mountsea-compat": {"per_image": {"1K": {"medium": 0.03}}}})

    def hedge_meanwhile() -> None:
        ((task_id, provider, _),) = deps.dispatch_queue.hedges
        dispatch_hedge(deps, task_id, provider)
        refresh_task(deps, task_id, by="poll")

    deps.providers.script("mountsea-compat").while_working = hedge_meanwhile

    # WHEN the task is dispatched (the sync call returns after the hedge won)
    submitted = submit_task(
        deps, fox(providers=["mountsea-compat", "mountsea-async"], hedge=True), client_id="c"
    ).task
    drain(deps)

    # THEN the hedge's image is the task's; the sync call is recorded as superseded and its
    # image was never stored; the cost is both prices
    done = deps.tasks.require(submitted.task_id)
    assert (done.status, done.provider) == (TaskStatus.SUCCEEDED, "mountsea-async")
    assert [(a.provider, a.outcome) for a in done.attempts] == [
        ("mountsea-compat", "superseded"),
        ("mountsea-async", "completed"),
    ]
    assert [k for k in deps.images.objects if k.endswith(".png")] == [done.outputs[0].key]
    assert done.cost_estimate_usd == 0.05


def test_a_sync_call_failing_while_the_hedge_runs_hands_the_task_to_the_hedge(
    deps: FakeDependencies,
) -> None:
    # GIVEN a hedging task at mountsea-compat (sync) whose call fails with a 503 after the
    # hedge at mountsea-async started
    compat = deps.providers.script("mountsea-compat")
    compat.sync_error = unavailable("mountsea-compat")

    def hedge_meanwhile() -> None:
        ((task_id, provider, _),) = deps.dispatch_queue.hedges
        dispatch_hedge(deps, task_id, provider)

    compat.while_working = hedge_meanwhile

    # WHEN the task is dispatched THEN no fallback attempt is queued: the hedge carries it
    submitted = submit_task(
        deps, fox(providers=["mountsea-compat", "mountsea-async"], hedge=True), client_id="c"
    ).task
    drain(deps)
    carried = deps.tasks.require(submitted.task_id)
    assert (carried.status, carried.provider) == (TaskStatus.RUNNING, "mountsea-async")
    assert len(deps.providers.calls_to("mountsea-async", "create")) == 1

    # AND the hedge's poll finishes it, both attempts recorded
    done = refresh_task(deps, submitted.task_id, by="poll").task
    assert (done.status, done.provider) == (TaskStatus.SUCCEEDED, "mountsea-async")
    assert [(a.provider, a.outcome) for a in done.attempts] == [
        ("mountsea-compat", "failed"),
        ("mountsea-async", "completed"),
    ]
