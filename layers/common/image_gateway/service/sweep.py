"""The sweep (every minute): emit missing events, poll late callbacks, expire overdue tasks.

Tasks of a provider with a batch status query are read with one call per
``timing.batch_status_size`` tasks instead of one each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from aws_lambda_powertools import Logger

from image_gateway.errors import ProviderError
from image_gateway.models.task import Task, TaskStatus, utc_now
from image_gateway.ports import Dependencies, TaskNotFound
from image_gateway.providers.base import ProviderStatus
from image_gateway.service.lifecycle import expire_task
from image_gateway.service.limits import (
    dispatch_admitted,
    release_usage,
    send_attempt,
    start_queued,
)
from image_gateway.service.parts import check_parent
from image_gateway.service.refresh import RetryLater, refresh_task
from image_gateway.service.sweep_check import HOLDS_GIVEN_BACK_METRIC, OVERDUE_METRIC

logger = Logger(child=True)


def sweep(deps: Dependencies, *, clock: Callable[[], float] = time.monotonic) -> list[str]:
    """Look at every task whose check time passed; the ids it looked at.

    Reads ``sweep_due_per_shard`` due tasks per index shard, handles them, and reads again
    while a page came back full and the run is younger than ``sweep_run_seconds`` (so the
    recovery rate grows with the backlog, and one run ends before the next minute's starts).
    """
    started = clock()
    limit = deps.timing.sweep_due_per_shard
    seen: list[str] = []
    looked: set[str] = set()
    overdue: list[float] = []
    while True:
        ids = list(deps.tasks.tasks_due(utc_now(), limit=limit))
        fresh = [i for i in dict.fromkeys(ids) if i not in looked]  # the index may lag a write
        due = [t for task_id in fresh if (t := deps.tasks.get(task_id))]
        overdue.extend(_overdue(due))
        looked.update(fresh)
        seen.extend(_sweep_page(deps, due))
        more = len(ids) >= limit and fresh  # a full page: more may be due behind it
        if not more or clock() - started >= deps.timing.sweep_run_seconds:
            break
    deps.metrics.put(OVERDUE_METRIC, max(overdue, default=0.0), "Seconds", {})
    given_back = give_back_unclaimed_holds(deps)
    deps.metrics.put(HOLDS_GIVEN_BACK_METRIC, float(given_back), "Count", {})
    return seen


def give_back_unclaimed_holds(deps: Dependencies) -> int:
    """A hold whose task was never written (its submit died between the reservation and the
    task's write: a timeout, a crash) holds its client's place for ever: settled here, at no
    cost, once ``hold_check_seconds`` have passed; a hold whose task exists is claimed and
    never checked again. At most ``sweep_due_per_shard`` holds a run (three requests each), so
    a queue of thousands waiting longer than that is claimed over several runs without
    stretching any. How many were given back."""
    # real seconds, not scaled: what it waits out is a function's timeout, which devstack
    # does not scale either (scaled, devstack's queued holds were all checked within a minute)
    try:
        unclaimed_holds = deps.usage.unclaimed_holds(
            older_than_seconds=deps.timing.hold_check_seconds,
            limit=deps.timing.sweep_due_per_shard,
        )
    except Exception:  # an AWS error: nothing lost, the next run reads them again
        logger.exception("unclaimed holds not read now; the next sweep reads them")
        return 0
    given_back = 0
    for unclaimed in unclaimed_holds:
        task_id = unclaimed.hold.task_id
        try:
            if deps.tasks.get(task_id) is not None:
                deps.usage.claim(task_id)
                continue
            logger.warning(
                "a submit ended between its reservation and its task: its place is given back",
                extra={"task_id": task_id, "client_id": unclaimed.client_id},
            )
            release_usage(deps, unclaimed.client_id, unclaimed.hold)
        except Exception:  # one hold's failure stops neither the others nor the sweep
            logger.exception(
                "hold not checked now; the next sweep looks again", extra={"task_id": task_id}
            )
            continue
        given_back += 1
    return given_back


def _sweep_page(deps: Dependencies, due: list[Task]) -> list[str]:
    prefetched = _batch_statuses(deps, due)
    seen: list[str] = []
    try:
        for task in due:
            seen.append(task.task_id)
            _sweep_one(deps, task.task_id, prefetched.pop(task.task_id, None))
    finally:
        for status in prefetched.values():
            status.close()
    return seen


def _overdue(due: list[Task]) -> list[float]:
    """How far past its deadline each open task is; a working sweep keeps the oldest near 0."""
    now = utc_now()
    return [
        (now - t.deadline_at).total_seconds()
        for t in due
        if not t.status.terminal and t.deadline_at is not None and t.deadline_at < now
    ]


def _sweep_one(deps: Dependencies, task_id: str, status: ProviderStatus | None) -> None:
    try:
        task = refresh_task(
            deps, task_id, by="sweeper", status=status, emit_missing_event=True
        ).task
    except RetryLater:
        task = deps.tasks.require(task_id)
    except TaskNotFound:
        return
    if task.status.terminal:
        return
    if task.is_parent:  # its parts have their own deadlines; it ends with them
        task = check_parent(deps, task)
        if task.status.terminal:
            return
    elif task.deadline_at is not None and utc_now() >= task.deadline_at:
        expire_task(deps, task_id, by="sweeper")
        return
    recheck = deps.timing.sweep_recheck_seconds
    if task.status is TaskStatus.QUEUED:
        _nudge_queued(deps, task)
        recheck = deps.timing.queue_recheck_seconds
    step = timedelta(seconds=deps.settings.scaled(recheck))

    def later(t: Task) -> None:  # look again after the recheck interval, or at the deadline
        t.check_at = min(utc_now() + step, t.deadline_at or utc_now() + step)

    deps.tasks.update(task_id, later)


def _nudge_queued(deps: Dependencies, task: Task) -> None:
    """A task still waiting its turn long after it was submitted: whatever a crash between two
    writes left undone is done now. A free place of its client is given to its oldest queued
    task; a task given a place but never marked gets its attempt; a task marked long ago that
    never reached a provider gets its attempt sent again (the dispatch function ignores an
    attempt already made)."""
    hold = task.usage_hold
    if hold is None:
        return
    running = deps.usage.is_running(task.client_id, hold)
    if running is False:
        start_queued(deps, task.client_id)
        running = deps.usage.is_running(task.client_id, hold)
    if not running:
        return
    if task.admitted_at is None:
        dispatch_admitted(deps, task.task_id)
        return
    logger.warning(
        "admitted task never reached a provider: attempt sent again",
        extra={"task_id": task.task_id},
    )
    send_attempt(deps, task)


def _batch_statuses(deps: Dependencies, tasks: list[Task]) -> dict[str, ProviderStatus]:
    """Task id -> provider status, for open tasks of batch-capable providers (2+ per provider).

    A failed batch query is logged and skipped: those tasks are then read one by one.
    """
    groups: dict[str, list[Task]] = {}
    for task in tasks:
        if task.status.terminal or task.provider_task_id is None:
            continue
        if deps.directory.provider(task.provider).capabilities.batch_poll:
            groups.setdefault(task.provider, []).append(task)
    found: dict[str, ProviderStatus] = {}
    size = deps.timing.batch_status_size
    for provider, group in groups.items():
        if len(group) < 2:
            continue
        for start in range(0, len(group), size):
            chunk = group[start : start + size]
            ours = {t.provider_task_id: t.task_id for t in chunk if t.provider_task_id}
            try:
                answers = deps.providers.client(provider).batch_status(list(ours))
            except ProviderError as error:
                logger.warning(
                    "batch status failed; reading tasks one by one",
                    extra={"provider": provider, "error": error.message},
                )
                continue
            for provider_task_id, status in answers.items():
                if provider_task_id in ours:
                    found[ours[provider_task_id]] = status
                else:
                    status.close()
            logger.info("batch status", extra={"provider": provider, "tasks": len(chunk)})
    return found
