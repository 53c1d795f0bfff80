"""Per-client limits in the submit flow: the rate window, running places (over them a task is
accepted and queued, and starts oldest first when a running task ends; a place is freed
exactly once), the queue's cap, the daily budget (reserved at submit, settled to the final
estimate), deadlines that count from the first attempt, and usage.

The ledger's clock is the fakes' ``deps.clock`` (10 s into a minute of 2026-12-01): moved by
hand, never slept on.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from image_gateway.errors import InvalidImage, ProviderRejected, ServiceBusy, TooManyRequests
from image_gateway.models.task import Task, TaskStatus, utc_now
from image_gateway.service.lifecycle import cancel_task, change_status
from image_gateway.service.limits import client_usage
from image_gateway.service.submit import Submission, submit_task
from image_gateway.service.sweep import sweep
from image_gateway.service.upload_edit import UploadMustWait, UploadOutcome, edit_upload
from image_gateway.timing import DEFAULT_TIMING

from tests.fakes import FakeDependencies, FakeInboxDependencies
from tests.unit.service.conftest import DepsFactory
from tests.unit.service.support import data_url, drain, fox, make_due, png

APIMODELS_PRICES = {
    "apimodels": {"per_image": {"1K": {"medium": 0.025}, "2K": {"medium": 0.04}}},
    "mountsea-compat": {"per_image": {"1K": {"medium": 0.01}}},
}


def submit(deps: FakeDependencies, client: str = "c", **fields: object) -> Submission:
    return submit_task(deps, fox(**{"provider": "mountsea-compat", **fields}), client_id=client)


def refusal(deps: FakeDependencies, client: str = "c", **fields: object) -> TooManyRequests:
    with pytest.raises(TooManyRequests) as refused:
        submit(deps, client, **fields)
    return refused.value


# -- the rate ------------------------------------------------------------------------------------
def test_over_its_rate_a_client_gets_429_rate_limited_until_the_next_minute(
    deps: FakeDependencies,
) -> None:
    # GIVEN a client the operator allows 2 submits a minute, 10 s into a minute
    deps.usage.set_limits("c", requests_per_minute=2)
    submit(deps)
    submit(deps)

    # WHEN it submits a third time
    error = refusal(deps)

    # THEN 429 rate_limited, retry in 50 s (the minute's end), nothing written, and a metric
    assert (error.status_code, error.code, error.retry_after_seconds) == (429, "rate_limited", 50)
    assert error.headers() == {"Retry-After": "50"}
    assert "2 a minute" in error.message
    assert len(deps.tasks.all()) == 2
    assert deps.metrics.values("RequestsThrottled", Code="rate_limited") == [1.0]
    # and in the next minute it may submit again; other clients never were limited
    submit(deps, "other")
    deps.clock.advance(50)
    assert submit(deps).task.status is TaskStatus.QUEUED


def test_a_refused_request_stages_nothing_and_frees_its_idempotency_key(
    deps: FakeDependencies,
) -> None:
    # GIVEN a client at its rate with an edit of an inline image
    deps.usage.set_limits("c", requests_per_minute=0)
    request = fox(provider="mountsea-compat", images=[data_url(b"not checked: refused first")])

    # WHEN it is submitted with an Idempotency-Key THEN it is refused before any input is read
    with pytest.raises(TooManyRequests):
        submit_task(deps, request, client_id="c", idempotency_key="k-1")
    assert deps.images.objects == {}
    assert deps.tasks.all() == []
    # and the same key works once the operator lifts the limit
    deps.usage.set_limits("c")
    with pytest.raises(InvalidImage):  # now the input is read (and refused on its own merits)
        submit_task(deps, request, client_id="c", idempotency_key="k-1")


def test_an_idempotent_replay_is_not_counted_again(deps: FakeDependencies) -> None:
    deps.usage.set_limits("c", requests_per_minute=1)
    first = submit_task(deps, fox(provider="mountsea-compat"), client_id="c", idempotency_key="k")

    again = submit_task(deps, fox(provider="mountsea-compat"), client_id="c", idempotency_key="k")

    assert again.replayed and again.task.task_id == first.task.task_id
    assert deps.usage.usage("c").window_requests == 1


# -- running places and the client's queue -------------------------------------------------------
def test_a_submit_reads_its_clients_limits_item_once(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a client whose operator set one submit a minute and a routing policy, and a ledger
    # that counts the reads of that item (alone, or with the client's counts)
    deps.usage.set_limits("c", requests_per_minute=1, routing="price")
    reads: list[str] = []
    for name in ("overrides", "client_state"):
        read = getattr(deps.usage, name)
        monkeypatch.setattr(
            deps.usage, name, lambda c, _read=read, _name=name: reads.append(_name) or _read(c)
        )

    # WHEN it submits twice THEN routing (the policy), the limits (the rate) and the
    # reservation shared one read each time (the item with the counts), and both were applied:
    # the first chosen by the client's policy, the second 429
    first = submit(deps)
    assert refusal(deps).code == "rate_limited"
    assert reads == ["client_state", "client_state"]
    assert first.task.routing is not None and first.task.routing.chosen_by == "client"


def test_over_its_running_limit_a_task_is_accepted_and_waits_its_turn(
    deps: FakeDependencies,
) -> None:
    # GIVEN a client allowed 1 running task, with one running
    deps.usage.set_limits("c", max_running_tasks=1)
    first = submit(deps).task

    # WHEN it submits another THEN it is accepted, queued for its client's limit, not dispatched
    second = submit(deps).task
    assert second.status is TaskStatus.QUEUED and second.admitted_at is None
    assert deps.dispatch_queue.messages == [(first.task_id, "mountsea-compat")]
    assert deps.metrics.values("TasksQueuedForClientLimit") == [1.0]

    # WHEN the first ends (the sync provider made it) THEN the second starts and ends too
    drain(deps)
    assert deps.tasks.require(first.task_id).status is TaskStatus.SUCCEEDED
    started = deps.tasks.require(second.task_id)
    assert started.status is TaskStatus.SUCCEEDED and started.admitted_at is not None


def test_queued_tasks_start_oldest_first(deps: FakeDependencies) -> None:
    # GIVEN a client allowed 1 running task, and three more waiting
    deps.usage.set_limits("c", max_running_tasks=1)
    running = submit(deps).task
    waiting = []
    for _ in range(3):
        deps.clock.advance(0.5)
        waiting.append(submit(deps).task)
    deps.dispatch_queue.take()

    # WHEN the running one is cancelled THEN the oldest waiting one is dispatched, only it
    cancel_task(deps, running)
    assert deps.dispatch_queue.messages == [(waiting[0].task_id, "mountsea-compat")]
    usage = deps.usage.usage("c")
    assert (usage.running, usage.queued) == (1, 2)


def test_a_cancelled_queued_task_leaves_the_queue_without_starting(
    deps: FakeDependencies,
) -> None:
    deps.usage.set_limits("c", max_running_tasks=1)
    running, waiting = submit(deps).task, submit(deps).task

    cancel_task(deps, waiting)

    assert deps.usage.usage("c").queued == 0
    cancel_task(deps, running)
    assert deps.usage.usage("c").running == 0


def test_an_ended_task_frees_its_place_exactly_once_whoever_tries_again(
    deps: FakeDependencies,
) -> None:
    # GIVEN two running tasks of a client allowed 2
    deps.usage.set_limits("c", max_running_tasks=2)
    first, second = submit(deps).task, submit(deps).task

    # WHEN the first is cancelled, then a late finaliser and a second cancel try to end it too,
    # and the sweeper later looks at it again
    cancel_task(deps, first)
    late = change_status(deps, first.task_id, TaskStatus.FAILED, by="callback")
    with pytest.raises(Exception, match="cannot be cancelled"):
        cancel_task(deps, deps.tasks.require(first.task_id))
    make_due(deps, first.task_id)
    sweep(deps)

    # THEN its place was freed once: the second task still holds one, so one more runs, the
    # next waits
    assert late.changed is False
    assert deps.usage.usage("c").running == 1
    assert submit(deps).task.admitted_at is not None
    assert submit(deps).task.admitted_at is None
    assert deps.tasks.require(second.task_id).status is TaskStatus.QUEUED


def test_over_the_queues_cap_a_submit_gets_429_queue_full(deps: FakeDependencies) -> None:
    deps.usage.set_limits("c", max_running_tasks=1, max_queued_tasks=1)
    submit(deps)
    submit(deps)

    error = refusal(deps)

    assert (error.code, error.retry_after_seconds) == ("queue_full", 60)
    assert "1 tasks waiting" in error.message


def test_a_ledger_that_keeps_conflicting_answers_503_with_retry_after(
    deps: FakeDependencies,
) -> None:
    deps.usage.busy_next = 1

    with pytest.raises(ServiceBusy) as busy:
        submit(deps)

    assert (busy.value.status_code, busy.value.code) == (503, "busy")
    assert busy.value.headers() == {"Retry-After": "1"}
    assert deps.tasks.all() == []


def test_a_queued_tasks_deadline_is_the_queues_until_its_first_attempt(
    deps: FakeDependencies,
) -> None:
    # GIVEN a waiting task
    deps.usage.set_limits("c", max_running_tasks=1)
    running, waiting = submit(deps).task, submit(deps).task
    queue_bound = deps.settings.scaled(deps.settings.queue_timeout_seconds)
    assert waiting.deadline_at is not None
    assert waiting.deadline_at - waiting.created_at == timedelta(seconds=queue_bound)

    # WHEN it starts and reaches its provider THEN its provider deadline counts from there
    drain(deps)
    done = deps.tasks.require(waiting.task_id)
    assert done.submitted_at is not None and done.deadline_at is not None
    provider_budget = deps.settings.scaled(deps.settings.task_deadline_seconds)
    assert done.deadline_at - done.submitted_at == timedelta(seconds=provider_budget)
    assert running.task_id != waiting.task_id


def test_a_task_that_never_reached_a_provider_expires_with_queue_timeout(
    deps: FakeDependencies,
) -> None:
    deps.usage.set_limits("c", max_running_tasks=0)  # paused: everything waits
    waiting = submit(deps).task

    def overdue(task: Task) -> None:
        task.deadline_at = task.check_at = utc_now() - timedelta(seconds=1)

    deps.tasks.update(waiting.task_id, overdue)
    sweep(deps)

    expired = deps.tasks.require(waiting.task_id)
    assert expired.status is TaskStatus.EXPIRED
    assert expired.error is not None and expired.error.code == "queue_timeout"
    assert "never reached a provider" in expired.error.message
    assert deps.usage.usage("c").queued == 0


def test_the_sweeper_starts_a_task_whose_wake_up_was_lost(deps: FakeDependencies) -> None:
    # GIVEN a waiting task whose client has a free place nobody gave it (a crash between writes)
    deps.usage.set_limits("c", max_running_tasks=1)
    running, waiting = submit(deps).task, submit(deps).task
    deps.usage.settle("c", running.usage_hold, cost_usd=0.0)  # type: ignore[arg-type]
    deps.dispatch_queue.take()

    # WHEN the sweeper looks at it
    make_due(deps, waiting.task_id)
    sweep(deps)

    # THEN it starts
    assert deps.dispatch_queue.messages == [(waiting.task_id, "mountsea-compat")]
    assert deps.tasks.require(waiting.task_id).admitted_at is not None


def test_a_settlement_that_failed_is_made_by_the_sweeper_before_the_event(
    deps: FakeDependencies,
) -> None:
    # GIVEN a ledger that refuses the next settlement
    task = submit(deps).task
    deps.usage.refuse_next = 1

    # WHEN its task succeeds THEN the task ended, but neither its place nor its event is out yet
    drain(deps)
    assert deps.tasks.require(task.task_id).status is TaskStatus.SUCCEEDED
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted"]
    assert deps.usage.usage("c").running == 1

    # WHEN the sweeper comes THEN it settles, then publishes
    make_due(deps, task.task_id)
    sweep(deps)
    assert deps.usage.usage("c").running == 0
    assert deps.events.for_task(task.task_id)[-1] == "Image Task Succeeded"


def test_a_submit_that_fails_after_its_reservation_gives_it_back(deps: FakeDependencies) -> None:
    # GIVEN a client allowed 1 running task WHEN an edit is refused for its input after the
    # reservation THEN the place and the spend are free again
    deps.usage.set_limits("c", max_running_tasks=1)
    deps.configure(prices=APIMODELS_PRICES)
    with pytest.raises(InvalidImage):
        submit(deps, images=[data_url(b"GIF89a not an image we take")])

    usage = deps.usage.usage("c")
    assert (usage.running, usage.spent_usd) == (0, 0.0)
    assert submit(deps).task.admitted_at is not None


class _Killed(BaseException):
    """The function's end in the middle of a request (a timeout, a crash): no handler runs."""


def _die(*_: object) -> None:
    raise _Killed


def _die_submitting(deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch) -> None:
    """A submit whose function ends after its reservation, before its task is written."""
    with monkeypatch.context() as dying:
        dying.setattr(deps.tasks, "create", _die)
        with pytest.raises(_Killed):
            submit(deps)


def test_a_place_held_by_a_submit_that_died_before_writing_its_task_is_given_back(
    make_deps: DepsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN (at devstack's time scale) a client allowed 1 running task whose submit died after
    # its reservation, before its task was written; and a task of it waiting behind that place
    deps = make_deps(time_scale=0.02)
    deps.usage.set_limits("c", max_running_tasks=1)
    deps.configure(prices=APIMODELS_PRICES)
    _die_submitting(deps, monkeypatch)
    waiting = submit(deps).task
    assert waiting.admitted_at is None
    check = deps.timing.hold_check_seconds  # real seconds: function timeouts are not scaled

    # WHEN the sweeper runs before the hold's check time THEN the place stays taken
    deps.clock.advance(check - 1)
    sweep(deps)
    assert deps.dispatch_queue.messages == []

    # WHEN it runs after THEN the place is given back (the waiting task starts in it) at no cost
    deps.clock.advance(1)
    sweep(deps)
    assert deps.dispatch_queue.messages == [(waiting.task_id, "mountsea-compat")]
    usage = deps.usage.usage("c")
    assert (usage.running, usage.queued) == (1, 0)
    assert usage.spent_usd == pytest.approx(0.01)  # the waiting task's estimate alone
    assert deps.metrics.values("UnclaimedHoldsGivenBack") == [0.0, 1.0]


def test_a_sweep_gives_back_at_most_its_page_of_holds_and_the_next_one_the_rest(
    make_deps: DepsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN three submits of a client that died after their reservations, a sweep page of 2
    deps = make_deps(timing=dataclasses.replace(DEFAULT_TIMING, sweep_due_per_shard=2))
    for _ in range(3):
        _die_submitting(deps, monkeypatch)
    deps.clock.advance(deps.timing.hold_check_seconds)

    # WHEN the sweeper runs twice THEN two places come back, then the third
    sweep(deps)
    assert deps.usage.usage("c").running == 1
    sweep(deps)
    assert deps.usage.usage("c").running == 0
    assert deps.metrics.values("UnclaimedHoldsGivenBack") == [2.0, 1.0]


def test_a_hold_that_fails_to_be_checked_stops_neither_the_others_nor_the_sweep(
    make_deps: DepsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two dead submits' holds, and a ledger whose settlement fails once (an AWS error)
    deps = make_deps()
    for _ in range(2):
        _die_submitting(deps, monkeypatch)
    deps.clock.advance(deps.timing.hold_check_seconds)
    settle, failures = deps.usage.settle, [RuntimeError("throttled")]

    def settle_failing_once(*args: object, **kwargs: object) -> object:
        if failures:
            raise failures.pop()
        return settle(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(deps.usage, "settle", settle_failing_once)

    # WHEN the sweeper runs THEN it ends normally with the other place given back
    sweep(deps)
    assert deps.usage.usage("c").running == 1
    # and the next run gives back the one that failed
    sweep(deps)
    assert deps.usage.usage("c").running == 0
    assert deps.metrics.values("UnclaimedHoldsGivenBack") == [1.0, 1.0]


def test_a_sweep_whose_read_of_the_holds_fails_ends_normally(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(**_: object) -> list[object]:
        raise RuntimeError("throttled")

    monkeypatch.setattr(deps.usage, "unclaimed_holds", unreadable)
    assert sweep(deps) == []
    assert deps.metrics.values("UnclaimedHoldsGivenBack") == [0.0]


def test_a_hold_whose_task_exists_is_claimed_once_and_keeps_its_place(
    deps: FakeDependencies,
) -> None:
    # GIVEN a task running for longer than the hold check time
    deps.usage.set_limits("c", max_running_tasks=1)
    running = submit(deps).task
    deps.clock.advance(deps.timing.hold_check_seconds)

    # WHEN the sweeper runs THEN the hold is claimed, not given back: the place stays the task's
    sweep(deps)
    assert deps.usage.is_running("c", running.usage_hold) is True  # type: ignore[arg-type]
    assert deps.usage.usage("c").running == 1
    assert deps.metrics.values("UnclaimedHoldsGivenBack") == [0.0]
    # and it is not checked again
    assert deps.usage.unclaimed_holds(older_than_seconds=0, limit=100) == []


# -- the budget ----------------------------------------------------------------------------------
def test_a_budget_admits_the_estimates_that_fit_and_refuses_the_next(
    deps: FakeDependencies,
) -> None:
    # GIVEN apimodels at $0.025 for 1K medium, and a client with a $0.05 budget
    deps.configure(prices=APIMODELS_PRICES)
    deps.usage.set_limits("c", daily_budget_usd=0.05)
    submit(deps, provider="apimodels", size="1024x1024", quality="medium")
    submit(deps, provider="apimodels", size="1024x1024", quality="medium")

    # WHEN a third is submitted THEN 429 budget_exceeded, retry at midnight UTC (from 12:00:10)
    error = refusal(deps, provider="apimodels", size="1024x1024", quality="medium")
    assert (error.code, error.retry_after_seconds) == ("budget_exceeded", 12 * 3600 - 10)
    assert "$0.05" in error.message
    assert deps.metrics.values("RequestsThrottled", Code="budget_exceeded") == [1.0]
    view = client_usage(deps, "c")
    assert (view.spent_usd, view.daily_budget_usd, view.budget_remaining_usd) == (0.05, 0.05, 0.0)


def test_a_failed_task_gives_its_reservation_back(deps: FakeDependencies) -> None:
    # GIVEN a $0.05 budget spent by two apimodels tasks, the first of which the provider refuses
    deps.configure(prices=APIMODELS_PRICES)
    deps.usage.set_limits("c", daily_budget_usd=0.05)
    deps.providers.script("apimodels").sync_error = ProviderRejected(
        "moderation", provider="apimodels", code="moderation_blocked"
    )
    failed = submit(deps, provider="apimodels", size="1024x1024", quality="medium").task
    drain(deps)
    assert deps.tasks.require(failed.task_id).status is TaskStatus.FAILED
    deps.providers.script("apimodels").sync_error = None
    submit(deps, provider="apimodels", size="1024x1024", quality="medium")

    # WHEN a third is submitted THEN it fits: the failed task cost 0
    submit(deps, provider="apimodels", size="1024x1024", quality="medium")
    assert client_usage(deps, "c").spent_usd == 0.05


def test_the_dearest_provider_a_task_may_fall_back_to_is_reserved_then_settled_to_its_own(
    deps: FakeDependencies,
) -> None:
    # GIVEN a task that may fall back from mountsea-compat ($0.01) to apimodels ($0.025)
    deps.configure(prices=APIMODELS_PRICES)
    request = {"providers": ["mountsea-compat", "apimodels"], "size": "1024x1024"}
    task = submit(deps, provider=None, quality="medium", **request).task

    # THEN $0.025 is reserved; once mountsea-compat made it, the day counts its own $0.01
    assert client_usage(deps, "c").spent_usd == 0.025
    drain(deps)
    assert deps.tasks.require(task.task_id).cost_estimate_usd == 0.01
    assert client_usage(deps, "c").spent_usd == 0.01


def test_the_stacks_defaults_apply_to_clients_the_operator_did_not_set(
    make_deps: DepsFactory,
) -> None:
    # GIVEN stack defaults of 1 submit a minute and a $0.01 budget
    deps = make_deps(client_requests_per_minute=1, client_daily_budget_usd=0.01)
    deps.configure(prices=APIMODELS_PRICES)

    # THEN a $0.025 image is over the budget, and a free one passes once a minute
    assert refusal(deps, provider="apimodels", size="1024x1024", quality="medium").code == (
        "budget_exceeded"
    )
    submit(deps, provider="mountsea-async")
    assert refusal(deps, provider="mountsea-async").code == "rate_limited"
    view = client_usage(deps, "c")
    assert (view.rate.limit_per_minute, view.rate.used, view.rate.remaining) == (1, 1, 0)
    assert view.rate.resets_at.isoformat() == "2026-12-01T12:01:00+00:00"
    assert (view.daily_budget_usd, view.max_running_tasks) == (0.01, 100)


def test_usage_shows_the_day_of_a_client_without_limits_of_its_own(deps: FakeDependencies) -> None:
    submit(deps, provider="mountsea-async")

    view = client_usage(deps, "c")

    assert (view.client_id, view.day, view.running_tasks, view.spent_usd) == (
        "c",
        "2026-12-01",
        1,
        0,
    )
    assert (view.daily_budget_usd, view.budget_remaining_usd) == (None, None)
    assert (view.max_running_tasks, view.rate.limit_per_minute) == (100, 6_000)
    assert (view.queued_tasks, view.max_queued_tasks) == (0, 50_000)


# -- the S3 inbox --------------------------------------------------------------------------------
def test_an_upload_over_its_owners_rate_waits_for_the_next_minute(
    deps: FakeDependencies,
) -> None:
    # GIVEN the inbox's client allowed 1 submit a minute, and a rule for products/
    rules = {"rules": [{"prefix": "products/", "prompt": "White background"}]}
    inbox = FakeInboxDependencies(deps, rules=rules)
    deps.usage.set_limits("inbox-client", requests_per_minute=1)
    first = edit_upload(inbox, inbox.objects.put("products/a.png", png(64, 64)))
    second_upload = inbox.objects.put("products/b.png", png(64, 64, "red"))

    # WHEN a second photo arrives in the same minute THEN it waits: nothing fails, the
    # notification is to be delivered again
    with pytest.raises(UploadMustWait):
        edit_upload(inbox, second_upload)
    assert first.outcome is UploadOutcome.SUBMITTED
    assert [t.task_id for t in deps.tasks.all()] == [first.task_id]
    assert deps.metrics.values("RequestsThrottled", Code="rate_limited") == [1.0]

    # WHEN it is delivered again in the next minute THEN it is submitted
    deps.clock.advance(60)
    again = edit_upload(inbox, second_upload)
    assert again.outcome is UploadOutcome.SUBMITTED


def test_an_upload_of_a_client_whose_rate_is_zero_becomes_a_failed_task_with_the_code(
    deps: FakeDependencies,
) -> None:
    # GIVEN the inbox's client blocked by its operator (a rate of 0 never passes with time)
    rules = {"rules": [{"prefix": "products/", "prompt": "White background"}]}
    inbox = FakeInboxDependencies(deps, rules=rules)
    deps.usage.set_limits("inbox-client", requests_per_minute=0)

    # WHEN a photo arrives
    result = edit_upload(inbox, inbox.objects.put("products/a.png", png(64, 64)))

    # THEN it is a failed task with rate_limited and its event, not an error for the queue
    assert result.outcome is UploadOutcome.REJECTED and result.task_id is not None
    task = deps.tasks.require(result.task_id)
    assert task.status is TaskStatus.FAILED
    assert task.error is not None and task.error.code == "rate_limited"
    assert deps.events.for_task(task.task_id) == ["Image Task Failed"]
    assert deps.usage.usage("inbox-client").running == 0
