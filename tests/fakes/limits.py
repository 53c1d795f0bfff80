"""In-memory fake of the usage ledger port, and a clock tests move by hand (no sleeps)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from image_gateway.limits.ports import (
    RATE_WINDOW_SECONDS,
    Admission,
    ClientLimits,
    LimitKind,
    LimitOverrides,
    UsageCounts,
    UsageHold,
    refusal,
    usd,
    utc_day,
    window_start,
)

START = datetime(2026, 12, 1, 12, 0, 10, tzinfo=UTC).timestamp()


class ManualClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@dataclass
class _Day:
    spent: Decimal = Decimal(0)
    pending: set[str] = field(default_factory=set)


class InMemoryUsageLedger:
    """``UsageLedger`` in memory: the same counters as the DynamoDB items, under one lock."""

    def __init__(self, *, clock: ManualClock | None = None, prune_after_seconds: float) -> None:
        self.clock = clock or ManualClock()
        self._prune_after = prune_after_seconds
        self._lock = threading.Lock()
        self.limits: dict[str, LimitOverrides] = {}
        self._rate: dict[tuple[str, int], int] = {}
        self._open: dict[str, set[str]] = {}
        self._days: dict[tuple[str, str], _Day] = {}
        self.refuse_next = 0
        """Settlements to refuse (raise) before the ledger works again, like a throttled table."""

    def set_limits(self, client_id: str, **values: float | int | None) -> None:
        """What the operator's ``update-item`` does: set one client's limits."""
        self.limits[client_id] = LimitOverrides(**values)  # type: ignore[arg-type]

    def overrides(self, client_id: str) -> LimitOverrides:
        """The operator's limits for the client."""
        return self.limits.get(client_id, LimitOverrides())

    def reserve(
        self,
        client_id: str,
        task_id: str,
        *,
        limits: ClientLimits,
        cost_usd: float,
        deadline: datetime,
    ) -> Admission:
        """All three counters or none (pruning overdue open entries once, as the adapter)."""
        now = self.clock()
        outright = limits.refused_outright(cost_usd)
        if outright is not None:
            return refusal(outright, now)
        hold = UsageHold(
            day=utc_day(now),
            reserved_usd=float(usd(cost_usd)),
            open_entry=f"{int(deadline.timestamp())}#{task_id}",
        )
        with self._lock:
            rate_key = (client_id, window_start(now))
            open_set = self._open.setdefault(client_id, set())
            day = self._days.setdefault((client_id, hold.day), _Day())
            room = limits.budget_room(cost_usd)
            if self._rate.get(rate_key, 0) >= limits.requests_per_minute:
                return refusal(LimitKind.RATE, now)
            if len(open_set) >= limits.max_open_tasks:
                open_set -= {
                    e for e in open_set if int(e.split("#", 1)[0]) + self._prune_after < now
                }
                if len(open_set) >= limits.max_open_tasks:
                    return refusal(LimitKind.OPEN_TASKS, now)
            if room is not None and day.spent > room:
                return refusal(LimitKind.BUDGET, now)
            self._rate[rate_key] = self._rate.get(rate_key, 0) + 1
            open_set.add(hold.open_entry)
            day.spent += usd(cost_usd)
            day.pending.add(task_id)
        return Admission(hold=hold)

    def settle(self, client_id: str, hold: UsageHold, *, cost_usd: float) -> bool:
        """Free the open entry; the day's spend becomes ``cost_usd`` for this task, once."""
        task_id = hold.open_entry.split("#", 1)[1]
        with self._lock:
            if self.refuse_next > 0:
                self.refuse_next -= 1
                raise ConnectionError("the ledger refused the settlement")
            self._open.get(client_id, set()).discard(hold.open_entry)
            day = self._days.get((client_id, hold.day))
            if day is None or task_id not in day.pending:
                return False
            day.pending.discard(task_id)
            day.spent += usd(cost_usd) - usd(hold.reserved_usd)
        return True

    def usage(self, client_id: str) -> UsageCounts:
        """The client's counters now."""
        now = self.clock()
        with self._lock:
            day = self._days.get((client_id, utc_day(now)), _Day())
            return UsageCounts(
                day=utc_day(now),
                spent_usd=float(day.spent),
                open_tasks=len(self._open.get(client_id, set())),
                window_start=datetime.fromtimestamp(window_start(now), UTC),
                window_seconds=RATE_WINDOW_SECONDS,
                window_requests=self._rate.get((client_id, window_start(now)), 0),
            )
