"""In-memory fake of the usage ledger port, and a clock tests move by hand (no sleeps)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from image_gateway.limits.ports import (
    RATE_WINDOW_SECONDS,
    Admission,
    ClientLimits,
    ClientState,
    LedgerBusy,
    LimitKind,
    LimitOverrides,
    Settlement,
    UnclaimedHold,
    UsageCounts,
    UsageHold,
    refusal,
    ticket,
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
class _Hold:
    client_id: str
    hold: UsageHold
    running: bool
    reserved_at: float
    claimed: bool = False


@dataclass
class _Counts:
    running: int = 0
    queued: int = 0


class InMemoryUsageLedger:
    """``UsageLedger`` in memory: the same counters, holds and queues as the DynamoDB items,
    under one lock."""

    def __init__(self, *, clock: ManualClock | None = None) -> None:
        self.clock = clock or ManualClock()
        self._lock = threading.Lock()
        self.limits: dict[str, LimitOverrides] = {}
        self._rate: dict[tuple[str, int], int] = {}
        self._counts: dict[str, _Counts] = {}
        self._holds: dict[str, _Hold] = {}
        self._queues: dict[str, dict[str, str]] = {}  # client -> ticket -> task id
        self._spent: dict[tuple[str, str], Decimal] = {}
        self.refuse_next = 0
        """Settlements to refuse (raise) before the ledger works again, like a throttled table."""
        self.busy_next = 0
        """Reservations to answer LedgerBusy (every retry conflicted) before working again."""

    def set_limits(self, client_id: str, **values: float | int | str | None) -> None:
        """What the operator's ``update-item`` does: set one client's limits."""
        self.limits[client_id] = LimitOverrides(**values)  # type: ignore[arg-type]

    def overrides(self, client_id: str) -> LimitOverrides:
        """The operator's limits for the client."""
        return self.limits.get(client_id, LimitOverrides())

    def client_state(self, client_id: str) -> ClientState:
        """The operator's limits and the counts, read together."""
        with self._lock:
            counts = self._counts.get(client_id, _Counts())
            overrides = self.limits.get(client_id, LimitOverrides())
            return ClientState(overrides, counts.running, counts.queued)

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
        """All counters or none, as the adapter's transaction (decided on ``seen`` when it
        still holds on the counts as they are, as the transaction's conditions check it)."""
        now = self.clock()
        outright = limits.refused_outright(0.0 if prepaid else cost_usd)
        if outright is not None:
            return refusal(outright, now)
        hold = UsageHold(
            day=utc_day(now), reserved_usd=float(usd(cost_usd)), ticket=ticket(now, task_id)
        )
        with self._lock:
            if self.busy_next > 0:
                self.busy_next -= 1
                raise LedgerBusy("the counters kept changing")
            earlier = self._holds.get(task_id)
            if earlier is not None:
                return Admission(hold=earlier.hold, started=earlier.running)
            rate_key = (client_id, window_start(now))
            counts = self._counts.setdefault(client_id, _Counts())
            spent = self._spent.get((client_id, hold.day), Decimal(0))
            room = None if prepaid else limits.budget_room(cost_usd)
            if self._rate.get(rate_key, 0) >= limits.requests_per_minute:
                return refusal(LimitKind.RATE, now)
            start = _decided_on(seen, counts, limits)
            if start is None:
                start = counts.running < limits.max_running_tasks and counts.queued == 0
                if not start and counts.queued >= limits.max_queued_tasks:
                    return refusal(LimitKind.QUEUE_FULL, now)
            if room is not None and spent > room:
                return refusal(LimitKind.BUDGET, now)
            self._rate[rate_key] = self._rate.get(rate_key, 0) + 1
            self._spent[(client_id, hold.day)] = spent + (0 if prepaid else usd(cost_usd))
            self._holds[task_id] = _Hold(client_id, hold, running=start, reserved_at=now)
            if start:
                counts.running += 1
            else:
                counts.queued += 1
                self._queues.setdefault(client_id, {})[hold.ticket] = task_id
        return Admission(hold=hold, started=start)

    def start_next(self, client_id: str, *, limits: Callable[[], ClientLimits]) -> list[str]:
        """The oldest queued tasks, while places are free (``limits`` asked only if any)."""
        started: list[str] = []
        with self._lock:
            counts = self._counts.setdefault(client_id, _Counts())
            queue = self._queues.setdefault(client_id, {})
            if not queue:
                return started
            in_force = limits()
            while counts.running < in_force.max_running_tasks and queue:
                oldest = min(queue)
                task_id = queue.pop(oldest)
                self._holds[task_id].running = True
                counts.running += 1
                counts.queued -= 1
                started.append(task_id)
        return started

    def is_running(self, client_id: str, hold: UsageHold) -> bool | None:
        """The hold's state (None: settled)."""
        with self._lock:
            held = self._holds.get(hold.task_id)
            return None if held is None else held.running

    def settle(self, client_id: str, hold: UsageHold, *, cost_usd: float) -> Settlement:
        """Free the task's place; the day's spend becomes ``cost_usd`` for this task, once."""
        with self._lock:
            if self.refuse_next > 0:
                self.refuse_next -= 1
                raise ConnectionError("the ledger refused the settlement")
            held = self._holds.pop(hold.task_id, None)
            if held is None:
                return Settlement.NONE
            counts = self._counts.setdefault(client_id, _Counts())
            if held.running:
                counts.running -= 1
            else:
                counts.queued -= 1
                self._queues.get(client_id, {}).pop(hold.ticket, None)
            key = (client_id, hold.day)
            self._spent[key] = (
                self._spent.get(key, Decimal(0)) + usd(cost_usd) - usd(hold.reserved_usd)
            )
        return Settlement.RUNNING if held.running else Settlement.QUEUED

    def prepay(self, client_id: str, *, limits: ClientLimits, cost_usd: float) -> str | None:
        """Today's spend plus ``cost_usd`` if it fits the budget."""
        day = utc_day(self.clock())
        with self._lock:
            spent = self._spent.get((client_id, day), Decimal(0))
            room = limits.budget_room(cost_usd)
            if room is not None and spent > room:
                return None
            self._spent[(client_id, day)] = spent + usd(cost_usd)
        return day

    def refund(self, client_id: str, day: str, cost_usd: float) -> None:
        """That day's spend less ``cost_usd``."""
        with self._lock:
            key = (client_id, day)
            self._spent[key] = self._spent.get(key, Decimal(0)) - usd(cost_usd)

    def usage(self, client_id: str) -> UsageCounts:
        """The client's counters now."""
        now = self.clock()
        with self._lock:
            counts = self._counts.get(client_id, _Counts())
            return UsageCounts(
                day=utc_day(now),
                spent_usd=float(self._spent.get((client_id, utc_day(now)), Decimal(0))),
                running=counts.running,
                queued=counts.queued,
                window_start=datetime.fromtimestamp(window_start(now), UTC),
                window_seconds=RATE_WINDOW_SECONDS,
                window_requests=self._rate.get((client_id, window_start(now)), 0),
            )

    def unclaimed_holds(self, *, older_than_seconds: float, limit: int) -> list[UnclaimedHold]:
        """Holds reserved before the cut-off and not claimed, oldest first (one partition)."""
        cutoff = int(self.clock() - older_than_seconds)
        with self._lock:
            due = sorted(
                (h for h in self._holds.values() if not h.claimed and int(h.reserved_at) <= cutoff),
                key=lambda h: h.reserved_at,
            )
            return [UnclaimedHold(h.client_id, h.hold) for h in due[:limit]]

    def claim(self, task_id: str) -> None:
        """Off the check list (nothing for a settled hold)."""
        with self._lock:
            held = self._holds.get(task_id)
            if held is not None:
                held.claimed = True


def _decided_on(seen: ClientState | None, counts: _Counts, limits: ClientLimits) -> bool | None:
    """Running (True) or queued (False) as decided on the counts ``seen`` before, if the
    adapter's transaction would take that decision on ``counts`` as they are (a free place and
    nobody waiting; a queue with room); None: decide on ``counts`` (nothing seen, the decision
    no longer holds, or the queue was seen full)."""
    if seen is None:
        return None
    if seen.running < limits.max_running_tasks and seen.queued == 0:
        holds = counts.running < limits.max_running_tasks and counts.queued <= 0
        return True if holds else None
    if seen.queued >= limits.max_queued_tasks:
        return None
    return False if counts.queued < limits.max_queued_tasks else None
