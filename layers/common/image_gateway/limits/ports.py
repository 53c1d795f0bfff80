"""The usage ledger port: per-client counters that admit or refuse a submit, and settle it.

Adapter :class:`image_gateway.adapters.dynamodb_limits.DynamoDBUsageLedger` (items in the tasks
table), fake ``tests.fakes.InMemoryUsageLedger``; both pass ``tests/contract/test_usage_ledger``.
The ledger keeps its own clock (the rate window and the UTC day are its business), so flows and
tests never compute windows themselves; fakes take an injected clock.

Three counters per client, all changed in one all-or-nothing reservation at submit:

- **requests in the current rate window** (fixed windows of ``window_seconds``);
- **open tasks**: a set of entries, one per task not yet settled, so that settling twice (a
  duplicate terminal writer, the sweeper's retry) removes it once;
- **the day's spend** (UTC): the estimates reserved at submit, adjusted to each task's final
  estimate when it is settled (a failed task's is 0), with the unsettled task ids alongside,
  so a second settlement of the same task changes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

_T = TypeVar("_T")

RATE_WINDOW_SECONDS = 60
"""The rate limit counts submits per fixed window of a minute (its unit: requests per minute)."""


class LimitKind(StrEnum):
    """Which limit refused a submit; the value is the error's stable code."""

    RATE = "rate_limited"
    OPEN_TASKS = "too_many_open_tasks"
    BUDGET = "budget_exceeded"


@dataclass(frozen=True)
class LimitOverrides:
    """What the operator set for one client (None: the stack's default applies)."""

    requests_per_minute: int | None = None
    max_open_tasks: int | None = None
    daily_budget_usd: float | None = None


@dataclass(frozen=True)
class ClientLimits:
    """The limits in force for one client: its overrides over the stack's defaults."""

    requests_per_minute: int
    max_open_tasks: int
    daily_budget_usd: float | None

    def over(self, overrides: LimitOverrides) -> ClientLimits:
        """These defaults with ``overrides`` applied."""
        return ClientLimits(
            requests_per_minute=_pick(overrides.requests_per_minute, self.requests_per_minute),
            max_open_tasks=_pick(overrides.max_open_tasks, self.max_open_tasks),
            daily_budget_usd=_pick(overrides.daily_budget_usd, self.daily_budget_usd),
        )

    def budget_room(self, cost_usd: float) -> Decimal | None:
        """The most the day's spend may already be for ``cost_usd`` more to fit (None: no
        budget). Exact decimals: 0.05 - 0.025 is 0.025, not 0.024999..."""
        if self.daily_budget_usd is None:
            return None
        return usd(self.daily_budget_usd) - usd(cost_usd)

    def refused_outright(self, cost_usd: float) -> LimitKind | None:
        """The limit no counter value can meet (a rate or open-task limit of 0, a request
        dearer than the whole budget): refused without a write."""
        if self.requests_per_minute <= 0:
            return LimitKind.RATE
        if self.max_open_tasks <= 0:
            return LimitKind.OPEN_TASKS
        room = self.budget_room(cost_usd)
        if room is not None and room < 0:
            return LimitKind.BUDGET
        return None


def _pick(override: _T | None, default: _T) -> _T:
    return default if override is None else override


def usd(amount: float) -> Decimal:
    """A USD amount as the exact decimal the ledger stores (micro-dollars)."""
    return Decimal(str(round(amount, 6)))


class UsageHold(BaseModel):
    """What a task holds in its client's counters until it is settled (stored on the task)."""

    model_config = ConfigDict(frozen=True)

    day: str = Field(description="the UTC day (YYYY-MM-DD) whose spend the task counts in")
    reserved_usd: float = Field(description="the estimate reserved at submit")
    open_entry: str = Field(description="the task's entry in the open-task set")


@dataclass(frozen=True)
class Admission:
    """What a reservation did: the hold, or the limit that refused (and when to retry)."""

    hold: UsageHold | None
    refused: LimitKind | None = None
    retry_after_seconds: int | None = None  # None: the caller decides


@dataclass(frozen=True)
class UsageCounts:
    """A client's counters now (``GET /v1/usage``)."""

    day: str
    spent_usd: float
    open_tasks: int
    window_start: datetime
    window_seconds: int
    window_requests: int


def seconds_until(now: float, then: float) -> int:
    """Whole seconds from ``now`` to ``then`` (epoch seconds), at least 1: a Retry-After."""
    return max(1, math.ceil(then - now))


def window_start(now: float) -> int:
    """The start (epoch s) of the rate window holding ``now``."""
    return int(now // RATE_WINDOW_SECONDS * RATE_WINDOW_SECONDS)


def utc_day(now: float) -> str:
    """The UTC day (YYYY-MM-DD) of ``now`` (epoch s): budgets are per UTC day."""
    return datetime.fromtimestamp(now, UTC).date().isoformat()


def next_utc_day(now: float) -> float:
    """The epoch second the next UTC day starts."""
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=1)).timestamp()


def refusal(kind: LimitKind, now: float) -> Admission:
    """A refusal by ``kind`` at ``now``: retry at the next window or day (open tasks: None)."""
    if kind is LimitKind.RATE:
        retry: int | None = seconds_until(now, window_start(now) + RATE_WINDOW_SECONDS)
    elif kind is LimitKind.BUDGET:
        retry = seconds_until(now, next_utc_day(now))
    else:
        retry = None
    return Admission(hold=None, refused=kind, retry_after_seconds=retry)


class UsageLedger(Protocol):
    """Per-client counters: reserve at submit (all or nothing), settle once at the end."""

    def overrides(self, client_id: str) -> LimitOverrides:
        """The operator's limits for ``client_id`` (all None when none are set)."""
        ...

    def reserve(
        self,
        client_id: str,
        task_id: str,
        *,
        limits: ClientLimits,
        cost_usd: float,
        deadline: datetime,
    ) -> Admission:
        """Count one request in the rate window, one open task (until ``deadline``, after which
        a never-settled entry may be pruned) and ``cost_usd`` of today's spend, or nothing at all
        when a limit refuses (the first of rate, open tasks, budget). A budget refuses when
        today's spend plus ``cost_usd`` would pass it. ``retry_after_seconds``: the rate
        window's end, or the next UTC day; None for open tasks."""
        ...

    def settle(self, client_id: str, hold: UsageHold, *, cost_usd: float) -> bool:
        """Free the task's open entry and turn its reserved estimate into ``cost_usd``; True
        the first time, False when the hold was already settled (nothing changes)."""
        ...

    def usage(self, client_id: str) -> UsageCounts:
        """The client's counters now: today's spend, open tasks, the current rate window."""
        ...
