"""The usage ledger port: per-client counters that admit a submit (now, or to wait its turn),
start queued tasks oldest first, and settle each task once.

Adapter :class:`image_gateway.adapters.dynamodb_limits.DynamoDBUsageLedger` (items in the tasks
table), fake ``tests.fakes.InMemoryUsageLedger``; both pass ``tests/contract/test_usage_ledger``.
The ledger keeps its own clock (the rate window and the UTC day are its business), so flows and
tests never compute windows themselves; fakes take an injected clock.

Per client, every counter is a number and every task its own marker, so no item grows with a
client's open work and a submit or a settlement costs the same at 10 and at 50,000 open tasks:

- **requests in the current rate window** (fixed windows of ``window_seconds``);
- **running** and **queued** tasks: a task is *running* from when it gets one of its client's
  ``max_running_tasks`` places until it is settled; over that it is *queued* (up to
  ``max_queued_tasks``, then ``queue_full``) and waits in its client's queue, oldest first, for
  :meth:`UsageLedger.start_next` to give it a place a settled task freed;
- **the day's spend** (UTC): the estimates reserved at submit, adjusted to each task's final
  estimate when it is settled (a failed task's is 0);
- **one hold per task** (its marker: running or queued, its day and its reserved estimate),
  deleted by the settlement that wins, so a second settlement of the same task changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
    QUEUE_FULL = "queue_full"
    BUDGET = "budget_exceeded"


@dataclass(frozen=True)
class LimitOverrides:
    """What the operator set for one client (None: the stack's default applies)."""

    requests_per_minute: int | None = None
    max_running_tasks: int | None = None
    max_queued_tasks: int | None = None
    daily_budget_usd: float | None = None
    routing: str | None = None
    """The client's routing policy (``service.routing`` checks the name)."""
    hedge: bool | None = None
    """Whether the client's requests hedge by default (a request's ``hedge`` wins)."""


@dataclass(frozen=True)
class ClientState:
    """A client's limits item and counts, read together (:meth:`UsageLedger.client_state`)."""

    overrides: LimitOverrides
    running: int
    queued: int


@dataclass(frozen=True)
class ClientLimits:
    """The limits in force for one client: its overrides over the stack's defaults."""

    requests_per_minute: int
    max_running_tasks: int
    max_queued_tasks: int
    daily_budget_usd: float | None

    def over(self, overrides: LimitOverrides) -> ClientLimits:
        """These defaults with ``overrides`` applied."""
        return ClientLimits(
            requests_per_minute=_pick(overrides.requests_per_minute, self.requests_per_minute),
            max_running_tasks=_pick(overrides.max_running_tasks, self.max_running_tasks),
            max_queued_tasks=_pick(overrides.max_queued_tasks, self.max_queued_tasks),
            daily_budget_usd=_pick(overrides.daily_budget_usd, self.daily_budget_usd),
        )

    def budget_room(self, cost_usd: float) -> Decimal | None:
        """The most the day's spend may already be for ``cost_usd`` more to fit (None: no
        budget). Exact decimals: 0.05 - 0.025 is 0.025, not 0.024999..."""
        if self.daily_budget_usd is None:
            return None
        return usd(self.daily_budget_usd) - usd(cost_usd)

    def refused_outright(self, cost_usd: float) -> LimitKind | None:
        """The limit no counter value can meet (a rate of 0, no place to run nor to wait, a
        request dearer than the whole budget): refused without a write."""
        if self.requests_per_minute <= 0:
            return LimitKind.RATE
        if self.max_running_tasks <= 0 and self.max_queued_tasks <= 0:
            return LimitKind.QUEUE_FULL
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
    ticket: str = Field(
        description="the task's place in its client's queue: submit time (epoch ms, 15 digits) "
        "and task id, so that the oldest sorts first"
    )

    @property
    def task_id(self) -> str:
        """The task the hold is for."""
        return self.ticket.split("#", 1)[1]


def ticket(now: float, task_id: str) -> str:
    """A hold's queue ticket for ``task_id`` submitted at ``now`` (epoch s)."""
    return f"{int(now * 1000):015d}#{task_id}"


@dataclass(frozen=True)
class Admission:
    """What a reservation did: the hold (running at once, or queued), or the limit that
    refused (and when to retry)."""

    hold: UsageHold | None
    started: bool = False
    refused: LimitKind | None = None
    retry_after_seconds: int | None = None


class Settlement(StrEnum):
    """What a settlement freed: a running place (the next queued task may start), a place in
    the queue, or nothing (settled before)."""

    RUNNING = "running"
    QUEUED = "queued"
    NONE = "none"


class LedgerBusy(Exception):
    """The client's counters kept meeting other writes (every jittered retry spent): the
    caller answers 503 with a Retry-After, or leaves the work to the sweeper."""


@dataclass(frozen=True)
class UsageCounts:
    """A client's counters now (``GET /v1/usage``)."""

    day: str
    spent_usd: float
    running: int
    queued: int
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
    """A refusal by ``kind`` at ``now``: retry at the next window or day (a full queue: None,
    the caller decides)."""
    if kind is LimitKind.RATE:
        retry: int | None = seconds_until(now, window_start(now) + RATE_WINDOW_SECONDS)
    elif kind is LimitKind.BUDGET:
        retry = seconds_until(now, next_utc_day(now))
    else:
        retry = None
    return Admission(hold=None, refused=kind, retry_after_seconds=retry)


@dataclass(frozen=True)
class UnclaimedHold:
    """A hold reserved a while ago whose task was never seen written (see
    :meth:`UsageLedger.unclaimed_holds`)."""

    client_id: str
    hold: UsageHold


class UsageLedger(Protocol):
    """Per-client counters: reserve at submit (all or nothing), start queued tasks in order,
    settle each task once at its end."""

    def overrides(self, client_id: str) -> LimitOverrides:
        """The operator's limits for ``client_id`` (all None when none are set)."""
        ...

    def client_state(self, client_id: str) -> ClientState:
        """The operator's limits for ``client_id`` and its running and queued counts, read
        together and strongly consistent: what a submit's routing and reservation decide on."""
        ...

    def reserve(
        self,
        client_id: str,
        task_id: str,
        *,
        limits: ClientLimits,
        cost_usd: float,
        prepaid: bool = False,
        seen: ClientState | None = None,
    ) -> Admission:
        """(``prepaid``: ``cost_usd`` is already in the day's spend, a batch's :meth:`prepay`;
        it is held, neither added nor checked against the budget again. ``seen``: the client's
        state as the caller read it a moment ago (:meth:`client_state`): the first try decides
        running or queued on its counts instead of reading them again; counts that moved since
        so that the decision no longer holds, or a queue seen full, are read again first.)

        Count one request in the rate window, ``cost_usd`` of today's spend and the task as
        running (a place is free and nobody waits) or queued (``started`` False), or nothing at
        all when a limit refuses (the first of rate, queue full, budget). A budget refuses when
        today's spend plus ``cost_usd`` would pass it. ``retry_after_seconds``: the rate
        window's end, or the next UTC day; None for a full queue. Raises :class:`LedgerBusy`."""
        ...

    def start_next(self, client_id: str, *, limits: Callable[[], ClientLimits]) -> list[str]:
        """Move the client's oldest queued tasks to running while it has free places; the ids
        moved (each by exactly one caller, however many ask at once). ``limits`` is asked only
        when the client has a queued task (most ending tasks' clients have none)."""
        ...

    def is_running(self, client_id: str, hold: UsageHold) -> bool | None:
        """Whether the hold has a running place (False: queued; None: settled or unknown)."""
        ...

    def settle(self, client_id: str, hold: UsageHold, *, cost_usd: float) -> Settlement:
        """Free the task's place (running or queued) and turn its reserved estimate into
        ``cost_usd``, the first time; :attr:`Settlement.NONE` when it was settled before
        (nothing changes). Raises :class:`LedgerBusy`."""
        ...

    def prepay(self, client_id: str, *, limits: ClientLimits, cost_usd: float) -> str | None:
        """Add ``cost_usd`` (a whole batch's estimate) to today's spend if it fits the budget:
        the day (its tasks then reserve ``prepaid``), or None when the budget refuses."""
        ...

    def refund(self, client_id: str, day: str, cost_usd: float) -> None:
        """Take back ``cost_usd`` of a prepayment that no task will hold (a line never made)."""
        ...

    def usage(self, client_id: str) -> UsageCounts:
        """The client's counters now: today's spend, running and queued, the rate window."""
        ...

    def unclaimed_holds(self, *, older_than_seconds: float, limit: int) -> list[UnclaimedHold]:
        """Holds reserved over ``older_than_seconds`` ago, neither settled nor claimed: at most
        ``limit`` in all, the oldest of each partition of the check list first. A submit that
        died between its reservation and its task's write leaves such a hold, and its place
        would stay taken for ever; the sweeper settles those whose task does not exist and
        claims the rest."""
        ...

    def claim(self, task_id: str) -> None:
        """The hold's task exists: take the hold off the check list for good (a settled or
        unknown hold stays absent)."""
        ...
