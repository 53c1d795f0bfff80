"""In-memory fakes of the storage ports: tasks, images, idempotency keys, API keys.

Each passes the same contract suite as its AWS adapter (``tests/contract``): the task store
enforces the real allowed-transition table and the conditional write on status and version;
the image store checks bytes with the same :func:`spooled_image` as the S3 adapter.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from urllib.parse import urlencode

from image_gateway.auth import (
    LAST_USED_EVERY_SECONDS,
    ApiKeyRecord,
    bearer_key,
    hash_api_key,
    key_id_of,
    new_api_key,
)
from image_gateway.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from image_gateway.idempotency import check_key
from image_gateway.images.base64_stream import iter_base64_decoded
from image_gateway.images.inputs import ImageCheck
from image_gateway.images.store import StoredImage, spooled_image
from image_gateway.models.task import (
    Task,
    TaskStatus,
    change_task,
    move_task,
    utc_now,
    write_optimistically,
)
from image_gateway.ports import TaskExists, TaskNotFound, TaskPage

from tests.fakes.limits import InMemoryUsageLedger


class InMemoryTaskStore:
    """Tasks in a dict, stored as JSON (so callers never share objects with the store)."""

    def __init__(self, *, write_attempts: int = 5) -> None:
        self._docs: dict[str, tuple[int, str]] = {}  # task id -> (version, JSON)
        self._lock = threading.Lock()
        self._write_attempts = write_attempts
        self.writes = 0
        self.reads = 0
        """Reads of one task (``get``, and the reads before writes that had no known version)."""
        self._racer: Callable[[], object] | None = None

    def before_next_transition(self, action: Callable[[], object]) -> None:
        """Run ``action`` once, just before the next transition reads the task: another writer
        (a cancel, a second callback) getting there first."""
        self._racer = action

    # -- reading ---------------------------------------------------------------------------------
    def get(self, task_id: str) -> Task | None:
        """The task, or None."""
        with self._lock:
            found = self._docs.get(task_id)
            self.reads += 1
        return None if found is None else _load(*found)

    def require(self, task_id: str) -> Task:
        """The task, or raise TaskNotFound."""
        task = self.get(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    def get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        """The tasks of these ids that exist, by id."""
        found = (self.get(i) for i in dict.fromkeys(task_ids))
        return {t.task_id: t for t in found if t is not None}

    def all(self) -> list[Task]:
        """Every task (for assertions)."""
        with self._lock:
            docs = list(self._docs.values())
        return [_load(*doc) for doc in docs]

    def list_for_client(self, client_id: str, *, limit: int, cursor: str | None) -> TaskPage:
        """A page of the client's tasks, newest first; the cursor is opaque."""
        after: str | None = None
        if cursor:
            after = _decode_cursor(cursor, client_id)
        mine = sorted(
            (t for t in self.all() if t.client_id == client_id and t.parent_id is None),
            key=_sort_key,
            reverse=True,
        )
        if after is not None:
            mine = [t for t in mine if _sort_key(t) < after]
        page = mine[:limit]
        more = len(mine) > limit
        next_cursor = _encode_cursor(client_id, _sort_key(page[-1])) if more and page else None
        return TaskPage(tasks=page, next_cursor=next_cursor)

    def tasks_due(self, now: datetime, *, limit: int = 100) -> Iterator[str]:
        """Ids of tasks the sweeper should look at (same rule as the sparse index)."""
        due = [
            t
            for t in self.all()
            if t.check_at is not None
            and (not t.status.terminal or t.status not in t.events_published)
            and int(t.check_at.timestamp()) <= int(now.timestamp())
        ]
        due.sort(key=lambda t: t.check_at or now)
        yield from (t.task_id for t in due[:limit])

    # -- writing ---------------------------------------------------------------------------------
    def create(self, task: Task) -> None:
        """Store a new task; a second create with the same id fails."""
        with self._lock:
            if task.task_id in self._docs:
                raise TaskExists(task.task_id)
            self._docs[task.task_id] = (task.version, task.model_dump_json())
            self.writes += 1

    def transition(
        self,
        task_id: str,
        target: TaskStatus,
        *,
        by: str,
        change: Callable[[Task], None] | None = None,
        known: Task | None = None,
    ) -> Task:
        """Move the task to ``target`` or raise ForbiddenTransition."""
        racer, self._racer = self._racer, None
        if racer is not None:
            racer()
        return self._update(
            task_id, lambda task: move_task(task, target, by=by, change=change), known
        )

    def update(
        self, task_id: str, change: Callable[[Task], None], *, known: Task | None = None
    ) -> Task:
        """Change fields without changing the status."""

        return self._update(task_id, lambda task: change_task(task, change), known)

    def _update(
        self, task_id: str, mutate: Callable[[Task], Task], known: Task | None = None
    ) -> Task:
        return write_optimistically(
            task_id,
            mutate,
            read=self.require,
            write=self._write,
            known=known,
            attempts=self._write_attempts,
        )

    def _write(self, updated: Task, read_version: int, read_status: TaskStatus) -> bool:
        updated.version = read_version + 1
        updated.updated_at = utc_now()
        with self._lock:  # the conditional write: same version and status as read
            stored_version, stored_doc = self._docs[updated.task_id]
            if (
                stored_version == read_version
                and _load(stored_version, stored_doc).status == read_status
            ):
                self._docs[updated.task_id] = (updated.version, updated.model_dump_json())
                self.writes += 1
                return True
        return False


def _load(version: int, doc: str) -> Task:
    task = Task.model_validate_json(doc)
    task.version = version
    return task


def _sort_key(task: Task) -> str:
    return f"{task.created_at.isoformat()}#{task.task_id}"


def _encode_cursor(client_id: str, after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"c": client_id, "a": after}).encode()).decode()


def _decode_cursor(cursor: str, client_id: str) -> str:
    bad = InvalidRequest(
        "cursor is not valid: pass next_cursor from the previous page", code="bad_cursor"
    )
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not (isinstance(value, dict) and set(value) == {"c", "a"}):
        raise bad
    if value["c"] != client_id or not isinstance(value["a"], str):
        raise InvalidRequest("cursor does not belong to this listing", code="bad_cursor")
    return str(value["a"])


class InMemoryImageStore:
    """Images in a dict, checked exactly like the S3 adapter checks them."""

    def __init__(self, bucket: str = "images", *, max_bytes: int = 50 * 1024 * 1024) -> None:
        self._bucket = bucket
        self._max_bytes = max_bytes
        self.objects: dict[str, bytes] = {}
        self.metadata: dict[str, dict[str, str]] = {}
        self.deleted: list[str] = []
        self.refuse_deletes = False
        self._lock = threading.Lock()

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return self._bucket

    def store(
        self,
        chunks: Iterable[bytes],
        key_stem: str,
        *,
        metadata: dict[str, str] | None = None,
        check: ImageCheck | None = None,
    ) -> StoredImage:
        """Check and keep the image at ``{key_stem}.{ext}``."""
        with spooled_image(chunks, max_bytes=self._max_bytes, check=check) as image:
            key = f"{key_stem}.{image.info.extension}"
            data = image.file.read()
        with self._lock:
            self.objects[key] = data
            self.metadata[key] = dict(metadata or {})
        return StoredImage(
            bucket=self._bucket,
            key=key,
            content_type=image.info.content_type,
            width=image.info.width,
            height=image.info.height,
            size_bytes=image.size_bytes,
            sha256=image.sha256,
        )

    def put_file(self, key: str, body: bytes, *, content_type: str) -> None:
        """Keep the bytes under ``key``."""
        self.objects[key] = body

    def store_base64(
        self,
        chunks: Iterable[bytes | str],
        key_stem: str,
        *,
        metadata: dict[str, str] | None = None,
        check: ImageCheck | None = None,
    ) -> StoredImage:
        """Like :meth:`store`, from base64 text."""
        return self.store(iter_base64_decoded(chunks), key_stem, metadata=metadata, check=check)

    def delete(self, key: str) -> None:
        """Forget the object at ``key`` (if any); ``refuse_deletes`` fails it like AccessDenied."""
        if self.refuse_deletes:
            raise PermissionError(f"not allowed to delete {key}")
        with self._lock:
            self.objects.pop(key, None)
            self.metadata.pop(key, None)
        self.deleted.append(key)

    def presigned_get_url(self, key: str, expires_in: int = 3600) -> str:
        """A stand-in URL naming the bucket, key and expiry."""
        return f"https://{self._bucket}.memory.invalid/{key}?expires_in={expires_in}"

    def presigned_put_url(
        self, key: str, *, content_type: str, content_length: int, expires_in: int = 900
    ) -> str:
        """A stand-in URL naming the bucket, key, type, length and expiry."""
        query = urlencode(
            {
                "content-type": content_type,
                "content-length": content_length,
                "expires_in": expires_in,
            }
        )
        return f"https://{self._bucket}.memory.invalid/{key}?{query}"

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""
        with self._lock:
            return key in self.objects

    def open_stream(self, key: str, *, start: int = 0) -> Iterator[bytes]:
        """The object's bytes from ``start``, in 64 KiB chunks."""
        with self._lock:
            data = self.objects.get(key)
        if data is None:
            raise NotFound(f"stored image {key} does not exist")
        for first in range(start, len(data), 64 * 1024):
            yield data[first : first + 64 * 1024]

    def sha256(self, key: str) -> str:
        """The stored object's digest (for assertions)."""
        return hashlib.sha256(self.objects[key]).hexdigest()

    def with_limit(self, max_bytes: int) -> InMemoryImageStore:
        """The same bucket (same objects) refusing images over ``max_bytes`` (the inbox's
        staging store writes into the images bucket with its own, smaller limit)."""
        view = InMemoryImageStore(self._bucket, max_bytes=max_bytes)
        view.objects, view.metadata, view._lock = self.objects, self.metadata, self._lock
        view.deleted = self.deleted
        return view


class InMemoryIdempotencyStore:
    """Claims per (client, key); same rules as the DynamoDB adapter."""

    def __init__(self) -> None:
        self._claims: dict[tuple[str, str], tuple[str, str]] = {}
        self._lock = threading.Lock()

    def claim(self, client_id: str, key: str, fingerprint: str, task_id: str) -> str | None:
        """Claim, or the earlier task id (Conflict for another body)."""
        check_key(key)
        with self._lock:
            earlier = self._claims.get((client_id, key))
            if earlier is None:
                self._claims[(client_id, key)] = (fingerprint, task_id)
                return None
        if earlier[0] != fingerprint:
            raise Conflict(
                "Idempotency-Key was already used with a different request body",
                code="idempotency_key_reused",
            )
        return earlier[1]

    def release(self, client_id: str, key: str, task_id: str) -> None:
        """Forget ``task_id``'s claim; another task's claim stays."""
        with self._lock:
            if self._claims.get((client_id, key), ("", ""))[1] == task_id:
                del self._claims[(client_id, key)]


class InMemoryApiKeys:
    """Hashed API keys in a dict; ``clock`` (UTC now) is injectable."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._records: dict[str, ApiKeyRecord] = {}
        self._clock = clock
        self.last_used_writes = 0

    def create_key(self, client_id: str, *, name: str = "default") -> str:
        """A new key (stored hashed)."""
        return self.create(client_id, name=name)[0]

    def create(self, client_id: str, *, name: str = "default") -> tuple[str, ApiKeyRecord]:
        """A new key and its record."""
        api_key = new_api_key(client_id)
        digest = hash_api_key(api_key)
        record = ApiKeyRecord(key_id_of(digest), client_id, name, self._clock().isoformat())
        self._records[digest] = record
        return api_key, record

    def client_for(self, authorization: str | None) -> str:
        """The client behind the header, or Unauthorized."""
        digest = hash_api_key(bearer_key(authorization))
        record = self._records.get(digest)
        now = self._clock()
        if record is None or not record.active(now):
            raise Unauthorized("API key not recognised")
        last = record.last_used_at
        cutoff = now - timedelta(seconds=LAST_USED_EVERY_SECONDS)
        if last is None or datetime.fromisoformat(last) <= cutoff:
            self._records[digest] = dataclasses.replace(record, last_used_at=now.isoformat())
            self.last_used_writes += 1
        return record.client_id

    def disable(self, api_key: str) -> None:
        """Turn a key off (what an operator does in the table)."""
        digest = hash_api_key(api_key)
        self._records[digest] = dataclasses.replace(self._records[digest], disabled=True)

    def list_keys(self, client_id: str | None = None) -> list[ApiKeyRecord]:
        """Every key, or the client's, by client then creation time."""
        found = [r for r in self._records.values() if client_id in (None, r.client_id)]
        return sorted(found, key=lambda r: (r.client_id, r.created_at, r.key_id))

    def get(self, key_id: str) -> ApiKeyRecord:
        """The key ``key_id`` (NotFound)."""
        return self._records[self._digest(key_id)]

    def set_disabled(self, key_id: str, disabled: bool) -> ApiKeyRecord:
        """Turn a key off or on."""
        digest = self._digest(key_id)
        changes: dict[str, object] = {"disabled": disabled}
        if not disabled:
            changes["disabled_after"] = None
        self._records[digest] = dataclasses.replace(self._records[digest], **changes)  # type: ignore[arg-type]
        return self._records[digest]

    def rotate(self, key_id: str, *, grace: timedelta) -> tuple[str, ApiKeyRecord, ApiKeyRecord]:
        """A new key; the old one stops after ``grace``."""
        digest = self._digest(key_id)
        old = self._records[digest]
        if not old.active(self._clock()):
            raise Conflict(f"{key_id} is disabled already: create a key instead")
        api_key, record = self.create(old.client_id, name=old.name)
        until = (self._clock() + grace).isoformat()
        self._records[digest] = dataclasses.replace(old, disabled_after=until)
        return api_key, record, self._records[digest]

    def _digest(self, key_id: str) -> str:
        for digest, record in self._records.items():
            if record.key_id == key_id:
                return digest
        raise NotFound(f"no API key {key_id!r}")


class InMemoryDueIndex:
    """``sweep_ports.DueIndex`` over the fake task store and ledger: what they would give the sweep
    (the ledger's clock stands for ``now`` on the holds' side, as its own reads use it)."""

    def __init__(self, tasks: InMemoryTaskStore, usage: InMemoryUsageLedger) -> None:
        self._tasks = tasks
        self._usage = usage

    def anything_due(self, now: datetime, *, holds_older_than_seconds: float) -> bool:
        """A task due at ``now``, or an unclaimed hold older than the given age."""
        if next(iter(self._tasks.tasks_due(now, limit=1)), None) is not None:
            return True
        holds = self._usage.unclaimed_holds(older_than_seconds=holds_older_than_seconds, limit=1)
        return bool(holds)
