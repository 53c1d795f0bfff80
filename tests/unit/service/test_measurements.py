"""Measurements: each attempt of an ended task counted once in its provider's figures (answers,
failures, time to done), by the writer that won the terminal status; the figures read back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from image_gateway.errors import ProviderRejected
from image_gateway.health.measure import (
    BUCKET_SECONDS,
    WINDOW_SECONDS,
    Bucket,
    latency_bucket,
    quantile,
    summarise,
)
from image_gateway.models.request import Operation
from image_gateway.models.task import Task, TaskStatus, utc_now
from image_gateway.providers.base import ProviderState
from image_gateway.service.health import measured
from image_gateway.service.lifecycle import cancel_task
from image_gateway.service.poll import poll_step
from image_gateway.service.submit import submit_task

from tests.fakes import FakeDependencies, unavailable
from tests.unit.service.support import drain, fox, submit_and_dispatch


def histogram(*seconds: float) -> tuple[int, ...]:
    counts = [0] * 24
    for s in seconds:
        counts[latency_bucket(s)] += 1
    return tuple(counts)


def polled(deps: FakeDependencies, state: ProviderState, **fields: object) -> str:
    """A mountsea-async task whose first poll sees ``state``; its id."""
    deps.providers.script("mountsea-async").statuses = [state]
    task = submit_and_dispatch(deps, fox(**fields), client_id="c").task
    poll_step(deps, task.task_id, 0)
    return task.task_id


# -- the figures -----------------------------------------------------------------------------------
def test_quantiles_are_read_from_the_histogram_within_a_bucket() -> None:
    # GIVEN nine times of 0.3 s and one of 3 s WHEN read THEN p50 is within 0.2-0.3, p90 too
    counts = histogram(*([0.3] * 9), 3.0)

    assert 0.2 < (quantile(counts, 0.5) or 0) <= 0.3
    assert 0.2 < (quantile(counts, 0.9) or 0) <= 0.3
    assert 2.0 < (quantile(counts, 0.99) or 0) <= 3.0
    assert quantile((0,) * 24, 0.5) is None


def test_summed_records_give_samples_and_success_rate() -> None:
    # GIVEN two minutes' records WHEN summed THEN answers over samples
    records = [
        Bucket("apimart", Operation.GENERATE, "1K", 0, answers=3, failures=1, latency=histogram(1)),
        Bucket("apimart", Operation.GENERATE, "1K", 60, answers=5, failures=1),
    ]

    figures = summarise(records)

    assert (figures.samples, figures.success_rate, figures.latencies) == (10, 0.8, 1)
    assert figures.window == "15m"


# -- what a task's end records ---------------------------------------------------------------------
def test_a_finished_task_counts_one_answer_with_its_time_to_done(deps: FakeDependencies) -> None:
    # GIVEN a mountsea-async task WHEN its poll finds the image and stores it
    task_id = polled(deps, ProviderState.SUCCEEDED, provider="mountsea-async")

    # THEN the provider's figures for generate at 1K hold one answer with its latency
    assert deps.tasks.require(task_id).status is TaskStatus.SUCCEEDED
    figures = measured(deps, "mountsea-async", operation=Operation.GENERATE, tier="1K")
    assert (figures.samples, figures.success_rate, figures.latencies) == (1, 1.0, 1)
    assert figures.latency_p50_seconds is not None
    assert measured(deps, "mountsea-async", tier="4K").samples == 0


def test_moderation_counts_as_an_answer_without_a_latency(deps: FakeDependencies) -> None:
    # GIVEN the provider refusing the prompt (moderation) WHEN the poll sees it
    deps.providers.script("mountsea-async").failure = ProviderRejected(
        "blocked", provider="mountsea-async", code="moderation_blocked"
    )
    polled(deps, ProviderState.FAILED, provider="mountsea-async")

    # THEN an answer (success rate 1), but no time to an image
    figures = measured(deps, "mountsea-async")
    assert (figures.samples, figures.success_rate, figures.latencies) == (1, 1.0, 0)


def test_a_fallback_counts_the_failed_provider_and_the_one_that_answered(
    deps: FakeDependencies,
) -> None:
    # GIVEN apimart answering 503 WHEN a task falls back to mountsea-async and finishes
    deps.providers.script("apimart").create_error = unavailable("apimart")
    polled(deps, ProviderState.SUCCEEDED, providers=["apimart", "mountsea-async"])

    # THEN apimart has one failure and mountsea-async one answer
    assert measured(deps, "apimart").success_rate == 0.0
    assert measured(deps, "mountsea-async").success_rate == 1.0


def test_a_cancelled_task_says_nothing_about_its_provider(deps: FakeDependencies) -> None:
    # GIVEN a task at mountsea-async WHEN the caller cancels it
    deps.providers.script("mountsea-async").statuses = [ProviderState.RUNNING]
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task
    cancel_task(deps, task)

    # THEN nothing is measured
    assert measured(deps, "mountsea-async").samples == 0


def test_only_the_winning_writer_counts_a_task(deps: FakeDependencies) -> None:
    # GIVEN a finished task WHEN a late poll finds it terminal
    task_id = polled(deps, ProviderState.SUCCEEDED, provider="mountsea-async")
    poll_step(deps, task_id, 1)

    # THEN its attempt was counted once
    assert deps.health.measurements.adds == 1


@pytest.mark.parametrize("minutes_later", [0, 14])
def test_a_sample_stays_in_the_window_for_fifteen_minutes(
    deps: FakeDependencies, minutes_later: int
) -> None:
    # GIVEN one measured task WHEN read up to 14 minutes later THEN it is in the window
    polled(deps, ProviderState.SUCCEEDED, provider="mountsea-async")
    deps.health.advance(minutes_later * BUCKET_SECONDS)

    assert measured(deps, "mountsea-async").samples == 1


def test_a_sample_leaves_the_window_after_it(deps: FakeDependencies) -> None:
    # GIVEN one measured task WHEN read a window and a minute later THEN it is gone
    polled(deps, ProviderState.SUCCEEDED, provider="mountsea-async")
    deps.health.advance(WINDOW_SECONDS + BUCKET_SECONDS)

    assert measured(deps, "mountsea-async").samples == 0


def test_an_attempts_wait_for_a_provider_slot_is_measured(deps: FakeDependencies) -> None:
    # GIVEN a mountsea-async task handed to its provider 30 s ago (it waited for a slot)
    deps.providers.script("mountsea-async").statuses = [ProviderState.SUCCEEDED]
    task = submit_task(deps, fox(provider="mountsea-async"), client_id="c").task

    def handed_earlier(t: Task) -> None:
        t.admitted_at = utc_now() - timedelta(seconds=30)

    deps.tasks.update(task.task_id, handed_earlier)

    # WHEN its attempt gets a slot and the task ends
    drain(deps)
    poll_step(deps, task.task_id, 0)

    # THEN its attempt says how long it waited, and the provider's figures hold it (read from
    # the histogram: within the bucket of 30-45 s)
    (attempt,) = deps.tasks.require(task.task_id).attempts
    assert attempt.slot_wait_seconds is not None and 30 <= attempt.slot_wait_seconds < 31
    figures = measured(deps, "mountsea-async")
    assert figures.slot_wait_p50_seconds is not None and 30 < figures.slot_wait_p50_seconds <= 45
