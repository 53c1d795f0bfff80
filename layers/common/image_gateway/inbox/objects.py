"""The inbox bucket's objects: "Object Created" notifications and the versions they name.

Reading them is the S3 adapter's job (:mod:`image_gateway.adapters.s3_inbox`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict


class ObjectCreated(BaseModel):
    """An S3 ``Object Created`` event as EventBridge delivers it (the fields we use)."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    event_id: str | None = None
    """EventBridge's id of the notification: the task's ``request_id``."""

    @classmethod
    def from_eventbridge(cls, event: Mapping[str, Any]) -> ObjectCreated:
        """Parse the EventBridge event; raises ``ValueError`` when it is not one."""
        if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
            raise ValueError("not an S3 Object Created event")
        detail = event.get("detail") or {}
        obj = detail.get("object") or {}
        bucket = (detail.get("bucket") or {}).get("name")
        key = obj.get("key")
        if not isinstance(bucket, str) or not isinstance(key, str) or not key:
            raise ValueError("the event names no bucket or key")
        version = obj.get("version-id")
        etag = obj.get("etag") or obj.get("eTag")  # AWS spells it etag, moto eTag
        return cls(
            bucket=bucket,
            key=key,
            size=obj.get("size"),
            etag=str(etag).strip('"') if etag else None,
            version_id=str(version) if version and version != "null" else None,
            event_id=str(event["id"]) if event.get("id") else None,
        )


@dataclass(frozen=True)
class InboxObject:
    """One object version in the inbox, as read from S3."""

    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)


class SourceSuperseded(Exception):
    """The key was overwritten after the notification; the newer upload has its own event."""
