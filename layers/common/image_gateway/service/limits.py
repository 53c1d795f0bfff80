"""Per-client limits at submit, and the settlement when a task ends.

``hold_usage`` runs inside ``submit_task`` (so every entry point, the API, the S3 inbox and the
OpenAI-compatible surface, gets it): the client's limits are its own (the operator's item in the
ledger) over the stack's defaults; one reservation counts the request in the rate window, the
task as open and its estimate in today's spend, or refuses with a 429 and writes nothing.

The estimate reserved is the dearest of the providers the task may use (its fallbacks
included), so a fallback never takes a client past its budget unseen; when the task ends it is
settled to the task's own ``cost_estimate_usd`` (0 for a failed task, or one no provider took).
Settlement happens on the way to the terminal event (``lifecycle.publish_pending_event``): the
winning writer settles before it publishes, and when either fails the sweeper does both again;
the ledger settles a hold only once, so a retry or a duplicate never frees a slot twice.
"""

from __future__ import annotations

from datetime import datetime

from aws_lambda_powertools import Logger

from image_gateway.errors import TooManyRequests
from image_gateway.limits.ports import ClientLimits, LimitKind, UsageHold
from image_gateway.models.request import ImageRequest
from image_gateway.models.task import Task
from image_gateway.models.usage import RateWindowView, UsageView
from image_gateway.ports import Dependencies
from image_gateway.service.routing import Candidate

logger = Logger(child=True)

_ADVICE = {
    LimitKind.RATE: "too many submits in this minute for this client (limit {rate} a minute): "
    "retry after {retry} s (Retry-After), or ask the operator for a higher limit",
    LimitKind.OPEN_TASKS: "this client already has {open} unfinished tasks (its limit): wait "
    "for one to end (or cancel one), then retry; GET /v1/usage shows the count",
    LimitKind.BUDGET: "this request's estimated ${cost} would take the client past its daily "
    "budget of ${budget}: retry after midnight UTC (Retry-After), or ask the operator to raise "
    "it; GET /v1/usage shows today's spend",
}


def client_limits(deps: Dependencies, client_id: str) -> ClientLimits:
    """The limits in force for ``client_id``: the operator's, else the stack's defaults."""
    settings = deps.settings
    defaults = ClientLimits(
        requests_per_minute=settings.client_requests_per_minute,
        max_open_tasks=settings.client_max_open_tasks,
        daily_budget_usd=settings.client_daily_budget_usd,
    )
    return defaults.over(deps.usage.overrides(client_id))


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
    deadline: datetime,
) -> UsageHold:
    """Reserve the task's place in the client's limits, or raise 429 (``TooManyRequests``)."""
    limits = client_limits(deps, client_id)
    cost = reserved_estimate(deps, request, candidates)
    admission = deps.usage.reserve(
        client_id, task_id, limits=limits, cost_usd=cost, deadline=deadline
    )
    if admission.hold is not None:
        return admission.hold
    kind = admission.refused or LimitKind.RATE
    retry = admission.retry_after_seconds
    if retry is None:
        retry = max(1, round(deps.settings.scaled(deps.timing.open_tasks_retry_after_seconds)))
    deps.metrics.put("RequestsThrottled", 1, "Count", {"Code": kind.value})
    logger.info("request refused by a limit", extra={"client_id": client_id, "code": kind.value})
    message = _ADVICE[kind].format(
        rate=limits.requests_per_minute,
        open=limits.max_open_tasks,
        budget=limits.daily_budget_usd,
        cost=cost,
        retry=retry,
    )
    raise TooManyRequests(message, code=kind.value, retry_after_seconds=retry)


def release_usage(deps: Dependencies, client_id: str, hold: UsageHold) -> None:
    """Give the hold back: the submit failed before its task was written (costs nothing)."""
    deps.usage.settle(client_id, hold, cost_usd=0.0)


def settle_usage(deps: Dependencies, task: Task) -> bool:
    """Settle an ended task's hold at its final estimate; False when the ledger failed (the
    caller leaves the event unpublished, so the sweeper comes back to both)."""
    if task.usage_hold is None or not task.status.terminal:
        return True
    try:
        deps.usage.settle(task.client_id, task.usage_hold, cost_usd=task.cost_estimate_usd or 0.0)
    except Exception:
        logger.exception(
            "usage not settled; the sweeper will retry", extra={"task_id": task.task_id}
        )
        return False
    return True


def client_usage(deps: Dependencies, client_id: str) -> UsageView:
    """``GET /v1/usage``: today's spend and budget, open tasks, the current rate window."""
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
        open_tasks=counts.open_tasks,
        max_open_tasks=limits.max_open_tasks,
        rate=RateWindowView.of(counts, limit=limits.requests_per_minute),
    )
