"""Simulated tasks: the latency table, the status clock, and the store that renders results.

A task's status is a function of the time elapsed since it was created; no thread drives it.
The first look at a task whose latency has passed decides its outcome: a forced failure, or a
render (cached per task) that succeeds or fails on a bad input image.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import math
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

from devstack.simulator.faults import Faults
from devstack.simulator.render import ImageLoader, InputImageError, RenderSpec, render_image

APIMART_LATENCY_S: Final = {"1k": 40.0, "2k": 50.0, "4k": 60.0}
"""apimart latency per resolution tier, real seconds (docs: "typically 30-60 s")."""

MOUNTSEA_LATENCY_S: Final = {
    "low": 15.0,
    "medium": 30.0,
    "auto": 30.0,
    "standard": 30.0,
    "high": 45.0,
}
"""mountsea-async latency per quality, real seconds (docs: "10-60 s"); also pmock's and the
OpenAI-compatible sync endpoints' (undocumented: the same upstream model)."""

APIMODELS_LATENCY_S: Final = {"low": 40.0, "medium": 75.0, "auto": 75.0, "high": 120.0}
"""apimodels latency per quality, real seconds (docs: low ~40 s, medium 60-90 s, high ~2 min)."""

BAD_IMAGE_BYTES: Final = b"not an image at all\n" * 512
"""What `[sim:bad-image]` serves instead of an image."""

SIMULATED_FAILURE: Final = "generation failed (simulated)"

INPUT_IMAGE_ERROR: Final = 40002
"""Outcome error code of a task whose input image or mask could not be loaded or decoded."""


class Phase(enum.Enum):
    """Where a task is on its clock."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


@dataclass(frozen=True)
class Outcome:
    """How a task ended: completed, failed, cancelled or timeout."""

    status: str
    error_message: str | None = None
    error_code: int | None = None

    @property
    def completed(self) -> bool:
        """True when the task produced an image."""
        return self.status == "completed"


@dataclass
class SimTask:
    """One task of one provider; its spec says what to draw, its faults how to misbehave."""

    provider: str
    task_id: str
    spec: RenderSpec
    faults: Faults
    latency_s: float
    """Real seconds from creation to the terminal state."""
    queued_fraction: float
    """Share of the latency spent in the provider's queued status."""
    webhook: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    """Provider-specific facts about the request, echoed in the provider's answers."""
    created_at: float = field(default_factory=time.time)
    trace_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    outcome: Outcome | None = None
    _started: float = field(default_factory=time.monotonic, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def finished_at(self) -> float:
        """Epoch seconds at which the task reaches (or reached) its terminal state."""
        return self.created_at + self.latency_s

    def seconds_until_done(self) -> float:
        """Real seconds left before the terminal state (0 once there)."""
        return max(0.0, self.latency_s - (time.monotonic() - self._started))

    def phase(self) -> Phase:
        """Queued, running or done, from the elapsed time (`[sim:never]` never gets done)."""
        elapsed = time.monotonic() - self._started
        if elapsed < self.latency_s * self.queued_fraction:
            return Phase.QUEUED
        if elapsed < self.latency_s or "never" in self.faults:
            return Phase.RUNNING
        return Phase.DONE

    def progress(self) -> int:
        """0 while queued, 1-99 while running, 100 once done."""
        phase = self.phase()
        if phase is Phase.QUEUED:
            return 0
        if phase is Phase.DONE:
            return 100
        elapsed = time.monotonic() - self._started
        return max(1, min(99, int(100 * elapsed / self.latency_s))) if self.latency_s else 99

    def wait_until_done(self, stop: threading.Event) -> bool:
        """Block until the latency has passed (a synchronous request); False if stopped first."""
        while (left := self.seconds_until_done()) > 0:
            if stop.wait(left):
                return False
        return not stop.is_set()


def scaled_latency(documented_s: float, time_scale: float, faults: Faults) -> float:
    """The real latency of a task: the documented one times time_scale, unless overridden."""
    if faults.latency_s is not None:
        return faults.latency_s
    return documented_s * time_scale


class TaskStore:
    """All tasks of all providers, with their rendered images.

    Like the real providers, it forgets old tasks: beyond `max_tasks` tasks or `max_image_bytes`
    of cached images, the oldest tasks expire (queries for them answer "not found").
    """

    def __init__(self, load: ImageLoader, max_tasks: int, max_image_bytes: int) -> None:
        self._load = load
        self._max_tasks = max_tasks
        self._max_image_bytes = max_image_bytes
        self._tasks: OrderedDict[tuple[str, str], SimTask] = OrderedDict()
        self._images: dict[tuple[str, str], bytes] = {}
        self._image_bytes = 0
        self._lock = threading.Lock()

    def add(self, task: SimTask) -> None:
        """Keep a new task."""
        with self._lock:
            self._tasks[(task.provider, task.task_id)] = task
            self._expire_old_tasks()

    def get(self, provider: str, task_id: str) -> SimTask | None:
        """The task, or None when it never existed or has expired."""
        with self._lock:
            return self._tasks.get((provider, task_id))

    def outcome(self, task: SimTask) -> Outcome | None:
        """The task's outcome once its latency has passed, else None. Renders on first call."""
        if task.phase() is not Phase.DONE:
            return None
        with task.lock:
            if task.outcome is None:
                task.outcome = self._finish(task)
            return task.outcome

    def render_ahead(self, task_id: str) -> bool:
        """Finish a task that is done now (render its image) before anyone queries it, as a real
        provider has its result ready when it reports done; False when no task has this id or
        it is not done yet. (A query renders it otherwise: the caller's first query then waits
        for Pillow, which ``make bench`` must not count as the gateway's time.)"""
        with self._lock:
            found = [t for (_, tid), t in self._tasks.items() if tid == task_id]
        return len(found) == 1 and self.outcome(found[0]) is not None

    def image(self, task: SimTask) -> bytes | None:
        """The image bytes of a completed task (None if it has none or has expired)."""
        with self._lock:
            return self._images.get((task.provider, task.task_id))

    def finish_unkept(self, task: SimTask) -> tuple[Outcome, bytes | None]:
        """Outcome and image of a task that is not kept (a synchronous request's), now."""
        with task.lock:
            if task.outcome is not None:
                raise RuntimeError("the task has already finished")
            outcome, image = self._produce(task)
            task.outcome = outcome
            return outcome, image

    def _finish(self, task: SimTask) -> Outcome:
        outcome, image = self._produce(task)
        if image is not None:
            with self._lock:
                key = (task.provider, task.task_id)
                if key in self._tasks:
                    self._images[key] = image
                    self._image_bytes += len(image)
                    self._expire_old_tasks()
        return outcome

    def _produce(self, task: SimTask) -> tuple[Outcome, bytes | None]:
        """The forced or rendered outcome of a task, with its image when it completed."""
        if "fail" in task.faults:
            return Outcome("failed", SIMULATED_FAILURE, 50001), None
        if "cancelled" in task.faults:
            return Outcome("cancelled", "task cancelled (simulated)", 50002), None
        if "timeout" in task.faults:
            return Outcome("timeout", "task timed out (simulated)", 50003), None
        try:
            image = BAD_IMAGE_BYTES if "bad-image" in task.faults else self._render(task)
        except InputImageError as exc:
            return Outcome("failed", str(exc), INPUT_IMAGE_ERROR), None
        # The inputs (possibly large data URLs) are no longer needed once the image exists.
        task.spec = dataclasses.replace(task.spec, inputs=(), mask=None)
        return Outcome("completed"), image

    def _render(self, task: SimTask) -> bytes:
        if task.spec.inputs or task.spec.noise:  # an edit draws on downloads; noise is large
            return render_image(task.spec, self._load)
        return _drawn(task.spec)

    def _expire_old_tasks(self) -> None:
        """Drop the oldest tasks beyond the limits; the caller holds self._lock."""
        while self._tasks and (
            len(self._tasks) > self._max_tasks or self._image_bytes > self._max_image_bytes
        ):
            key, _ = self._tasks.popitem(last=False)
            self._image_bytes -= len(self._images.pop(key, b""))


@functools.lru_cache(maxsize=16)
def _drawn(spec: RenderSpec) -> bytes:
    """A text-to-image picture, drawn once per spec: the drawing is a pure function of it (the
    prompt seeds it), and drawing and encoding a 1024x1024 PNG takes ~50 ms, which a zero-latency
    provider (``[sim:latency=0]``) would otherwise still add to every request for it."""
    return render_image(spec, _no_inputs)


def _no_inputs(reference: str) -> bytes:
    raise InputImageError(f"a text-to-image spec has no input to load ({reference[:40]})")


def new_apimart_task_id() -> str:
    """An apimart-style task id: `task_` and 32 random hex digits."""
    return f"task_{uuid.uuid4().hex}"


def whole_seconds(seconds: float) -> int:
    """Seconds rounded up to a whole number, at least 1 (for estimate fields)."""
    return max(1, math.ceil(seconds))


def iso_timestamp(epoch_s: float) -> str:
    """A task timestamp as ISO 8601 UTC with milliseconds: `2025-01-02T03:04:05.678Z`."""
    moment = dt.datetime.fromtimestamp(epoch_s, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
