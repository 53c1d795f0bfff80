"""In-memory fakes of the hand-off ports: events, the dispatch and finalize queues, poll loops,
URL fetches."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from image_gateway.errors import DownloadFailed, PayloadTooLarge, UnsafeUrl
from image_gateway.health.ports import Slot
from image_gateway.models.events import TaskEventDetail
from image_gateway.models.task import Task
from image_gateway.ports import EventPublishError, QueueUnavailable


class RecordingEventPublisher:
    """Keeps every event it is given; can be told to refuse the next ones (like PutEvents)."""

    def __init__(self) -> None:
        self.published: list[TaskEventDetail] = []
        self.refuse_next = 0
        self._lock = threading.Lock()

    def publish(self, task: Task) -> TaskEventDetail:
        """Record the event of the task's current status (EventPublishError when refusing)."""
        detail = TaskEventDetail.from_task(task)
        detail_type = detail.detail_type  # as the adapter: KeyError for a status with no event
        with self._lock:
            if self.refuse_next > 0:
                self.refuse_next -= 1
                raise EventPublishError(f"refused {detail_type} {detail.event_id}")
            self.published.append(detail)
        return detail

    def for_task(self, task_id: str) -> list[str]:
        """The detail types published for one task, in order."""
        return [e.detail_type for e in self.published if e.task_id == task_id]


class InMemoryDispatchQueue:
    """Messages in a list; ``unavailable`` makes every send fail as SQS would."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []
        self.delays: list[int] = []
        """The delay each message was sent with, in order (SQS DelaySeconds)."""
        self.hedges: list[tuple[str, str, int]] = []
        """Hedge messages: task id, provider, delay (``service.hedging``)."""
        self.unavailable = False

    def send(
        self, task_id: str, provider: str, *, delay_seconds: int = 0, hedge: bool = False
    ) -> None:
        """Queue one attempt (a hedge's goes to ``hedges``, with its delay)."""
        if self.unavailable:
            raise QueueUnavailable("the queue is unavailable")
        if hedge:
            self.hedges.append((task_id, provider, delay_seconds))
            return
        self.messages.append((task_id, provider))
        self.delays.append(delay_seconds)

    def take(self) -> list[tuple[str, str]]:
        """Every queued message, removing them (what the event source mapping receives)."""
        taken, self.messages = self.messages, []
        return taken


class InMemoryProviderSlots:
    """Leases per provider in a dict, with a clock the tests can move."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, int], tuple[str, float]] = {}
        self.now = 0.0
        self._lock = threading.Lock()

    def acquire(
        self, provider: str, holder: str, *, limit: int, lease_seconds: float
    ) -> Slot | None:
        """A free or expired slot, or None when all ``limit`` are held."""
        with self._lock:
            for index in range(limit):
                held = self._held.get((provider, index))
                if held is None or held[1] < self.now:
                    self._held[(provider, index)] = (holder, self.now + lease_seconds)
                    return Slot(provider=provider, index=index, holder=holder)
        return None

    def release(self, slot: Slot) -> None:
        """Free the slot if its holder still holds it."""
        with self._lock:
            held = self._held.get((slot.provider, slot.index))
            if held is not None and held[0] == slot.holder:
                del self._held[(slot.provider, slot.index)]

    def in_use(self, provider: str) -> int:
        """Slots of ``provider`` held now (for assertions)."""
        with self._lock:
            return sum(
                1
                for (name, _), (_, until) in self._held.items()
                if name == provider and until >= self.now
            )


@dataclass(frozen=True)
class QueuedCallback:
    """One message of the finalize queue."""

    task_id: str
    provider: str
    callback_digest: str


class InMemoryFinalizeQueue:
    """A FIFO queue as SQS runs the finalize queue: one group per task, one message of a group
    in flight at a time, and copies (same task and digest) dropped for good (the fake's
    deduplication window never ends). ``unavailable`` makes every send fail."""

    def __init__(self) -> None:
        self.messages: list[QueuedCallback] = []
        self.unavailable = False
        self.sends = 0
        self._seen: set[tuple[str, str]] = set()
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    def send(self, task_id: str, provider: str, callback_digest: str) -> None:
        """Queue the task unless this very callback was queued before."""
        with self._lock:
            if self.unavailable:
                raise QueueUnavailable("the queue is unavailable")
            self.sends += 1
            if (task_id, callback_digest) in self._seen:
                return
            self._seen.add((task_id, callback_digest))
            self.messages.append(QueuedCallback(task_id, provider, callback_digest))

    def receive(self) -> QueuedCallback | None:
        """The oldest message whose task has none in flight (it is in flight until settled)."""
        with self._lock:
            for message in self.messages:
                if message.task_id not in self._in_flight:
                    self._in_flight.add(message.task_id)
                    return message
            return None

    def settle(self, message: QueuedCallback, *, succeeded: bool) -> None:
        """Delete a handled message; a failed one stays, to be received again."""
        with self._lock:
            self._in_flight.discard(message.task_id)
            if succeeded:
                self.messages.remove(message)


class InMemoryPollLoops:
    """Started loops by task id (a second start of the same name is refused, as in AWS)."""

    def __init__(self) -> None:
        self.started: dict[str, int] = {}
        self.inputs: dict[str, dict[str, object]] = {}
        """The execution input each loop started with (what the state machine receives)."""

    def start(self, task_id: str, first_wait_seconds: int, *, hedge: bool = False) -> None:
        """Start the task's loop; a second start of the same task starts nothing (a hedge's
        loop is named ``{task_id}-hedge``)."""
        name = f"{task_id}-hedge" if hedge else task_id
        if name in self.started:
            return
        self.started[name] = first_wait_seconds
        self.inputs[name] = {
            "task_id": task_id,
            "wait_seconds": first_wait_seconds,
            "attempt": 0,
        }


@dataclass
class InMemoryFetcher:
    """URL -> bytes, or the error a fetch of it raises (unknown URLs are a 404)."""

    bodies: dict[str, bytes] = field(default_factory=dict)
    failures: dict[str, Exception] = field(default_factory=dict)
    max_bytes: int = 50 * 1024 * 1024
    fetched: list[str] = field(default_factory=list)

    @contextmanager
    def stream(self, url: str) -> Iterator[Iterator[bytes]]:
        """The body in 64 KiB chunks, or the scripted failure."""
        self.fetched.append(url)
        if url in self.failures:
            raise self.failures[url]
        if not url.startswith("https://"):
            raise UnsafeUrl(f"{url} is not https")
        if url not in self.bodies:
            raise DownloadFailed(f"GET {url}: HTTP 404")
        body = self.bodies[url]
        if len(body) > self.max_bytes:
            raise PayloadTooLarge(f"{url} is over {self.max_bytes} bytes")
        yield iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
