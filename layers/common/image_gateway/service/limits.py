"""Per-client limits at submit, the client's queue, and the settlement when a task ends.

``hold_usage`` runs inside ``submit_task`` (so every entry point, the API, the S3 inbox and the
OpenAI-compatible surface, gets it): the client's limits are its own (the operator's item in the
ledger) over the stack's defaults. One reservation counts the request in the rate window, its
estimate in today's spend and the task as **running** (one of the client's
``max_running_tasks`` places) or, when every place is taken, as **queued**: the task is accepted
all the same and waits its turn. Only the rate, the daily budget and a full queue
(``max_queued_tasks``) refuse, with a 429, and write nothing.

A queued task starts when one of its client's running tasks ends, oldest first
(:func:`start_queued`): the settlement of a running task frees its place and the settler moves
the client's oldest queued task into it and puts its first attempt on the dispatch queue. This
is what keeps clients fair to each other: each client has its own queue, and only its running
tasks (at most its limit) are ever on the shared dispatch queue, so a client with 10,000 tasks
waiting has no more on the shared path than one with 100 (README, "Limits and queueing").

The estimate reserved is the dearest of the providers the task may use (its fallbacks
included), so a fallback never takes a client past its budget unseen; when the task ends it is
settled to the task's own ``cost_estimate_usd`` (0 for a failed task, or one no provider took).
Settlement happens on the way to the terminal event (``lifecycle.publish_pending_event``): the
winning writer settles before it publishes, and when either fails the sweeper does both again;
the ledger settles a hold only once, so a retry or a duplicate never frees a place twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from image_gateway.errors import ServiceBusy, TooManyRequests
from image_gateway.limits.ports import (
    Admission,
    ClientLimits,
    ClientState,
    LedgerBusy,
    LimitKind,
    LimitOverrides,
    Settlement,
    UsageHold,
)
from image_gateway.models.request import ImageRequest
from image_gateway.models.task import Task, utc_now
from image_gateway.models.usage import RateWindowView, UsageView
from image_gateway.ports import Dependencies, QueueUnavailable

if TYPE_CHECKING:  # routing is the submit path's: a finaliser settling a hold never imports it
    from image_gateway.service.routing import Candidate

logger = Logger(child=True)

_ADVICE = {
    LimitKind.RATE: "too many submits in this minute for this client (limit {rate} a minute): "
    "retry after {retry} s (Retry-After), or ask the operator for a higher limit",
    LimitKind.QUEUE_FULL: "this client already has {queued} tasks waiting for one of its "
    "{running} running places (its queue's limit): retry after some have started "
    "(Retry-After), or cancel some; GET /v1/usage shows the counts",
    LimitKind.BUDGET: "this request's estimated ${cost} would take the client past its daily "
    "budget of ${budget}: retry after midnight UTC (Retry-After), or ask the operator to raise "
    "it; GET /v1/usage shows today's spend",
}


class ClientRead:
    """A submit's read of its client: the limits item and the counts, read at most once and
    together (one request, :meth:`UsageLedger.client_state`), when routing (the client's policy,
    hedging), the limits or the reservation first need them."""

    def __init__(self, deps: Dependencies, client_id: str) -> None:
        self._deps = deps
        self._client_id = client_id
        self._state: ClientState | None = None

    def state(self) -> ClientState:
        """The limits item and the counts (read now, the first time)."""
        if self._state is None:
            self._state = self._deps.usage.client_state(self._client_id)
        return self._state

    def overrides(self) -> LimitOverrides:
        """The operator's limits item."""
        return self.state().overrides


def client_limits(
    deps: Dependencies, client_id: str, *, overrides: Callable[[], LimitOverrides] | None = None
) -> ClientLimits:
    """The limits in force for ``client_id``: the operator's, else the stack's defaults
    (``overrides``: the operator's item as the caller read it, else read now)."""
    settings = deps.settings
    defaults = ClientLimits(
        requests_per_minute=settings.client_requests_per_minute,
        max_running_tasks=settings.client_max_running_tasks,
        max_queued_tasks=settings.client_max_queued_tasks,
        daily_budget_usd=settings.client_daily_budget_usd,
    )
    return defaults.over(overrides() if overrides else deps.usage.overrides(client_id))


def reserved_estimate(
    deps: Dependencies, request: ImageRequest, candidates: list[Candidate]
) -> float:
    """The dearest estimate among the providers the task may use (0 without price tables)."""
    estimates = (deps.directory.estimate(c.provider.name, request, c.plan) for c in candidates)
    return max((e for e in estimates if e is not None), default=0.0)


def hold_usage(
    deps: Dependencies,
    request: ImageRequest,
    candidates: list[Candidate],
    *,
    client_id: str,
    task_id: str,
    prepaid: bool = False,
    client: ClientRead | None = None,
) -> Admission:
    """Reserve the task's place (running, or queued) in the client's limits, or raise 429
    (``TooManyRequests``), or 503 (``ServiceBusy``) when the ledger kept conflicting.
    ``prepaid``: its batch already put its estimate in the day's spend. ``client``: the
    client's limits item and counts as the submit read them (routing may have already), which
    the reservation's first try decides on; else the limits item is read now."""
    overrides = client.overrides if client is not None else None
    limits = client_limits(deps, client_id, overrides=overrides)
    cost = reserved_estimate(deps, request, candidates)
    try:
        admission = deps.usage.reserve(
            client_id,
            task_id,
            limits=limits,
            cost_usd=cost,
            prepaid=prepaid,
            seen=client.state() if client is not None else None,
        )
    except LedgerBusy as busy:
        deps.metrics.put("LedgerBusy", 1, "Count", {"Step": "reserve"})
        logger.warning("usage ledger busy", extra={"client_id": client_id, "why": str(busy)})
        raise ServiceBusy(
            "this client's counters are being changed by many requests at once: retry after "
            "the Retry-After seconds (nothing was written)",
            retry_after_seconds=1,
        ) from busy
    if admission.hold is not None:
        if not admission.started:
            deps.metrics.put("TasksQueuedForClientLimit", 1, "Count", {})
        return admission
    kind = admission.refused or LimitKind.RATE
    retry = admission.retry_after_seconds
    if retry is None:
        retry = max(1, round(deps.settings.scaled(deps.timing.queue_full_retry_after_seconds)))
    deps.metrics.put("RequestsThrottled", 1, "Count", {"Code": kind.value})
    logger.info("request refused by a limit", extra={"client_id": client_id, "code": kind.value})
    message = _ADVICE[kind].format(
        rate=limits.requests_per_minute,
        running=limits.max_running_tasks,
        queued=limits.max_queued_tasks,
        budget=limits.daily_budget_usd,
        cost=cost,
        retry=retry,
    )
    refusal = TooManyRequests(message, code=kind.value, retry_after_seconds=retry)
    # the minute's rate and a full queue pass with time; a limit of 0 or a spent budget do not
    refusal.passes_with_time = kind is not LimitKind.BUDGET and (
        limits.refused_outright(cost) is None
    )
    raise refusal


def release_usage(deps: Dependencies, client_id: str, hold: UsageHold | None) -> None:
    """Give the hold back: its submit failed before its task was written (costs nothing)."""
    if hold is not None:
        settled = deps.usage.settle(client_id, hold, cost_usd=0.0)
        if settled is Settlement.RUNNING:
            start_queued(deps, client_id)


def settle_usage(deps: Dependencies, task: Task) -> bool:
    """Settle an ended task's hold at its final estimate, then start the client's next queued
    task in the place it freed; False when the ledger failed (the caller leaves the event
    unpublished, so the sweeper comes back to both)."""
    if task.usage_hold is None or not task.status.terminal:
        return True
    try:
        settled = deps.usage.settle(
            task.client_id, task.usage_hold, cost_usd=task.cost_estimate_usd or 0.0
        )
    except Exception:
        logger.exception(
            "usage not settled; the sweeper will retry", extra={"task_id": task.task_id}
        )
        return False
    if settled is Settlement.RUNNING:
        start_queued(deps, task.client_id)
    return True


def start_queued(deps: Dependencies, client_id: str) -> list[str]:
    """Start the client's oldest queued tasks while it has free places: each gets its place in
    the ledger (exactly one caller wins it), is marked admitted and has its first attempt put
    on the dispatch queue. A failure here loses nothing: the sweeper looks at every queued task
    again (``timing.queue_recheck_seconds``). The ids started."""
    try:
        started = deps.usage.start_next(client_id, limits=lambda: client_limits(deps, client_id))
    except Exception:  # LedgerBusy or an AWS error: the sweeper's look at queued tasks retries
        logger.exception("queued tasks not started now", extra={"client_id": client_id})
        return []
    for task_id in started:
        dispatch_admitted(deps, task_id)
    return started


def dispatch_admitted(deps: Dependencies, task_id: str) -> bool:
    """Mark a task whose hold just got a running place as admitted and queue its first
    attempt; True when this caller did (the task exists, is still queued and was not marked
    by another caller: a submitter and a starter may both get here for one task)."""
    task = deps.tasks.get(task_id)
    if task is None:  # its submit is still writing it: the submitter dispatches it
        return False

    def admit(t: Task) -> None:
        if t.admitted_at is not None or t.status.terminal:
            raise _AlreadyAdmitted
        t.admitted_at = utc_now()

    try:
        task = deps.tasks.update(task_id, admit)
    except _AlreadyAdmitted:
        return False
    send_attempt(deps, task)
    return True


def send_attempt(deps: Dependencies, task: Task, *, delay_seconds: int = 0) -> None:
    """Put an admitted task's attempt at its provider on the dispatch queue; a queue that
    refuses is logged (the sweeper's look at queued tasks sends it again)."""
    try:
        deps.dispatch_queue.send(task.task_id, task.provider, delay_seconds=delay_seconds)
    except QueueUnavailable:
        logger.exception("admitted task not queued now", extra={"task_id": task.task_id})


class _AlreadyAdmitted(Exception):
    """Another caller admitted the task first (or it ended)."""


def client_usage(deps: Dependencies, client_id: str) -> UsageView:
    """``GET /v1/usage``: today's spend and budget, running and queued tasks, the rate."""
    limits = client_limits(deps, client_id)
    counts = deps.usage.usage(client_id)
    budget = limits.daily_budget_usd
    return UsageView(
        client_id=client_id,
        day=counts.day,
        spent_usd=counts.spent_usd,
        daily_budget_usd=budget,
        budget_remaining_usd=None
        if budget is None
        else round(max(0.0, budget - counts.spent_usd), 6),
        running_tasks=counts.running,
        max_running_tasks=limits.max_running_tasks,
        queued_tasks=counts.queued,
        max_queued_tasks=limits.max_queued_tasks,
        rate=RateWindowView.of(counts, limit=limits.requests_per_minute),
    )
