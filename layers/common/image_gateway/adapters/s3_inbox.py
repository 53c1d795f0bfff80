"""S3InboxObjects: reading the inbox bucket (adapter of ``inbox.ports.InboxBucket``), and
S3ManifestFiles: writing a manifest batch's files next to it (``batches.events.ManifestFiles``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

from image_gateway.errors import UploadRejected, aws_error_code
from image_gateway.inbox.objects import InboxObject, ObjectCreated, SourceSuperseded

_READ_CHUNK = 1 << 20
_MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchVersion", "405", "MethodNotAllowed"}
_CHANGED = {"PreconditionFailed", "412"}


class S3InboxObjects:
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


class S3ManifestFiles:
    """Writes the results and errors files of an inbox manifest's batch beside the manifest."""

    def __init__(self, s3_client: Any) -> None:
        self._s3 = s3_client

    def put(self, bucket: str, key: str, body: bytes) -> None:
        """One PutObject of JSONL (the bucket's default encryption applies)."""
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")
