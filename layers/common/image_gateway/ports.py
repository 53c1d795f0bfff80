"""Ports: the outside systems the services use, each a small Protocol.

Every port has one AWS (or HTTP) adapter in :mod:`image_gateway.adapters` and one in-memory
fake in ``tests/fakes`` that passes the same contract tests (``tests/contract``). Services and
the domain import this module, never boto3 or botocore.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from image_gateway.auth import WebhookSigner
    from image_gateway.batches.events import BatchPorts
    from image_gateway.config import Settings
    from image_gateway.health.ports import HealthPorts, ProviderSlots
    from image_gateway.images.inputs import ImageCheck
    from image_gateway.images.store import StoredImage
    from image_gateway.limits.ports import UsageLedger
    from image_gateway.metrics import Metrics
    from image_gateway.models.events import TaskEventDetail
    from image_gateway.models.request import ImageRequest
    from image_gateway.models.task import Task, TaskStatus
    from image_gateway.providers.base import InputOpener, Provider, ProviderInputs, ProviderStatus
    from image_gateway.providers.directory import ProviderDirectory
    from image_gateway.timing import TimingPolicy
    from image_gateway.webhooks.ports import WebhookPorts


# -- the task repository -------------------------------------------------------------------------
class TaskNotFound(Exception):
    """No task with that id."""


class TaskExists(Exception):
    """A task with that id was already created."""


@dataclass(frozen=True)
class TaskPage:
    """One page of a client's tasks, newest first."""

    tasks: list[Task]
    next_cursor: str | None


class TaskRepository(Protocol):
    """Tasks, changed only by conditional writes (status machine + the version read)."""

    def get(self, task_id: str) -> Task | None:
        """The task, read consistently, or None."""

    def require(self, task_id: str) -> Task:
        """The task, or raise :class:`TaskNotFound`."""

    def get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        """The tasks of these ids that exist, by id (any number of ids; unknown ones absent)."""

    def list_for_client(self, client_id: str, *, limit: int, cursor: str | None) -> TaskPage:
        """The client's tasks (no parts of n), newest first; a bad cursor is a 400."""

    def tasks_due(self, now: datetime, *, limit: int = 100) -> Iterator[str]:
        """Ids of open (or not yet announced) tasks whose check time has passed."""

    def create(self, task: Task) -> None:
        """Store a new task; a second create with the same id raises :class:`TaskExists`."""

    def transition(
        self,
        task_id: str,
        target: TaskStatus,
        *,
        by: str,
        change: Callable[[Task], None] | None = None,
        known: Task | None = None,
    ) -> Task:
        """Move the task to ``target`` (applying ``change``).

        Raises ``models.task.ForbiddenTransition`` when the status machine does not allow it.
        ``known``: the task exactly as this caller last read or wrote it (never changed since):
        the first conditional write starts from it instead of a read; if it is stale, the write's
        condition fails (or the change refuses it) and the task is read as without it.
        """

    def update(
        self, task_id: str, change: Callable[[Task], None], *, known: Task | None = None
    ) -> Task:
        """Change fields of a task without changing its status (``known``: as for
        :meth:`transition`)."""


# -- images ------------------------------------------------------------------------------------
class ImageRepository(Protocol):
    """Images in the bucket: checked (format, size, sha256) on the way in, never held whole."""

    @property
    def bucket(self) -> str:
        """The bucket name."""

    def store(
        self,
        chunks: Iterable[bytes],
        key_stem: str,
        *,
        metadata: dict[str, str] | None = None,
        check: ImageCheck | None = None,
    ) -> StoredImage:
        """Store an image from byte chunks at ``{key_stem}.{ext}``.

        Raises InvalidImage (not a complete PNG, JPEG or WebP) or PayloadTooLarge; ``check`` is
        called with the image's header first, and what it raises refuses the image too. A
        refused image leaves nothing behind.
        """

    def put_file(self, key: str, body: bytes, *, content_type: str) -> None:
        """Store a file that is not an image (a batch's results) at ``key``."""

    def store_base64(
        self,
        chunks: Iterable[bytes | str],
        key_stem: str,
        *,
        metadata: dict[str, str] | None = None,
        check: ImageCheck | None = None,
    ) -> StoredImage:
        """Like :meth:`store`, from base64 text (raw or a data URL) in chunks."""

    def delete(self, key: str) -> None:
        """Remove the object at ``key`` (nothing there is not an error)."""

    def presigned_get_url(self, key: str, expires_in: int = 3600) -> str:
        """A URL that lets anyone holding it GET the object for ``expires_in`` seconds."""

    def presigned_put_url(
        self, key: str, *, content_type: str, content_length: int, expires_in: int = 900
    ) -> str:
        """A URL that lets anyone holding it PUT exactly ``content_length`` bytes of
        ``content_type`` at ``key`` for ``expires_in`` seconds (both headers are signed)."""

    def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``."""

    def open_stream(self, key: str, *, start: int = 0) -> Iterator[bytes]:
        """The object's bytes from byte ``start`` on, in chunks (NotFound when absent)."""


# -- events ------------------------------------------------------------------------------------
class EventPublishError(Exception):
    """The bus did not accept the event (the caller retries; nothing is lost)."""


class EventPublisher(Protocol):
    """The versioned ``Image Task *`` events."""

    def publish(self, task: Task) -> TaskEventDetail:
        """Emit the event for the task's current status (EventPublishError when refused)."""


# -- handing work on ---------------------------------------------------------------------------
class QueueUnavailable(Exception):
    """A queue (dispatch or finalize) did not take the message."""


class DispatchQueue(Protocol):
    """Hand-offs to providers: each message is one attempt, made by the dispatch function."""

    def send(
        self, task_id: str, provider: str, *, delay_seconds: int = 0, hedge: bool = False
    ) -> None:
        """Queue one attempt at ``provider`` (QueueUnavailable when the queue refused);
        ``hedge``: a hedge beside the task's own attempt (``service.hedging``)."""


class FinalizeQueue(Protocol):
    """Verified provider callbacks, finalised later by the finalize function.

    One message group per task: at most one finaliser works on a task at a time, and copies
    of the same callback (the same ``callback_digest``) inside the queue's deduplication
    window become one message.
    """

    def send(self, task_id: str, provider: str, callback_digest: str) -> None:
        """Queue the task for finalisation (QueueUnavailable when the queue refused)."""


class PollLoops(Protocol):
    """One poll loop per task (a Step Functions execution named after it; a hedge's: -hedge)."""

    def start(self, task_id: str, first_wait_seconds: int, *, hedge: bool = False) -> None:
        """Start the task's loop; starting it again never makes a second one."""


class IdempotencyRepository(Protocol):
    """Idempotency keys: the same key and body find the same task, never a second one."""

    def claim(self, client_id: str, key: str, fingerprint: str, task_id: str) -> str | None:
        """Claim the key for ``task_id``; the earlier task id when already claimed.

        Raises Conflict for a key used with another fingerprint, InvalidRequest for a bad key.
        """

    def release(self, client_id: str, key: str, task_id: str) -> None:
        """Forget ``task_id``'s claim (its request failed before its task was written)."""


# -- providers ---------------------------------------------------------------------------------
class ProviderCalls(Protocol):
    """The calls the services make to one provider (ProviderError for every failure)."""

    provider: Provider

    def create(
        self, request: ImageRequest, inputs: ProviderInputs, callback_url: str | None
    ) -> str:
        """Create the provider's task; its id."""

    def status(self, provider_task_id: str) -> ProviderStatus:
        """The task's canonical status."""

    def batch_status(self, provider_task_ids: list[str]) -> dict[str, ProviderStatus]:
        """Several tasks in one call; unknown ids left out."""

    def run_sync(
        self, request: ImageRequest, inputs: ProviderInputs, open_input: InputOpener
    ) -> ProviderStatus:
        """The one long call of a sync provider: the finished image(s)."""


class ProviderClients(Protocol):
    """A configured client per provider (ProviderError when disabled or without a key)."""

    def client(self, name: str) -> ProviderCalls:
        """The client of provider ``name``."""


class UrlFetcher(Protocol):
    """Downloads from URLs outside the gateway, SSRF-checked."""

    def stream(self, url: str) -> AbstractContextManager[Iterator[bytes]]:
        """The body in chunks (UnsafeUrl, DownloadFailed, PayloadTooLarge)."""


class ApiKeys(Protocol):
    """Caller API keys (stored hashed)."""

    def create_key(self, client_id: str, *, name: str = "default") -> str:
        """A new key for ``client_id`` (shown once)."""

    def client_for(self, authorization: str | None) -> str:
        """The client id behind an ``Authorization: Bearer`` header, or Unauthorized."""


# -- the webhook's cold path -------------------------------------------------------------------
class CallbackDependencies(Protocol):
    """What the webhook uses: the callback tokens and the finalize queue, nothing else."""

    @property
    def signer(self) -> WebhookSigner:
        """Per-task callback tokens."""

    @property
    def finalize_queue(self) -> FinalizeQueue:
        """Verified callbacks, finalised by the finalize function."""


# -- everything together -----------------------------------------------------------------------
class Dependencies(Protocol):
    """What a service may use: settings, the timing policy and the ports."""

    @property
    def settings(self) -> Settings:
        """The function's validated environment."""

    @property
    def timing(self) -> TimingPolicy:
        """Every wait, retry and deadline."""

    @property
    def tasks(self) -> TaskRepository:
        """The task table."""

    @property
    def images(self) -> ImageRepository:
        """The images bucket."""

    @property
    def events(self) -> EventPublisher:
        """The event bus."""

    @property
    def dispatch_queue(self) -> DispatchQueue:
        """Sync provider calls."""

    @property
    def slots(self) -> ProviderSlots:
        """Per-provider concurrency."""

    @property
    def poll_loops(self) -> PollLoops:
        """Poll loops of providers without callbacks."""

    @property
    def idempotency(self) -> IdempotencyRepository:
        """Idempotency keys."""

    @property
    def api_keys(self) -> ApiKeys:
        """Caller API keys."""

    @property
    def usage(self) -> UsageLedger:
        """Per-client limits and counters (``image_gateway.limits``)."""

    @property
    def directory(self) -> ProviderDirectory:
        """Provider order, enabled set, options and prices."""

    @property
    def providers(self) -> ProviderClients:
        """A client per provider."""

    @property
    def fetcher(self) -> UrlFetcher:
        """Downloads of provider results and client input URLs."""

    @property
    def signer(self) -> WebhookSigner:
        """Per-task callback tokens."""

    @property
    def metrics(self) -> Metrics:
        """Operator metrics."""

    @property
    def webhooks(self) -> WebhookPorts:
        """Signed webhooks to callers: secrets, the delivery queue, the HTTP transport."""

    @property
    def batches(self) -> BatchPorts:
        """Batches: their store (lines, counters) and the batch function's queue."""

    @property
    def health(self) -> HealthPorts:
        """Provider health: every provider's circuit breaker, its measurements, its events, its
        clock."""
