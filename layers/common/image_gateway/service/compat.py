"""The OpenAI-compatible call: an ordinary task, submitted, attempted and waited for in the request.

``POST /openai/v1/images/{generations,edits}`` is served by its own function behind a Lambda
function URL (no 30 s API Gateway limit), so one request may wait as long as the image takes.
The task is made by :func:`~image_gateway.service.submit.submit_task` (the same validation,
limits, routing and staging as ``POST /v1/images``). Then:

- **the first attempt is made here**, by the dispatch flow itself
  (:func:`~image_gateway.service.dispatch.dispatch`: leases, the provider call, fallback). A
  sync provider's image arrives in this function, which is waiting anyway, instead of a second
  function waiting for the same image (half the Lambda time on the sync path: docs/openai.md,
  cost). The attempt is also queued, delayed past this function's
  timeout (``compat_dispatch_safety_delay_seconds``): if this function dies mid-attempt, the
  dispatch function makes it then; otherwise that message finds the attempt made and does
  nothing. A fallback's next attempt goes through the dispatch queue as always.
- :func:`wait_for_task` then waits for the task **without busy-polling DynamoDB**:

  - the first look is at the provider's expected latency for the request (the poll loop's
    first wait), counted from the task's creation; a task that moved to another provider
    (fallback) gets that provider's expected latency again, counted from the move;
  - later looks back off from the provider's poll interval (x ``poll_backoff_factor`` per
    look, at most ``compat_look_cap_seconds``), never past the wait's end;
  - each look is :func:`~image_gateway.service.refresh.refresh_task`: it reads the task and,
    for a task an async provider holds (``poll`` or ``callback`` path), asks the provider and
    finalises the task when it is done. A callback, the poll loop or the sweeper may finalise
    it at the same moment: the conditional status write lets exactly one win, and the others
    find the task finished.

When the wait must end (``compat_wait_seconds``, or the invocation's time running out) with the
task still open, the caller gets the task to pick up from ``GET /v1/tasks/{id}``: it goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from image_gateway.models.parts import part_ids
from image_gateway.models.request import ImageRequest
from image_gateway.models.task import Task, utc_now
from image_gateway.ports import Dependencies
from image_gateway.providers.registry import get_provider
from image_gateway.service.dispatch import dispatch
from image_gateway.service.handoff import queue_attempt
from image_gateway.service.refresh import RetryLater, refresh_task
from image_gateway.service.submit import submit_task

logger = Logger(child=True)


@dataclass(frozen=True)
class Clock:
    """Monotonic seconds and a sleep: the real ones in Lambda, a fake one in tests."""

    now: Callable[[], float]
    sleep: Callable[[float], None]


SYSTEM_CLOCK = Clock(now=time.monotonic, sleep=time.sleep)


@dataclass(frozen=True)
class WaitOutcome:
    """The task when the wait ended, and how many looks it took."""

    task: Task
    looks: int

    @property
    def finished(self) -> bool:
        """True when the task is terminal (succeeded, failed, cancelled or expired)."""
        return self.task.status.terminal


@dataclass(frozen=True)
class CompatResult:
    """What a compat call did: the task (finished or not) and whether it is an earlier one."""

    outcome: WaitOutcome
    replayed: bool


def create_and_wait(
    deps: Dependencies,
    request: ImageRequest,
    *,
    client_id: str,
    budget_seconds: float,
    idempotency_key: str | None = None,
    callback_base_url: str | None = None,
    request_id: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> CompatResult:
    """Submit ``request`` as an ordinary task, make its first attempt, then wait for it; all
    within ``budget_seconds`` (the attempt's own time included).

    Refusals (validation, limits, routing, inputs) raise from ``submit_task`` before anything is
    written, exactly as on ``POST /v1/images``.
    """
    started = clock.now()
    submission = submit_task(
        deps,
        request,
        client_id=client_id,
        idempotency_key=idempotency_key,
        callback_base_url=callback_base_url,
        request_id=request_id,
        first_attempt_delay_seconds=deps.timing.compat_dispatch_safety_delay_seconds,
    )
    task = submission.task
    # a replay's attempt belongs to the request that made it; a task waiting for its client's
    # running limit is dispatched when it starts (the wait below simply lasts longer); the
    # parts of a task of n images go through the dispatch queue, in parallel
    if submission.started:
        task = attempt_here(deps, task)
    left = budget_seconds - (clock.now() - started)
    outcome = wait_for_task(deps, task, budget_seconds=max(0.0, left), clock=clock)
    return CompatResult(outcome=outcome, replayed=submission.replayed)


def attempt_here(deps: Dependencies, task: Task) -> Task:
    """The task's first attempt, made by this function (see the module); the task afterwards.

    A failure of our own side (an input download, a bug) hands the attempt to the dispatch
    function now, through the queue, instead of after the safety delay.
    """
    try:
        return dispatch(deps, task.task_id, task.provider, known=task) or task
    except RetryLater as transient:
        logger.info("compat attempt: queued again", extra={"why": str(transient)})
    except Exception:
        logger.exception("compat attempt failed; the dispatch function makes it")
    current = deps.tasks.require(task.task_id)
    if current.status.terminal or current.provider != task.provider:
        return current
    return queue_attempt(deps, current, task.provider)


def wait_budget(deps: Dependencies, remaining_seconds: float | None) -> float:
    """How long a compat call may wait: the policy's wait (time-scaled), and never so long
    that the invocation has less than ``compat_answer_margin_seconds`` left to answer."""
    budget = deps.settings.scaled(deps.timing.compat_wait_seconds)
    if remaining_seconds is not None:
        budget = min(budget, remaining_seconds - deps.timing.compat_answer_margin_seconds)
    return max(0.0, budget)


def wait_for_task(
    deps: Dependencies, task: Task, *, budget_seconds: float, clock: Clock = SYSTEM_CLOCK
) -> WaitOutcome:
    """Look at the task on the provider's latency schedule until it ends or the budget does.

    The first look waits the provider's expected latency (less the task's age); see the module.
    """
    end = clock.now() + budget_seconds
    looks = 0
    provider = task.provider
    wait = _first_wait(deps, task)
    while not task.status.terminal:
        left = end - clock.now()
        if left <= 0:
            break
        clock.sleep(min(max(wait, 0.0), left))
        task = _look(deps, task)
        looks += 1
        if task.provider != provider:  # fell back: the new provider's latency, from now
            provider = task.provider
            wait = _expected(deps, task)
        else:
            interval = get_provider(task.provider).poll_interval_seconds
            wait = deps.settings.scaled(deps.timing.compat_look_wait(interval, looks - 1))
    logger.info(
        "compat wait ended",
        extra={"task_id": task.task_id, "status": task.status, "looks": looks},
    )
    return WaitOutcome(task=task, looks=looks)


def _expected(deps: Dependencies, task: Task) -> float:
    return deps.settings.scaled(get_provider(task.provider).expected_latency_seconds(task.request))


def _first_wait(deps: Dependencies, task: Task) -> float:
    """The expected latency, less what has passed since the task was created (a replay)."""
    age = (utc_now() - task.created_at).total_seconds()
    return max(0.0, _expected(deps, task) - max(0.0, age))


def _look(deps: Dependencies, task: Task) -> Task:
    """Refresh the task (ask its async provider; finalise when done), or just read it; a task
    of n images refreshes its open parts (the last one to end ends it), then is read."""
    if not task.is_parent:
        return _refresh(deps, task.task_id)
    ended = {entry.index for entry in task.parts}
    for index, part in enumerate(part_ids(task)):
        if index not in ended:
            _refresh(deps, part)
    return deps.tasks.require(task.task_id)


def _refresh(deps: Dependencies, task_id: str) -> Task:
    try:
        return refresh_task(deps, task_id, by="compat").task
    except RetryLater as transient:  # the provider or the download failed for now: look later
        logger.info("compat look: try again", extra={"task_id": task_id, "why": str(transient)})
        return deps.tasks.require(task_id)
