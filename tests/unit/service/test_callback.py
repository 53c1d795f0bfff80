"""The webhook's flow and the finaliser behind it: answer at once, finalise once per task.

``accept_callback`` is what the webhook runs; ``run_finaliser`` is the finalize function as its
SQS event source drives it (receive a message, ``refresh_task``, delete it or let it come back).
"""

from __future__ import annotations

import pytest
from image_gateway.errors import DownloadFailed
from image_gateway.models.task import Task, TaskStatus
from image_gateway.service.callback import CallbackOutcome, accept_callback, callback_digest
from image_gateway.service.refresh import RetryLater, refresh_task

from tests.fakes import FakeDependencies
from tests.unit.service.support import RESULT_URL, fox, png, submit_and_dispatch


@pytest.fixture
def task(deps: FakeDependencies) -> Task:
    """An apimart task (a callback provider) whose result is an image URL, submitted."""
    deps.providers.script("apimart").image_url = RESULT_URL
    deps.fetcher.bodies[RESULT_URL] = png(256, 256)
    return submit_and_dispatch(deps, fox(provider="apimart"), client_id="c").task


def token(deps: FakeDependencies, task: Task) -> str:
    return deps.signer.token("apimart", task.task_id)


def call_back(
    deps: FakeDependencies, task: Task, body: str = '{"status": "done"}'
) -> CallbackOutcome:
    """The provider's callback, with the right token."""
    return accept_callback(deps, "apimart", task.task_id, token(deps, task), body)


def run_finaliser(deps: FakeDependencies, *, crash_first: bool = False) -> int:
    """Deliver every deliverable message to the finaliser until none is left; the runs made.

    ``crash_first``: the first run dies mid-way (after the provider said done, before anything
    was stored), so its message comes back, as a killed or timed-out invocation's does.
    """
    runs = 0
    while (message := deps.finalize_queue.receive()) is not None:
        runs += 1
        if crash_first and runs == 1:
            deps.finalize_queue.settle(message, succeeded=False)
            continue
        try:
            refresh_task(deps, message.task_id, by="callback")
        except RetryLater:
            deps.finalize_queue.settle(message, succeeded=False)
            continue
        deps.finalize_queue.settle(message, succeeded=True)
    return runs


def test_a_callback_is_answered_before_the_image_is_fetched(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN a finished apimart task WHEN its callback arrives
    outcome = call_back(deps, task)

    # THEN it is queued and answered, and nothing was asked of the provider nor downloaded yet
    assert outcome is CallbackOutcome.QUEUED
    assert [m.task_id for m in deps.finalize_queue.messages] == [task.task_id]
    assert deps.providers.calls_to("apimart", "status") == []
    assert deps.fetcher.fetched == []
    assert deps.tasks.require(task.task_id).status is TaskStatus.SUBMITTED
    # AND the finaliser then stores the image and ends the task, with its event
    assert run_finaliser(deps) == 1
    done = deps.tasks.require(task.task_id)
    assert (done.status, done.finalized_by) == (TaskStatus.SUCCEEDED, "callback")
    assert deps.fetcher.fetched == [RESULT_URL]


def test_twenty_copies_of_a_callback_make_one_download_and_one_event(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN apimart calling back 20 times with the same body
    outcomes = {call_back(deps, task) for _ in range(20)}

    # WHEN the finaliser runs THEN one message was queued, one download made, one event sent
    assert outcomes == {CallbackOutcome.QUEUED}
    assert run_finaliser(deps) == 1
    assert deps.fetcher.fetched == [RESULT_URL]
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted", "Image Task Succeeded"]


def test_a_different_callback_of_a_finished_task_downloads_nothing_more(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN a progress callback and a completion callback (two bodies: two messages)
    call_back(deps, task, '{"status": "processing"}')
    call_back(deps, task, '{"status": "completed"}')

    # WHEN the finaliser runs THEN both are handled, one after the other, and the second finds
    # the task finished: still one download, one terminal event
    assert run_finaliser(deps) == 2
    assert deps.fetcher.fetched == [RESULT_URL]
    assert deps.events.for_task(task.task_id).count("Image Task Succeeded") == 1


def test_a_finaliser_that_crashes_mid_way_is_retried_and_the_task_has_one_event(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN a queued callback WHEN the first finaliser dies before storing anything
    call_back(deps, task)
    runs = run_finaliser(deps, crash_first=True)

    # THEN the message comes back, the second run finishes the task, with one event
    assert runs == 2
    assert deps.tasks.require(task.task_id).status is TaskStatus.SUCCEEDED
    assert deps.events.for_task(task.task_id).count("Image Task Succeeded") == 1


def test_a_download_that_fails_for_now_is_retried_from_the_queue(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN the result URL failing once with a retryable error
    deps.fetcher.failures[RESULT_URL] = DownloadFailed("connection reset", retryable=True)
    call_back(deps, task)
    message = deps.finalize_queue.receive()
    assert message is not None

    # WHEN the finaliser runs THEN it asks for a retry and the message stays queued
    with pytest.raises(RetryLater):
        refresh_task(deps, message.task_id, by="callback")
    deps.finalize_queue.settle(message, succeeded=False)
    assert deps.tasks.require(task.task_id).status is not TaskStatus.SUCCEEDED
    # AND once the URL answers, the next delivery finishes the task
    del deps.fetcher.failures[RESULT_URL]
    assert run_finaliser(deps) == 1
    assert deps.tasks.require(task.task_id).status is TaskStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("provider", "task_id", "bad_token"),
    [
        ("apimart", None, "0" * 64),  # a made-up token
        ("apimart", None, ""),  # no token
        ("apimodels", None, None),  # another provider's name with this task's token
        ("apimart", "tsk_other", None),  # this task's token on another task
        ("apimart", None, "é" * 64),  # not even ASCII
    ],
)
def test_a_forged_callback_is_refused_and_queues_nothing(
    deps: FakeDependencies, task: Task, provider: str, task_id: str | None, bad_token: str | None
) -> None:
    outcome = accept_callback(
        deps,
        provider,
        task_id or task.task_id,
        token(deps, task) if bad_token is None else bad_token,
        "{}",
    )

    assert outcome is CallbackOutcome.REFUSED
    assert deps.finalize_queue.messages == []
    assert deps.finalize_queue.sends == 0


def test_a_queue_that_refuses_asks_the_provider_to_call_again(
    deps: FakeDependencies, task: Task
) -> None:
    deps.finalize_queue.unavailable = True

    assert call_back(deps, task) is CallbackOutcome.UNAVAILABLE
    deps.finalize_queue.unavailable = False
    assert call_back(deps, task) is CallbackOutcome.QUEUED


def test_the_digest_is_the_same_for_copies_and_differs_between_bodies() -> None:
    assert callback_digest('{"a": 1}') == callback_digest(b'{"a": 1}')
    assert callback_digest('{"a": 1}') != callback_digest('{"a": 2}')
    assert callback_digest(None) == callback_digest("")
    assert len(callback_digest("x")) == 32
