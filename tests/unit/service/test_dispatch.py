"""dispatch: one attempt at one provider (a sync call here), its fallbacks, and the give-up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from image_gateway.errors import DownloadFailed, ProviderRejected
from image_gateway.models.request import ImageRequest
from image_gateway.models.task import Task, TaskStatus, utc_now
from image_gateway.service.dispatch import busy_delay, dispatch, give_up
from image_gateway.service.lifecycle import cancel_task
from image_gateway.service.poll import poll_step
from image_gateway.service.refresh import RetryLater
from image_gateway.timing import TimingPolicy

from tests.fakes import FakeDependencies, unavailable
from tests.unit.service.support import data_url, fox, png, queued, submit_and_dispatch

PHOTO_URL = "https://photos.example/cat.png"


def run(deps: FakeDependencies, task: Task) -> Task:
    """The dispatch function receiving the task's message."""
    done = dispatch(deps, task.task_id, task.provider)
    assert done is not None
    return done


def outcomes(task: Task) -> list[tuple[str, str]]:
    return [(a.provider, a.outcome) for a in task.attempts]


# -- success -------------------------------------------------------------------------------------
def test_the_sync_call_finishes_the_task(deps: FakeDependencies) -> None:
    # GIVEN a task queued for mountsea-compat WHEN dispatched
    # THEN running, then succeeded with the image, and one completed attempt
    task = queued(deps, fox(provider="mountsea-compat"))

    done = run(deps, task)

    assert done.status is TaskStatus.SUCCEEDED
    assert [h.status for h in done.history] == [
        TaskStatus.SUBMITTED,
        TaskStatus.RUNNING,
        TaskStatus.SUCCEEDED,
    ]
    assert outcomes(done) == [("mountsea-compat", "completed")]
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted", "Image Task Succeeded"]


def test_the_sync_call_reads_the_task_once(deps: FakeDependencies) -> None:
    # GIVEN a task queued for mountsea-compat
    task = queued(deps, fox(provider="mountsea-compat"))
    before = deps.tasks.reads
    # WHEN dispatched: every write after the message's read starts from the task just written
    done = run(deps, task)
    # THEN it succeeded with its attempt recorded, after one read of the task (one GetItem)
    assert done.status is TaskStatus.SUCCEEDED
    assert outcomes(done) == [("mountsea-compat", "completed")]
    assert deps.tasks.reads - before == 1


def test_an_edit_uploads_its_stored_inputs(deps: FakeDependencies) -> None:
    # GIVEN an edit whose photo was stored at submit WHEN dispatched
    # THEN the multipart call streams it from the bucket and the task succeeds
    photo = png(64, 64)
    task = queued(deps, fox(provider="mountsea-compat", images=[data_url(photo)]))

    done = run(deps, task)

    assert done.status is TaskStatus.SUCCEEDED
    assert deps.fetcher.fetched == []  # read from our bucket, not downloaded


# -- retryable failures fall back ----------------------------------------------------------------
def test_a_retryable_failure_falls_back_to_the_next_sync_provider(
    deps: FakeDependencies,
) -> None:
    # GIVEN mountsea-compat answering 503, with openai left in task.fallbacks
    deps.providers.script("mountsea-compat").sync_error = unavailable("mountsea-compat")
    task = queued(deps, fox(providers=["mountsea-compat", "openai"]))

    # WHEN dispatched THEN the task is re-queued for openai, with the failed try on record
    moved = run(deps, task)

    assert deps.dispatch_queue.take() == [(task.task_id, "openai")]
    assert (moved.provider, moved.fallbacks, moved.status) == ("openai", [], TaskStatus.RUNNING)
    assert outcomes(moved) == [("mountsea-compat", "failed")]

    # WHEN openai's message is dispatched THEN the task succeeds, both tries on record
    done = run(deps, moved)

    assert done.status is TaskStatus.SUCCEEDED
    assert outcomes(done) == [("mountsea-compat", "failed"), ("openai", "completed")]


def test_a_retryable_failure_falls_back_to_an_async_provider(deps: FakeDependencies) -> None:
    # GIVEN mountsea-compat down and mountsea-async (a poll provider) left in task.fallbacks
    deps.providers.script("mountsea-compat").sync_error = unavailable("mountsea-compat")
    task = queued(deps, fox(providers=["mountsea-compat", "mountsea-async"]))

    # WHEN dispatched THEN an attempt at mountsea-async is queued; when it is made, it creates
    # the task and its poll loop starts
    run(deps, task)
    assert deps.dispatch_queue.take() == [(task.task_id, "mountsea-async")]
    moved = run(deps, deps.tasks.require(task.task_id))

    assert (moved.provider, moved.path) == ("mountsea-async", "poll")
    assert moved.provider_task_id is not None
    assert task.task_id in deps.poll_loops.started
    assert outcomes(moved) == [("mountsea-compat", "failed"), ("mountsea-async", "submitted")]

    # WHEN the loop polls THEN the task succeeds
    assert poll_step(deps, task.task_id, 0).done is True
    assert deps.tasks.require(task.task_id).status is TaskStatus.SUCCEEDED


def test_a_fallback_to_a_callback_provider_gets_a_callback_url(deps: FakeDependencies) -> None:
    # GIVEN mountsea-compat down and apimart left WHEN dispatched
    # THEN apimart is given the stack's callback URL for the task
    deps.providers.script("mountsea-compat").sync_error = unavailable("mountsea-compat")
    task = queued(deps, fox(providers=["mountsea-compat", "apimart"]))

    run(deps, task)
    assert deps.dispatch_queue.take() == [(task.task_id, "apimart")]
    moved = run(deps, deps.tasks.require(task.task_id))

    (create,) = deps.providers.calls_to("apimart", "create")
    assert create.callback_url is not None
    assert create.callback_url.startswith(
        f"https://gateway.example/webhooks/apimart/{task.task_id}/"
    )
    assert moved.path == "callback"


def test_fallbacks_disabled_meanwhile_are_skipped(deps: FakeDependencies) -> None:
    # GIVEN openai disabled by the operator after the task was queued
    deps.providers.script("mountsea-compat").sync_error = unavailable("mountsea-compat")
    task = queued(deps, fox(providers=["mountsea-compat", "openai", "mountsea-async"]))
    deps.configure(disabled=["openai"])

    # WHEN mountsea-compat fails retryably THEN mountsea-async takes it
    assert run(deps, task).provider == "mountsea-async"


def test_a_retryable_failure_with_no_fallback_left_fails_the_task(
    deps: FakeDependencies,
) -> None:
    # GIVEN mountsea-compat down and nothing else listed WHEN dispatched
    # THEN the task fails with its error and the attempt on record
    deps.providers.script("mountsea-compat").sync_error = unavailable("mountsea-compat")
    task = queued(deps, fox(provider="mountsea-compat"))

    failed = run(deps, task)

    assert failed.status is TaskStatus.FAILED
    assert failed.error is not None and failed.error.code == "provider_unavailable"
    assert outcomes(failed) == [("mountsea-compat", "failed")]
    assert deps.events.for_task(task.task_id)[-1] == "Image Task Failed"


def test_a_non_retryable_failure_fails_without_falling_back(deps: FakeDependencies) -> None:
    # GIVEN mountsea-compat refusing the prompt, openai left WHEN dispatched
    # THEN the task fails with the refusal and openai is never called
    deps.providers.script("mountsea-compat").sync_error = ProviderRejected(
        "blocked", provider="mountsea-compat", code="moderation_blocked"
    )
    task = queued(deps, fox(providers=["mountsea-compat", "openai"]))

    failed = run(deps, task)

    assert failed.error is not None and failed.error.code == "moderation_blocked"
    assert outcomes(failed) == [("mountsea-compat", "failed")]
    assert deps.providers.calls_to("openai") == []


def test_a_fallback_the_queue_cannot_take_fails_the_task(deps: FakeDependencies) -> None:
    # GIVEN mountsea-compat down, openai left, and the queue refusing messages
    deps.providers.script("mountsea-compat").sync_error = unavailable("mountsea-compat")
    task = queued(deps, fox(providers=["mountsea-compat", "openai"]))
    deps.dispatch_queue.unavailable = True

    # WHEN dispatched THEN the task fails (dispatch_unavailable) instead of hanging
    failed = run(deps, task)

    assert failed.error is not None and failed.error.code == "dispatch_unavailable"


# -- inputs --------------------------------------------------------------------------------------
def input_error(deps: FakeDependencies, task: Task) -> str | None:
    failed = run(deps, task)
    assert failed.status is TaskStatus.FAILED
    assert deps.providers.calls_to("mountsea-compat", "sync") == []  # nothing was sent
    return failed.error.code if failed.error else None


def test_an_input_url_that_is_gone_fails_the_task(deps: FakeDependencies) -> None:
    # GIVEN an edit of a URL answering 404 WHEN dispatched THEN input_download_failed
    task = queued(deps, fox(provider="mountsea-compat", images=[PHOTO_URL]))

    assert input_error(deps, task) == "input_download_failed"


def test_an_input_download_that_timed_out_is_retried(deps: FakeDependencies) -> None:
    # GIVEN an input URL timing out WHEN dispatched
    # THEN RetryLater (SQS delivers the message again) and the task stays running
    deps.fetcher.failures[PHOTO_URL] = DownloadFailed("timed out", retryable=True)
    task = queued(deps, fox(provider="mountsea-compat", images=[PHOTO_URL]))

    with pytest.raises(RetryLater):
        run(deps, task)

    assert deps.tasks.require(task.task_id).status is TaskStatus.RUNNING


def test_an_input_at_an_unreachable_host_fails_the_task_once_its_retries_are_spent(
    deps: FakeDependencies,
) -> None:
    # GIVEN an input URL whose host never answers
    deps.fetcher.failures[PHOTO_URL] = DownloadFailed("could not connect", retryable=True)
    task = queued(deps, fox(provider="mountsea-compat", images=[PHOTO_URL]))

    # WHEN the message is delivered max_download_failures times THEN the first ones retry and
    # the last one fails the task with a download error (not left to expire)
    for _ in range(deps.timing.max_download_failures - 1):
        with pytest.raises(RetryLater):
            run(deps, task)
    failed = run(deps, task)

    assert failed.status is TaskStatus.FAILED
    assert failed.error is not None and failed.error.code == "input_download_failed"


def test_an_input_that_is_not_an_image_fails_the_task(deps: FakeDependencies) -> None:
    # GIVEN an input URL serving HTML WHEN dispatched THEN invalid_image
    deps.fetcher.bodies[PHOTO_URL] = b"<html>login</html>"
    task = queued(deps, fox(provider="mountsea-compat", images=[PHOTO_URL]))

    assert input_error(deps, task) == "invalid_image"


def test_an_oversized_input_fails_the_task(deps: FakeDependencies) -> None:
    # GIVEN an input URL over the download limit WHEN dispatched THEN payload_too_large
    deps.fetcher.bodies[PHOTO_URL] = png(64, 64)
    deps.fetcher.max_bytes = 100
    task = queued(deps, fox(provider="mountsea-compat", images=[PHOTO_URL]))

    assert input_error(deps, task) == "payload_too_large"


def test_a_stored_input_deleted_meanwhile_fails_the_task(deps: FakeDependencies) -> None:
    # GIVEN an edit whose stored photo was deleted before dispatch WHEN dispatched
    # THEN not_found
    task = queued(deps, fox(provider="mountsea-compat", images=[data_url(png(64, 64))]))
    deps.images.objects.clear()

    assert input_error(deps, task) == "not_found"


def test_a_request_the_provider_can_no_longer_honour_fails_the_task(
    deps: FakeDependencies,
) -> None:
    # GIVEN a queued task whose stored request asks for a size mountsea-compat does not make
    # (queued under other provider capabilities)
    task = queued(deps, fox(provider="mountsea-compat"))
    deps.tasks.update(
        task.task_id,
        lambda t: setattr(t, "request", t.request.model_copy(update={"size": "2048x2048"})),
    )

    # WHEN dispatched THEN it fails with the provider's refusal, nothing sent
    assert input_error(deps, task) == "unsupported_by_provider"


# -- stale messages and the dead-letter queue ----------------------------------------------------
def test_a_message_for_a_finished_task_is_ignored(deps: FakeDependencies) -> None:
    # GIVEN a task that already succeeded WHEN its message is delivered again
    # THEN nothing is called (no second payment)
    task = queued(deps, fox(provider="mountsea-compat"))
    run(deps, task)

    again = run(deps, task)

    assert again.status is TaskStatus.SUCCEEDED
    assert len(deps.providers.calls_to("mountsea-compat", "sync")) == 1


def test_a_message_for_a_provider_the_task_has_left_is_ignored(deps: FakeDependencies) -> None:
    # GIVEN a task that fell back from mountsea-compat to openai
    deps.providers.script("mountsea-compat").sync_error = unavailable("mountsea-compat")
    task = queued(deps, fox(providers=["mountsea-compat", "openai"]))
    run(deps, task)

    # WHEN mountsea-compat's message is delivered again THEN nothing is called
    stale = dispatch(deps, task.task_id, "mountsea-compat")

    assert stale is not None and stale.provider == "openai"
    assert len(deps.providers.calls_to("mountsea-compat", "sync")) == 1


def test_a_message_for_an_async_task_is_ignored(deps: FakeDependencies) -> None:
    # GIVEN a task on the poll path WHEN a dispatch message names it THEN nothing is called
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task

    dispatch(deps, task.task_id, "mountsea-async")

    assert deps.providers.calls_to("mountsea-async", "sync") == []


def test_a_message_for_an_unknown_task_is_dropped(deps: FakeDependencies) -> None:
    # GIVEN no such task WHEN a message names it THEN None and nothing is called
    assert dispatch(deps, "tsk_nobody", "mountsea-compat") is None
    assert deps.providers.calls == []


def test_giving_up_fails_the_task_with_its_event(deps: FakeDependencies) -> None:
    # GIVEN a message that crashed the dispatch function on every delivery (dead-letter queue)
    task = queued(deps, fox(provider="mountsea-compat"))

    # WHEN the dead-letter record is handled THEN the task fails (dispatch_failed), announced
    failed = give_up(deps, task.task_id, "mountsea-compat")

    assert failed is not None and failed.error is not None
    assert (failed.status, failed.error.code) == (TaskStatus.FAILED, "dispatch_failed")
    assert deps.events.for_task(task.task_id)[-1] == "Image Task Failed"


def test_giving_up_on_a_finished_task_changes_nothing(deps: FakeDependencies) -> None:
    # GIVEN a task a later delivery finished WHEN its dead-letter record is handled
    task = queued(deps, fox(provider="mountsea-compat"))
    run(deps, task)

    after = give_up(deps, task.task_id, "mountsea-compat")

    assert after is not None and after.status is TaskStatus.SUCCEEDED


def test_giving_up_on_a_provider_the_task_has_left_changes_nothing(
    deps: FakeDependencies,
) -> None:
    # GIVEN a task that fell back to openai WHEN mountsea-compat's dead letter is handled
    # THEN the task (now openai's) is left running
    deps.providers.script("mountsea-compat").sync_error = unavailable("mountsea-compat")
    task = queued(deps, fox(providers=["mountsea-compat", "openai"]))
    run(deps, task)

    after = give_up(deps, task.task_id, "mountsea-compat")

    assert after is not None and after.status is TaskStatus.RUNNING


def test_giving_up_on_an_unknown_task_is_none(deps: FakeDependencies) -> None:
    # GIVEN no such task WHEN a dead letter names it THEN None
    assert give_up(deps, "tsk_nobody", "mountsea-compat") is None


# -- cancel races --------------------------------------------------------------------------------
def test_a_task_cancelled_as_dispatch_starts_is_not_sent(deps: FakeDependencies) -> None:
    # GIVEN the client's cancel written just before dispatch marks the task running
    task = queued(deps, fox(provider="mountsea-compat"))
    deps.tasks.before_next_transition(lambda: cancel_task(deps, deps.tasks.require(task.task_id)))

    # WHEN dispatched THEN the provider is not called and the task stays cancelled
    after = run(deps, task)

    assert after.status is TaskStatus.CANCELLED
    assert deps.providers.calls == []


def test_a_task_cancelled_during_the_sync_call_stays_cancelled(deps: FakeDependencies) -> None:
    # GIVEN the client cancelling while mountsea-compat draws
    task = queued(deps, fox(provider="mountsea-compat"))
    deps.providers.script("mountsea-compat").while_working = lambda: cancel_task(
        deps, deps.tasks.require(task.task_id)
    )

    # WHEN the image comes back THEN the task stays cancelled, with no Succeeded event
    after = run(deps, task)

    assert after.status is TaskStatus.CANCELLED
    assert "Image Task Succeeded" not in deps.events.for_task(task.task_id)


def test_a_task_cancelled_during_a_failing_sync_call_is_not_requeued(
    deps: FakeDependencies,
) -> None:
    # GIVEN the client cancelling while mountsea-compat works, then mountsea-compat failing,
    # with openai (sync) left
    script = deps.providers.script("mountsea-compat")
    script.sync_error = unavailable("mountsea-compat")
    task = queued(deps, fox(providers=["mountsea-compat", "openai"]))
    script.while_working = lambda: cancel_task(deps, deps.tasks.require(task.task_id))

    # WHEN dispatch handles the failure THEN no message is queued for openai
    after = run(deps, task)

    assert after.status is TaskStatus.CANCELLED
    assert deps.dispatch_queue.messages == []


def test_a_task_cancelled_during_a_failing_sync_call_is_not_sent_elsewhere(
    deps: FakeDependencies,
) -> None:
    # GIVEN the client cancelling while mountsea-compat works, and mountsea-compat then failing
    script = deps.providers.script("mountsea-compat")
    script.sync_error = unavailable("mountsea-compat")
    task = queued(deps, fox(providers=["mountsea-compat", "mountsea-async"]))
    script.while_working = lambda: cancel_task(deps, deps.tasks.require(task.task_id))

    # WHEN dispatch handles the failure
    after = run(deps, task)

    # THEN the task stays cancelled and the fallback provider is never called
    assert after.status is TaskStatus.CANCELLED
    assert deps.providers.calls_to("mountsea-async") == []


# -- per-provider concurrency ----------------------------------------------------------------------
def test_a_provider_at_its_concurrency_limit_gets_the_attempt_queued_again(
    deps: FakeDependencies,
) -> None:
    # GIVEN apimart limited to one call in flight, and that one slot held by another task
    deps.configure(concurrency={"apimart": 1})
    assert deps.slots.acquire("apimart", "other", limit=1, lease_seconds=300) is not None
    task = queued(deps, fox(provider="apimart"))

    # WHEN its attempt is dispatched
    waiting = run(deps, task)

    # THEN nothing is sent; the attempt waits in the queue (delayed), the task still queued
    assert deps.providers.calls == []
    assert waiting.status is TaskStatus.QUEUED
    assert deps.dispatch_queue.messages == [(task.task_id, "apimart")]
    assert deps.dispatch_queue.delays[-1] >= 1


def test_a_call_releases_its_slot_whatever_the_outcome(deps: FakeDependencies) -> None:
    # GIVEN a limit of one and a first task whose provider fails
    deps.configure(concurrency={"mountsea-compat": 1})
    deps.providers.script("mountsea-compat").sync_error = unavailable("mountsea-compat")
    first = queued(deps, fox(provider="mountsea-compat"))
    run(deps, first)

    # WHEN a second task is dispatched THEN the slot is free again and its call is made
    deps.providers.script("mountsea-compat").sync_error = None
    second = queued(deps, fox(provider="mountsea-compat"))

    assert run(deps, second).status is TaskStatus.SUCCEEDED
    assert deps.slots.in_use("mountsea-compat") == 0


def test_the_default_concurrency_lets_sixteen_calls_in_flight(deps: FakeDependencies) -> None:
    # GIVEN sixteen slots of mountsea-compat held WHEN another attempt comes THEN it waits
    for index in range(16):
        assert deps.slots.acquire("mountsea-compat", f"o{index}", limit=16, lease_seconds=300)
    task = queued(deps, fox(provider="mountsea-compat"))

    assert run(deps, task).status is TaskStatus.QUEUED
    assert deps.providers.calls == []


def busy_apimart(deps: FakeDependencies, request: ImageRequest, waited: float) -> Task:
    """A task whose attempt at apimart (one slot, held by another) has waited ``waited`` s."""
    deps.configure(concurrency={"apimart": 1})
    assert deps.slots.acquire("apimart", "other", limit=1, lease_seconds=300) is not None
    task = queued(deps, request)

    def admitted_earlier(t: Task) -> None:
        t.admitted_at = utc_now() - timedelta(seconds=waited)

    return deps.tasks.update(task.task_id, admitted_earlier)


def test_a_busy_providers_wait_grows_with_the_time_waited_up_to_the_cap() -> None:
    # GIVEN the default policy without jitter, at time scale 1
    timing = TimingPolicy(provider_busy_jitter_fraction=0.0)

    # WHEN the attempt has waited 0 s, 30 s, 90 s and an hour THEN: the base, then half the
    # wait so far, never over the cap
    delays = [busy_delay(timing, float, waited) for waited in (0, 30, 90, 3600)]
    assert delays == [5, 15, 45, 60]


def test_a_busy_providers_wait_is_jittered_within_its_fraction() -> None:
    # GIVEN a wait of 40 s with 20 % jitter WHEN drawn many times THEN spread in 32-48 s
    timing = TimingPolicy(provider_busy_growth=1.0, provider_busy_retry_cap_seconds=100)
    drawn = {busy_delay(timing, float, 40) for _ in range(200)}
    assert min(drawn) >= 32 and max(drawn) <= 48 and len(drawn) > 5


def test_an_attempt_busy_past_the_spill_bound_moves_to_the_next_provider(
    deps: FakeDependencies,
) -> None:
    # GIVEN an attempt that has waited longer than provider_busy_spill_seconds for apimart
    waited = deps.timing.provider_busy_spill_seconds + 1
    task = busy_apimart(deps, fox(providers=["apimart", "mountsea-async"]), waited)

    # WHEN it is dispatched again
    moved = run(deps, task)

    # THEN it spills to the fallback at once, the busy wait recorded as a failed attempt
    assert moved.provider == "mountsea-async"
    assert deps.dispatch_queue.messages == [(task.task_id, "mountsea-async")]
    assert deps.dispatch_queue.delays[-1] == 0
    assert [(a.provider, a.error and a.error.code) for a in moved.attempts] == [
        ("apimart", "provider_busy")
    ]


def test_an_attempt_busy_past_the_spill_bound_without_fallbacks_keeps_waiting(
    deps: FakeDependencies,
) -> None:
    # GIVEN a task pinned to apimart that has waited past the spill bound
    task = busy_apimart(deps, fox(provider="apimart"), deps.timing.provider_busy_spill_seconds)

    # WHEN it is dispatched again THEN it waits for apimart again, about the capped delay
    waiting = run(deps, task)

    assert waiting.status is TaskStatus.QUEUED and waiting.provider == "apimart"
    assert deps.dispatch_queue.messages == [(task.task_id, "apimart")]
    cap = deps.timing.provider_busy_retry_cap_seconds
    assert cap * 0.8 - 1 <= deps.dispatch_queue.delays[-1] <= cap * 1.2 + 1


def test_each_busy_look_is_counted_as_a_provider_slot_wait(deps: FakeDependencies) -> None:
    # GIVEN apimart busy WHEN the attempt is dispatched THEN one ProviderSlotWaits for apimart
    run(deps, busy_apimart(deps, fox(provider="apimart"), 0))

    assert deps.metrics.values("ProviderSlotWaits", Provider="apimart") == [1.0]
