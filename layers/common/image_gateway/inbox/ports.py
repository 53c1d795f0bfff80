"""Ports of the S3 inbox flow: the inbox bucket, and everything the upload-edit flow uses.

Adapters: :mod:`image_gateway.adapters.s3_inbox` and ``AwsInboxDependencies``; fakes in
``tests/fakes``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from image_gateway.inbox.objects import InboxObject, ObjectCreated
    from image_gateway.inbox.rules import RulesSource
    from image_gateway.inbox.settings import InboxSettings
    from image_gateway.ports import Dependencies, ImageRepository


class InboxBucket(Protocol):
    """The inbox bucket: exactly the object version a notification names, never a newer one."""

    @property
    def bucket(self) -> str:
        """The inbox bucket's name."""
        ...

    def head(self, created: ObjectCreated) -> InboxObject:
        """The object the notification names (UploadRejected, SourceSuperseded)."""
        ...

    def stream(self, obj: InboxObject) -> Iterator[bytes]:
        """The bytes of exactly that version."""
        ...

    def siblings(self, stem: str) -> list[str]:
        """Keys that start with ``stem + "."`` (a photo's mask and references)."""
        ...

    def companion(self, key: str) -> InboxObject:
        """The current version of a mask or reference."""
        ...


class InboxDependencies(Protocol):
    """The gateway's dependencies plus the inbox bucket, its rules and its staging limits."""

    @property
    def core(self) -> Dependencies:
        """The gateway's ports."""
        ...

    @property
    def settings(self) -> InboxSettings:
        """The inbox function's extra environment."""
        ...

    @property
    def objects(self) -> InboxBucket:
        """The inbox bucket."""
        ...

    @property
    def rules(self) -> RulesSource:
        """The rules document, cached."""
        ...

    @property
    def staging(self) -> ImageRepository:
        """The images bucket, refusing inputs over the inbox's byte limit."""
        ...
