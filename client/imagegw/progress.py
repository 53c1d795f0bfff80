"""What ``imagegw`` shows while it waits for a task.

One line per status change and per provider attempt, stamped with the time the gateway
recorded it, in time order. On a terminal a live line under them is redrawn ten times a second:
the status, the provider and how the task finishes (callback, poll or sync), the time elapsed
against the provider's typical time, and the attempt number. When the output is not a terminal
the same lines are printed plainly, and a ``waiting`` line every ``heartbeat`` seconds shows
that the wait goes on.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from imagegw.models import Attempt, StatusChange, TaskInfo

if TYPE_CHECKING:
    from imagegw.batch import BatchInfo

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
CLEAR_LINE = "\r\x1b[2K"


def seconds(value: float | None) -> str:
    """``0.6 s``, ``12.3 s``, ``2 min 05 s``."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest:02d} s"


def stamp(moment: datetime) -> str:
    """Local wall time with milliseconds."""
    return moment.astimezone().strftime("%H:%M:%S.%f")[:-3]


def _elapsed(task: TaskInfo) -> float:
    if task.created_at is None:
        return 0.0
    end = task.finished_at or datetime.now(UTC)
    return max(0.0, (end - task.created_at).total_seconds())


def _route(task: TaskInfo) -> str:
    return f"{task.provider} ({task.path})" if task.path else task.provider


def status_detail(task: TaskInfo, change: StatusChange) -> str:
    """What to say beside a status change, from the task as last read."""
    if change.status == "queued":
        return f"waiting for {task.provider}"
    if change.status == "submitted":
        typical = f", typically {seconds(task.expected_seconds)}" if task.expected_seconds else ""
        taken = [a for a in task.attempts if a.outcome == "submitted" and a.provider_task_id]
        remote = f", provider task {taken[-1].provider_task_id}" if taken else ""
        return f"{_route(task)}{remote}{typical}"
    if change.status == "running":
        return _route(task)
    if change.status == "succeeded":
        made = task.size_produced or "?"
        kind = task.outputs[0].content_type if task.outputs else "image"
        took = seconds(task.duration_ms / 1000) if task.duration_ms is not None else "-"
        cost = (
            "no price configured"
            if task.cost_estimate_usd is None
            else f"cost ${task.cost_estimate_usd:.3f}"
        )
        typical = f" (typically {seconds(task.expected_seconds)})" if task.expected_seconds else ""
        return f"{made} {kind} by {task.provider} in {took}{typical}, {cost}"
    if task.error is not None:
        return f"{task.error.code}: {task.error.message}"
    return ""


def attempt_detail(number: int, attempt: Attempt) -> str:
    """A failed try: ``#1 apimart failed: provider_unavailable (retryable: next provider)``."""
    text = f"#{number} {attempt.provider} {attempt.outcome}"
    if attempt.error is not None:
        again = " (retryable: next provider)" if attempt.error.retryable else ""
        text += f": {attempt.error.code}{again}"
    return text


def created_detail(task: TaskInfo) -> str:
    """The first line: what was asked, and the task id to come back to."""
    return f"{task.task_id}: {task.operation} {task.size_requested or 'auto'}"


class Progress:
    """Prints a task's progress to ``stream``; ``live`` redraws a status line (a terminal)."""

    def __init__(
        self,
        stream: TextIO,
        *,
        live: bool,
        heartbeat: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.live = live
        self.heartbeat = heartbeat
        self._clock = clock
        self._lock = threading.Lock()
        self._task: TaskInfo | None = None
        self._history = 0
        self._attempts = 0
        self._frame = 0
        self._shown = False
        self._last_line = clock()
        encoding = (getattr(stream, "encoding", None) or "ascii").lower()
        self._spinner = SPINNER if "utf" in encoding else "|/-\\"

    def update(self, task: TaskInfo) -> None:
        """A new snapshot: print what happened since the last one, redraw the live line."""
        with self._lock:
            entries: list[tuple[datetime, str, str]] = []
            if self._task is None and task.created_at is not None:
                entries.append((task.created_at, "created", created_detail(task)))
            for change in task.history[self._history :]:
                entries.append((change.at, change.status, status_detail(task, change)))
            for number, attempt in enumerate(task.attempts, start=1):  # failed tries: fallbacks
                if number > self._attempts and attempt.at is not None and attempt.error:
                    entries.append((attempt.at, "attempt", attempt_detail(number, attempt)))
            self._history = len(task.history)
            self._attempts = len(task.attempts)
            self._task = task
            self._clear()
            for at, what, detail in sorted(entries, key=lambda entry: entry[0]):
                self._print(f"{stamp(at)}  {what:<10} {detail}".rstrip())
            self._draw()

    def tick(self) -> None:
        """Called often while waiting: redraw the live line, or print a heartbeat line."""
        with self._lock:
            if self._task is None or self._task.done:
                return
            if self.live:
                self._frame += 1
                self._clear()
                self._draw()
            elif self._clock() - self._last_line >= self.heartbeat:
                task = self._task
                typical = f", typically {seconds(task.expected_seconds)}"
                self._print(
                    f"{stamp(datetime.now(UTC))}  {'waiting':<10} {task.status} at "
                    f"{_route(task)} for {seconds(_elapsed(task))}"
                    + (typical if task.expected_seconds else "")
                )

    def close(self) -> None:
        """Remove the live line (before printing anything else)."""
        with self._lock:
            self._clear()
            self._task = None

    def line(self, text: str) -> None:
        """Print a line of the caller's own, above the live line."""
        with self._lock:
            self._clear()
            self._print(text)
            self._draw()

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
        self._last_line = self._clock()

    def _clear(self) -> None:
        if self._shown:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self._shown = False

    def _draw(self) -> None:
        task = self._task
        if not self.live or task is None or task.done:
            return
        spinner = self._spinner[self._frame % len(self._spinner)]
        elapsed = seconds(_elapsed(task))
        against = f" of ~{seconds(task.expected_seconds)}" if task.expected_seconds else ""
        attempt = f" · attempt {max(1, len(task.attempts))}"
        text = (
            f"{spinner} {task.status} · {_route(task)} · {elapsed}{against}{attempt} "
            "· Ctrl-C to stop"
        )
        width = shutil.get_terminal_size((100, 24)).columns
        self.stream.write(text[: max(20, width - 1)])  # one row: CLEAR_LINE clears one
        self.stream.flush()
        self._shown = True


class BatchProgress:
    """One line for a whole batch: a bar of the lines done, the counts, the rate, the time left.

    On a terminal the line is redrawn at each look; otherwise a plain line is printed when the
    counts change, at most every ``heartbeat`` seconds (and always for the last snapshot).
    The rate is the lines done per second over the last ``window`` seconds of looks.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        live: bool,
        heartbeat: float = 10.0,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.live = live
        self.heartbeat = heartbeat
        self.window = window
        self._clock = clock
        self._samples: list[tuple[float, int]] = []
        self._shown = False
        self._last_line = float("-inf")
        self._last_text = ""

    def update(self, info: BatchInfo) -> None:
        """A new snapshot of the batch."""
        now = self._clock()
        self._samples.append((now, info.counts.done))
        self._samples = [s for s in self._samples if now - s[0] <= self.window] or [
            self._samples[-1]
        ]
        text = self.line(info)
        if self.live:
            self._clear()
            width = shutil.get_terminal_size((100, 24)).columns
            self.stream.write(text[: max(20, width - 1)])
            self.stream.flush()
            self._shown = True
        elif info.finished or (text != self._last_text and now - self._last_line >= self.heartbeat):
            self.stream.write(f"{stamp(datetime.now(UTC))}  {text}\n")
            self.stream.flush()
            self._last_line = now
            self._last_text = text

    def rate(self) -> float | None:
        """Lines done per second over the window (None before two looks)."""
        if len(self._samples) < 2:
            return None
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None

    def line(self, info: BatchInfo) -> str:
        """``[#####.....] 1,234/2,000 done · 34 failed · 100 running · 666 queued · 8.1/s ...``"""
        c = info.counts
        width = 20
        filled = width if not c.total else round(width * c.done / c.total)
        bar = "#" * filled + "." * (width - filled)
        parts = [f"[{bar}] {c.done:,}/{c.total:,} done", f"{c.succeeded:,} succeeded"]
        if c.unsuccessful:
            parts.append(f"{c.unsuccessful:,} without image")
        parts += [f"{c.running:,} running", f"{c.queued:,} queued"]
        rate = self.rate()
        if info.finished:
            parts.append(info.status)
        elif rate:
            left = (c.total - c.done) / rate
            parts += [f"{rate:.1f}/s", f"~{seconds(left)} left"]
        return " · ".join(parts)

    def close(self) -> None:
        """End the live line (before printing anything else)."""
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False

    def _clear(self) -> None:
        if self._shown:
            self.stream.write(CLEAR_LINE)
            self._shown = False
