"""Hand-off: each candidate in order until one takes the task; every try is recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from image_gateway.errors import ProviderRejected
from image_gateway.models.task import TaskStatus
from image_gateway.service.dispatch import dispatch
from image_gateway.service.lifecycle import cancel_task
from image_gateway.service.submit import submit_task

from tests.fakes import FakeDependencies, unavailable
from tests.unit.service.conftest import DepsFactory
from tests.unit.service.support import counted_reads, drain, fox, queued, submit_and_dispatch

APIMART_1K_LATENCY = 40.0  # apimart's documented latency at 1K (the first wait)


def moderation(provider: str) -> ProviderRejected:
    return ProviderRejected(
        f"{provider}: blocked by moderation", provider=provider, code="moderation_blocked"
    )


# -- async providers: callback or poll loop ------------------------------------------------------
def test_a_callback_provider_gets_a_signed_callback_url(deps: FakeDependencies) -> None:
    # GIVEN apimart (callbacks) WHEN a task is handed to it
    # THEN its create call carries /webhooks/apimart/{task}/{per-task HMAC token}
    task = submit_and_dispatch(deps, fox(provider="apimart"), client_id="c").task

    (create,) = deps.providers.calls_to("apimart", "create")
    token = deps.signer.token("apimart", task.task_id)
    assert create.callback_url == f"https://gateway.example/webhooks/apimart/{task.task_id}/{token}"
    assert (task.path, task.status) == ("callback", TaskStatus.SUBMITTED)
    assert deps.poll_loops.started == {}


def test_a_callback_task_is_due_for_one_poll_after_the_grace(deps: FakeDependencies) -> None:
    # GIVEN apimart at 1K (40 s) WHEN handed over
    # THEN the sweeper looks at it after timing.callback_grace(40 s) if no callback came
    task = submit_and_dispatch(deps, fox(provider="apimart"), client_id="c").task

    assert task.check_at is not None and task.submitted_at is not None
    grace = deps.timing.callback_grace(APIMART_1K_LATENCY)
    assert abs((task.check_at - task.submitted_at) - timedelta(seconds=grace)) < timedelta(
        seconds=1
    )


def test_under_a_small_time_scale_the_callback_grace_keeps_its_floor(
    make_deps: DepsFactory,
) -> None:
    # GIVEN devstack's time scale (2 x 40 s x 0.02 = 1.6 s) WHEN apimart takes a task
    # THEN the sweeper waits the floor's real seconds, so the callback path finishes its task
    deps = make_deps(time_scale=0.02)
    task = submit_and_dispatch(deps, fox(provider="apimart"), client_id="c").task

    assert task.check_at is not None and task.submitted_at is not None
    waited = (task.check_at - task.submitted_at).total_seconds()
    assert (
        deps.timing.callback_grace_floor_seconds
        <= waited
        < deps.timing.callback_grace_floor_seconds + 1
    )


def test_without_a_public_url_the_requests_own_base_url_is_used(make_deps: DepsFactory) -> None:
    # GIVEN no PUBLIC_BASE_URL WHEN the API hands over with the URL it was called on
    # THEN the callback goes there
    deps = make_deps(public_base_url=None)

    submit_and_dispatch(
        deps, fox(provider="apimart"), client_id="c", callback_base_url="https://api.example/"
    )

    (create,) = deps.providers.calls_to("apimart", "create")
    assert create.callback_url is not None
    assert create.callback_url.startswith("https://api.example/webhooks/apimart/")


def test_a_callback_provider_without_any_base_url_is_polled(make_deps: DepsFactory) -> None:
    # GIVEN no base URL at all WHEN handed to apimart
    # THEN no callback URL is sent and its poll loop starts after its expected latency
    deps = make_deps(public_base_url=None)

    task = submit_and_dispatch(deps, fox(provider="apimart"), client_id="c").task

    assert deps.providers.calls_to("apimart", "create")[0].callback_url is None
    assert task.path == "poll"
    assert deps.poll_loops.started == {task.task_id: APIMART_1K_LATENCY}


def test_a_poll_provider_loop_first_waits_its_expected_latency(deps: FakeDependencies) -> None:
    # GIVEN mountsea-async at high quality (45 s documented) WHEN handed over
    # THEN its poll loop starts with a 45 s first wait
    task = submit_and_dispatch(
        deps, fox(provider="mountsea-async", quality="high"), client_id="c"
    ).task

    assert task.path == "poll"
    assert deps.poll_loops.started == {task.task_id: 45}


def test_the_first_wait_is_scaled_but_at_least_a_second(make_deps: DepsFactory) -> None:
    # GIVEN devstack's time scale WHEN handed to a poll provider THEN the first wait is 1 s
    deps = make_deps(time_scale=0.02)

    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task

    assert deps.poll_loops.started == {task.task_id: 1}


def test_the_price_table_gives_the_cost_estimate(deps: FakeDependencies) -> None:
    # GIVEN a configured price for mountsea-async WHEN handed over THEN the task carries it
    deps.configure(prices={"mountsea-async": {"per_image": {"1K": {"medium": 0.04}}}})

    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task

    assert task.cost_estimate_usd == 0.04


# -- storage-first: the API only records and queues ------------------------------------------
def test_a_submitted_task_is_queued_for_its_first_provider_and_nothing_is_called(
    deps: FakeDependencies,
) -> None:
    # GIVEN a provider list WHEN submitted
    # THEN the task is queued for the first, the others wait in task.fallbacks, and no provider
    # is called (nor any event sent) inside the request
    request = fox(providers=["mountsea-compat", "openai", "pmock"])

    task = submit_task(deps, request, client_id="c").task

    assert deps.dispatch_queue.messages == [(task.task_id, "mountsea-compat")]
    assert (task.status, task.path, task.provider) == (TaskStatus.QUEUED, None, "mountsea-compat")
    assert task.fallbacks == ["openai", "pmock"]
    assert deps.providers.calls == []
    assert deps.events.for_task(task.task_id) == []


def test_a_provider_that_never_answers_its_create_does_not_slow_submit(
    deps: FakeDependencies,
) -> None:
    # GIVEN every provider in the order failing its create WHEN submitted
    # THEN submit returns the queued task without any provider call; the dispatcher fails over
    for name in ("apimart", "mountsea-async"):
        deps.providers.script(name).create_error = unavailable(name, 504)

    task = submit_task(deps, fox(providers=["apimart", "mountsea-async"]), client_id="c").task

    assert task.status is TaskStatus.QUEUED and deps.providers.calls == []
    drain(deps)
    failed = deps.tasks.require(task.task_id)
    assert failed.status is TaskStatus.FAILED
    assert [(a.provider, a.outcome) for a in failed.attempts] == [
        ("apimart", "failed"),
        ("mountsea-async", "failed"),
    ]
    assert deps.events.for_task(task.task_id) == ["Image Task Failed"]


def test_an_unreachable_dispatch_queue_fails_the_task_with_its_event(
    deps: FakeDependencies,
) -> None:
    # GIVEN the queue refusing messages WHEN a task is submitted
    # THEN it fails (retryable dispatch_unavailable) with its Failed event, nothing spent
    deps.dispatch_queue.unavailable = True

    task = submit_task(deps, fox(provider="mountsea-compat"), client_id="c").task

    assert task.status is TaskStatus.FAILED
    assert task.error is not None
    assert (task.error.code, task.error.retryable) == ("dispatch_unavailable", True)
    assert deps.events.for_task(task.task_id) == ["Image Task Failed"]
    assert deps.providers.calls == []


# -- fallback ------------------------------------------------------------------------------------
def test_a_retryable_refusal_falls_back_to_the_next_provider(deps: FakeDependencies) -> None:
    # GIVEN apimart answering 503 WHEN a task lists apimart then mountsea-async
    # THEN mountsea-async takes it, and both tries are on record
    deps.providers.script("apimart").create_error = unavailable("apimart")

    task = submit_and_dispatch(
        deps, fox(providers=["apimart", "mountsea-async"]), client_id="c"
    ).task

    assert (task.status, task.provider, task.path) == (
        TaskStatus.SUBMITTED,
        "mountsea-async",
        "poll",
    )
    assert [(a.provider, a.outcome) for a in task.attempts] == [
        ("apimart", "failed"),
        ("mountsea-async", "submitted"),
    ]
    assert task.attempts[0].error is not None
    assert task.attempts[0].error.code == "provider_unavailable"
    assert task.attempts[1].provider_task_id == task.provider_task_id


def test_a_provider_without_a_key_is_skipped(deps: FakeDependencies) -> None:
    # GIVEN no API key stored for apimart WHEN a task lists apimart then pmock THEN pmock has it
    deps.providers.keyless.add("apimart")

    task = submit_and_dispatch(deps, fox(providers=["apimart", "pmock"]), client_id="c").task

    assert task.provider == "pmock"
    assert task.attempts[0].error is not None
    assert task.attempts[0].error.code == "provider_key_missing"


def test_an_async_failure_falls_back_to_a_sync_provider(deps: FakeDependencies) -> None:
    # GIVEN apimart down WHEN its attempt is dispatched and the next provider is sync
    # THEN an attempt at it is queued, carrying apimart's failed attempt and the rest as fallbacks
    deps.providers.script("apimart").create_error = unavailable("apimart")
    task = submit_task(
        deps, fox(providers=["apimart", "mountsea-compat", "pmock"]), client_id="c"
    ).task
    assert deps.dispatch_queue.take() == [(task.task_id, "apimart")]

    moved = dispatch(deps, task.task_id, "apimart")

    assert moved is not None
    assert deps.dispatch_queue.messages == [(task.task_id, "mountsea-compat")]
    assert [a.provider for a in moved.attempts] == ["apimart"]
    assert (moved.provider, moved.fallbacks) == ("mountsea-compat", ["pmock"])


def test_a_non_retryable_refusal_ends_the_task_without_trying_others(
    deps: FakeDependencies,
) -> None:
    # GIVEN apimart blocking the prompt (moderation) WHEN mountsea-async is next
    # THEN the task fails with apimart's error, at no cost, and mountsea-async is never called
    deps.providers.script("apimart").create_error = moderation("apimart")

    task = submit_and_dispatch(
        deps, fox(providers=["apimart", "mountsea-async"]), client_id="c"
    ).task

    assert task.status is TaskStatus.FAILED
    assert task.error is not None and task.error.code == "moderation_blocked"
    assert task.cost_estimate_usd == 0.0
    assert deps.providers.calls_to("mountsea-async") == []
    assert deps.events.for_task(task.task_id) == ["Image Task Failed"]


def test_when_every_provider_is_down_the_last_error_ends_the_task(
    deps: FakeDependencies,
) -> None:
    # GIVEN both providers answering 5xx WHEN a task lists them
    # THEN it fails with the last one's error and one attempt per provider
    deps.providers.script("apimart").create_error = unavailable("apimart", 502)
    deps.providers.script("pmock").create_error = unavailable("pmock", 503)

    task = submit_and_dispatch(deps, fox(providers=["apimart", "pmock"]), client_id="c").task

    assert task.status is TaskStatus.FAILED
    assert task.error is not None
    assert (task.error.provider, task.error.retryable) == ("pmock", True)
    assert task.provider == "pmock"
    assert [a.provider for a in task.attempts] == ["apimart", "pmock"]


def test_a_task_cancelled_while_its_provider_creates_stays_cancelled(
    deps: FakeDependencies,
) -> None:
    # GIVEN the client cancelling while mountsea-async creates the task
    # WHEN the create call answers THEN the task stays cancelled: no poll loop, no Submitted
    script = deps.providers.script("mountsea-async")
    script.while_working = lambda: cancel_task(deps, deps.tasks.all()[0])

    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task

    assert task.status is TaskStatus.CANCELLED
    assert deps.poll_loops.started == {}
    assert deps.events.for_task(task.task_id) == ["Image Task Cancelled"]


# -- what a hand-over reads ----------------------------------------------------------------------
def test_a_hand_over_to_an_async_provider_reads_the_task_once(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a task queued for apimart, and a store that counts reads
    task_id = queued(deps, fox(provider="apimart")).task_id
    reads = counted_reads(deps, monkeypatch)

    # WHEN dispatched THEN it is submitted from the one read of the message's task (the writes
    # start from it: three reads before)
    done = dispatch(deps, task_id, "apimart")

    assert done is not None and (done.status, done.path) == (TaskStatus.SUBMITTED, "callback")
    assert reads == [task_id]


def test_a_task_submitted_by_another_attempt_meanwhile_gets_this_attempt_recorded(
    deps: FakeDependencies,
) -> None:
    # GIVEN another attempt (a message delivered twice) marking the task submitted while this
    # one's create call is at mountsea-async
    task_id = queued(deps, fox(provider="mountsea-async")).task_id
    deps.providers.script("mountsea-async").while_working = lambda: deps.tasks.transition(
        task_id, TaskStatus.SUBMITTED, by="dispatch"
    )

    # WHEN this attempt's answer is recorded THEN in place, as on a fresh read: its provider task
    # id named, its attempt kept and its poll loop started
    after = dispatch(deps, task_id, "mountsea-async")

    assert len(deps.providers.calls_to("mountsea-async", "create")) == 1
    assert after is not None and after.status is TaskStatus.SUBMITTED
    assert after.provider_task_id is not None
    assert [a.provider_task_id for a in after.attempts] == [after.provider_task_id]
    assert task_id in deps.poll_loops.started
