"""In-memory fakes of the S3 inbox (ports in :mod:`image_gateway.inbox.ports`): the bucket
(``InboxBucket``) and the upload-edit function's dependencies (``InboxDependencies``).

``InMemoryInbox`` answers like :class:`image_gateway.adapters.s3_inbox.S3InboxObjects`: a
notification names an exact version (or ETag); a deleted key is ``source_not_found``; a key
overwritten since (unversioned bucket, ETag no longer matching) is :class:`SourceSuperseded`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from image_gateway.errors import UploadRejected
from image_gateway.inbox.objects import InboxObject, ObjectCreated, SourceSuperseded
from image_gateway.inbox.rules import RulesSource
from image_gateway.inbox.settings import InboxSettings

from tests.fakes.stores import InMemoryImageStore

if TYPE_CHECKING:
    from tests.fakes import FakeDependencies

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class _Version:
    body: bytes
    etag: str
    version_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)


class InMemoryInbox:
    """The inbox bucket in a dict (satisfies ``inbox.ports.InboxBucket``).

    ``put`` stores an object and returns the notification S3 would send for it; with
    ``versioned=True`` every version stays readable by its id, as in a versioned bucket.
    """

    def __init__(self, bucket: str = "inbox", *, versioned: bool = False) -> None:
        self._bucket = bucket
        self._versioned = versioned
        self._versions: dict[str, list[_Version]] = {}  # key -> versions, newest last
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def bucket(self) -> str:
        """The inbox bucket's name."""
        return self._bucket

    # -- what uploaders do -----------------------------------------------------------------------
    def put(
        self, key: str, body: bytes, *, metadata: dict[str, str] | None = None
    ) -> ObjectCreated:
        """Store ``body`` at ``key``; the "Object Created" notification of that upload."""
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
        version_id = f"v{next(self._ids)}" if self._versioned else None
        version = _Version(
            body, etag, version_id, {k.lower(): v for k, v in (metadata or {}).items()}
        )
        with self._lock:
            if self._versioned:
                self._versions.setdefault(key, []).append(version)
            else:
                self._versions[key] = [version]
        return ObjectCreated(
            bucket=self._bucket, key=key, size=len(body), etag=etag, version_id=version_id
        )

    def delete(self, key: str) -> None:
        """Remove the key (every version)."""
        with self._lock:
            self._versions.pop(key, None)

    # -- inbox.ports.InboxBucket -----------------------------------------------------------------
    def head(self, created: ObjectCreated) -> InboxObject:
        """The object the notification names (UploadRejected, SourceSuperseded)."""
        keys = [created.key]
        if unquote_plus(created.key) != created.key:
            keys.append(unquote_plus(created.key))  # classic notifications URL-encode keys
        for key in keys:
            with self._lock:
                versions = list(self._versions.get(key, []))
            if not versions:
                continue
            version = self._pinned(key, versions, created.version_id, created.etag)
            return InboxObject(
                bucket=self._bucket,
                key=key,
                size=len(version.body),
                etag=version.etag,
                version_id=version.version_id if created.version_id else None,
                metadata=dict(version.metadata),
            )
        raise _missing(keys[-1])

    def stream(self, obj: InboxObject) -> Iterator[bytes]:
        """The bytes of exactly that version, in 64 KiB chunks."""
        with self._lock:
            versions = list(self._versions.get(obj.key, []))
        if not versions:
            raise _missing(obj.key)
        body = self._pinned(obj.key, versions, obj.version_id, obj.etag).body
        for start in range(0, len(body), _CHUNK):
            yield body[start : start + _CHUNK]

    def siblings(self, stem: str) -> list[str]:
        """Keys that start with ``stem + "."`` (a photo's mask and references)."""
        with self._lock:
            keys = sorted(k for k in self._versions if k.startswith(stem + "."))
        return keys[:100]

    def companion(self, key: str) -> InboxObject:
        """The current version of a mask or reference."""
        return self.head(ObjectCreated(bucket=self._bucket, key=key))

    def _pinned(
        self, key: str, versions: list[_Version], version_id: str | None, etag: str | None
    ) -> _Version:
        if version_id:
            for version in versions:
                if version.version_id == version_id:
                    return version
            raise _missing(key)
        current = versions[-1]
        if etag and current.etag != etag:
            raise SourceSuperseded(key)
        return current


def _missing(key: str) -> UploadRejected:
    return UploadRejected(f"{key} no longer exists in the inbox", code="source_not_found")


class FakeInboxDependencies:
    """The upload-edit function's fakes (satisfies ``inbox.ports.InboxDependencies``).

    ``rules_document`` is the rules parameter (edit it as an operator would; no cache); the
    staging store writes into ``core.images`` with the inbox's byte limit.
    """

    def __init__(
        self,
        core: FakeDependencies,
        *,
        rules: dict[str, Any] | None = None,
        settings: InboxSettings | None = None,
        objects: InMemoryInbox | None = None,
    ) -> None:
        self._core = core
        self._settings = settings or InboxSettings(
            bucket_name="inbox", client_id="inbox-client", rules_parameter="/gateway/inbox-rules"
        )
        self._objects = objects or InMemoryInbox(self._settings.bucket_name)
        self.rules_document: dict[str, Any] = rules if rules is not None else {"rules": []}
        self._rules = RulesSource(lambda: json.dumps(self.rules_document), ttl_seconds=0)
        self._staging = core.images.with_limit(self._settings.max_image_bytes)

    @property
    def core(self) -> FakeDependencies:
        """The gateway's fakes (a ``FakeDependencies``)."""
        return self._core

    @property
    def settings(self) -> InboxSettings:
        """The inbox settings."""
        return self._settings

    @property
    def objects(self) -> InMemoryInbox:
        """The inbox bucket."""
        return self._objects

    @property
    def rules(self) -> RulesSource:
        """The rules over ``rules_document``."""
        return self._rules

    @property
    def staging(self) -> InMemoryImageStore:
        """The images bucket with the inbox's byte limit."""
        return self._staging
