"""Hedging: pure rules for starting a second provider beside a slow first one (docs/routing.md).

A task that hedges (``routing.hedge``: the request's ``hedge``, else its client's) gets, when
its provider takes it, one delayed message on the dispatch queue for the next provider of its
ranking. The delay is the provider's measured p90 time to done for the task's operation and
tier (real seconds), or, while it is unmeasured (fewer than ``MIN_SAMPLES`` samples),
``UNMEASURED_FACTOR`` times its documented expected latency (scaled like every nominal wait).
When the message comes and the task is still open at the same provider, the hedge starts:
one more attempt, recorded beside the first (``ProviderAttempt.hedge``). The first image stored
wins the task's conditional terminal write; the other attempt is closed as ``superseded``, its
stored objects (if any) deleted, and its price added to the task's cost (a provider bills the
work it accepted, whether or not we keep the image).

At most one hedge per task: a task hedges once, whatever its fallbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from image_gateway.health.measure import Measured
from image_gateway.health.ranking import MIN_SAMPLES
from image_gateway.models.task import ProviderAttempt, Task, TaskError, TaskStatus

UNMEASURED_FACTOR = 2.0
"""An unmeasured provider is hedged after this many times its expected latency (scaled)."""
MIN_DELAY_SECONDS = 1
"""SQS delays are whole seconds; a hedge never starts sooner than this."""
MAX_DELAY_SECONDS = 900
"""SQS's longest delay (15 minutes): a p90 longer than this is hedged at 15 minutes."""
HEDGE_STEM_SUFFIX = "-hedge"
"""A hedge's outputs are stored at the task's keys with this suffix on the stem, so that two
attempts finishing at once never write the same object (the loser's are deleted)."""


@dataclass(frozen=True)
class HedgeDelay:
    """When the hedge starts after the first provider took the task, and on what basis."""

    seconds: int
    basis: str


def hedge_delay(
    figures: Measured | None, expected_seconds: float, scaled: Callable[[float], float]
) -> HedgeDelay:
    """The provider's measured p90 when it is measured, else ``UNMEASURED_FACTOR`` times its
    expected latency (``scaled``: nominal seconds to the stack's time scale)."""
    p90 = figures.latency_p90_seconds if figures is not None else None
    if figures is not None and figures.samples >= MIN_SAMPLES and p90 is not None:
        seconds, basis = p90, f"its measured p90 ({p90:g} s, {figures.samples} samples)"
    else:
        seconds = scaled(expected_seconds * UNMEASURED_FACTOR)
        basis = f"unmeasured: {UNMEASURED_FACTOR:g}x its expected latency ({expected_seconds:g} s)"
    return HedgeDelay(max(MIN_DELAY_SECONDS, min(MAX_DELAY_SECONDS, round(seconds))), basis)


def wants_hedge(task: Task) -> bool:
    """Whether the task asked to hedge (its routing decision says so)."""
    return task.routing is not None and task.routing.hedge


def hedge_target(task: Task, usable: list[str]) -> str | None:
    """The provider a hedge would start: the first of ``usable`` (the task's fallbacks able to
    make it, in ranking order) other than its own; None when it does not hedge or already did."""
    if not wants_hedge(task) or has_hedged(task) or task.status.terminal:
        return None
    return next((name for name in usable if name != task.provider), None)


def has_hedged(task: Task) -> bool:
    """Whether a hedge was ever started for the task (once per task)."""
    return any(attempt.hedge for attempt in task.attempts)


def open_hedge(task: Task) -> ProviderAttempt | None:
    """The hedge still running beside the task's own provider (None once it ended or won)."""
    for attempt in task.attempts:
        if attempt.hedge and attempt.outcome == "submitted" and attempt.provider != task.provider:
            return attempt
    return None


def hedge_due(task: Task, provider: str) -> bool:
    """Whether a hedge message for ``provider`` should start (or, redelivered after a crash
    before the call, restart) the hedge now: the task is still with its first provider."""
    if task.status not in (TaskStatus.SUBMITTED, TaskStatus.RUNNING) or not wants_hedge(task):
        return False
    if provider == task.provider:  # a fallback got there first: nothing to hedge
        return False
    hedge = open_hedge(task)
    if hedge is not None:  # already started: only an interrupted start is made again
        return hedge.provider == provider and hedge.path is None
    return not has_hedged(task) and provider in task.fallbacks


def start_hedge(task: Task, attempt: ProviderAttempt) -> None:
    """Record the hedge's attempt (before its call) and keep its provider out of the
    fallbacks (it is being tried already)."""
    if open_hedge(task) is None:
        task.attempts.append(attempt)
    task.fallbacks = [name for name in task.fallbacks if name != attempt.provider]


def hedge_accepted(task: Task, provider: str, changes: dict[str, object]) -> None:
    """The hedge's provider took it (``changes``: provider_task_id, path, cost); if the hedge
    became the task's own attempt meanwhile (the first failed), the task follows it."""
    for index, attempt in enumerate(task.attempts):
        if attempt.hedge and attempt.provider == provider and attempt.outcome == "submitted":
            task.attempts[index] = attempt.model_copy(update=changes)
            if provider == task.provider:
                task.provider_task_id = task.attempts[index].provider_task_id
                task.path = task.attempts[index].path
            return


def win_with(task: Task, provider: str) -> None:
    """The hedge at ``provider`` made the image first: the task is now its attempt's (provider,
    provider task id, path, size sent), the first attempt stays open to be closed as
    superseded, and the cost is both prices. Applied inside the succeeding conditional write."""
    hedge = next(
        a for a in task.attempts if a.hedge and a.provider == provider and a.outcome == "submitted"
    )
    first = task.provider
    if not any(
        a.provider == first and a.outcome in ("submitted", "completed") for a in task.attempts
    ):
        # a sync call records its attempt when it returns: record the one it lost now
        task.attempts.insert(
            task.attempts.index(hedge),
            ProviderAttempt(provider=first, at=first_started(task), outcome="submitted"),
        )
    cost = add_costs(task.cost_estimate_usd, hedge.cost_estimate_usd)
    task.provider = hedge.provider
    task.provider_task_id = hedge.provider_task_id
    task.path = hedge.path or task.path
    task.size_sent = hedge.size_sent or task.size_sent
    task.cost_estimate_usd = cost


def cost_with_open_hedge(task: Task) -> float | None:
    """The task's cost when its own provider made the image: its price, plus an open hedge's
    once the hedge's provider took it (it bills the work whether or not we keep the image)."""
    hedge = open_hedge(task)
    if hedge is None or hedge.path is None:
        return task.cost_estimate_usd
    return add_costs(task.cost_estimate_usd, hedge.cost_estimate_usd)


def promote(task: Task, error_at: datetime, error: TaskError) -> bool:
    """The first provider failed while a hedge runs: the hedge becomes the task's attempt (no
    fallback is started, the task does not fail). False when no hedge is open."""
    hedge = open_hedge(task)
    if hedge is None or task.status.terminal:
        return False
    first = task.provider
    closed = False
    for index, attempt in enumerate(task.attempts):
        if attempt.provider == first and attempt.outcome == "submitted":
            task.attempts[index] = attempt.model_copy(
                update={"outcome": "failed", "finished_at": error_at, "error": error}
            )
            closed = True
    if not closed:  # a sync call that failed: its attempt was never recorded
        task.attempts.insert(
            task.attempts.index(hedge),
            ProviderAttempt(
                provider=first,
                at=first_started(task),
                finished_at=error_at,
                outcome="failed",
                error=error,
            ),
        )
    task.provider = hedge.provider
    task.provider_task_id = hedge.provider_task_id
    task.path = hedge.path or task.path
    task.size_sent = hedge.size_sent or task.size_sent
    task.cost_estimate_usd = hedge.cost_estimate_usd
    return True


def first_started(task: Task) -> datetime:
    """When the task's own provider got it: after its last ended attempt, else when the task
    was submitted (else created)."""
    ended = [a.finished_at for a in task.attempts if a.finished_at is not None and not a.hedge]
    return max([task.submitted_at or task.created_at, *ended])


def add_costs(first: float | None, second: float | None) -> float | None:
    """Two prices added; None only when neither is known."""
    if first is None and second is None:
        return None
    return round((first or 0.0) + (second or 0.0), 6)
