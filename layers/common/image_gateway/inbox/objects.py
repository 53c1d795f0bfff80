"""The inbox bucket: "Object Created" notifications and reading exactly the object they name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict

from image_gateway.errors import UploadRejected, aws_error_code

_READ_CHUNK = 1 << 20
_MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchVersion", "405", "MethodNotAllowed"}
_CHANGED = {"PreconditionFailed", "412"}


class ObjectCreated(BaseModel):
    """An S3 ``Object Created`` event as EventBridge delivers it (the fields we use)."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None

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


class InboxObjects:
    """Reads the inbox: the exact version (or ETag) a notification names, never a newer one."""

    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    @property
    def bucket(self) -> str:
        """The inbox bucket's name."""
        return self._bucket

    def head(self, created: ObjectCreated) -> InboxObject:
        """The object the notification names, with its user metadata.

        Classic S3 notifications URL-encode keys; EventBridge ones should not, but if the key as
        given does not exist and its decoded form does, the decoded form is used.

        Raises:
            UploadRejected: ``source_not_found`` (deleted since) or ``source_unreadable``.
            SourceSuperseded: the key now holds another object.
        """
        keys = [created.key]
        if unquote_plus(created.key) != created.key:
            keys.append(unquote_plus(created.key))
        for index, key in enumerate(keys):
            try:
                answer = self._s3.head_object(Bucket=self._bucket, Key=key, **_pin(created))
            except Exception as error:
                code = aws_error_code(error)
                if code in _MISSING and index + 1 < len(keys):
                    continue
                failure = _read_failure(error, key)
                if failure is None:
                    raise
                raise failure from error
            return InboxObject(
                bucket=self._bucket,
                key=key,
                size=int(answer.get("ContentLength", 0)),
                etag=str(answer.get("ETag", "")).strip('"'),
                version_id=answer.get("VersionId") if created.version_id else None,
                metadata={k.lower(): str(v) for k, v in (answer.get("Metadata") or {}).items()},
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def stream(self, obj: InboxObject) -> Iterator[bytes]:
        """The bytes of exactly that version, in 1 MiB chunks."""
        pin = {"VersionId": obj.version_id} if obj.version_id else {"IfMatch": f'"{obj.etag}"'}
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=obj.key, **pin)
        except Exception as error:
            failure = _read_failure(error, obj.key)
            if failure is None:
                raise
            raise failure from error
        body = response["Body"]
        try:
            yield from body.iter_chunks(_READ_CHUNK)
        finally:
            body.close()

    def siblings(self, stem: str) -> list[str]:
        """Keys that start with ``stem + "."`` (a photo's mask and references)."""
        answer = self._s3.list_objects_v2(Bucket=self._bucket, Prefix=stem + ".", MaxKeys=100)
        return [str(item["Key"]) for item in answer.get("Contents", [])]

    def companion(self, key: str) -> InboxObject:
        """The current version of a mask or reference (uploaded before its photo)."""
        return self.head(ObjectCreated(bucket=self._bucket, key=key))


def _pin(created: ObjectCreated) -> dict[str, str]:
    if created.version_id:
        return {"VersionId": created.version_id}
    if created.etag:
        return {"IfMatch": f'"{created.etag}"'}
    return {}


def _read_failure(error: Exception, key: str) -> Exception | None:
    """What a failed read means for the upload; None when it is worth a retry (throttling, 5xx)."""
    code = aws_error_code(error)
    if code in _CHANGED:
        return SourceSuperseded(key)
    if code in _MISSING:
        return UploadRejected(f"{key} no longer exists in the inbox", code="source_not_found")
    if code in {"AccessDenied", "403", "KMS.AccessDeniedException", "InvalidObjectState"}:
        return UploadRejected(f"{key} cannot be read ({code})", code="source_unreadable")
    return None
