"""S3ImageStore: the images bucket (adapter of ``ports.ImageRepository``).

Images are spooled and checked first (:func:`~image_gateway.images.store.spooled_image`), then
uploaded with one ``put_object`` or as a multipart upload of sequential parts, so memory stays
around one part. The last image stored with one ``put_object`` stays in memory until the next
store: reading it back at once (an OpenAI-compatible answer with ``b64_json``, which returns the
image it just stored) needs no ``GetObject``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import IO, Any

from image_gateway.errors import NotFound, aws_error_code
from image_gateway.images.base64_stream import iter_base64_decoded
from image_gateway.images.inputs import ImageCheck
from image_gateway.images.store import StoredImage, spooled_image

logger = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20
# S3 rejects multipart parts below 5 MiB (except the last one).
_S3_MIN_PART_SIZE = 5 * 1024 * 1024
_CHECKSUM_ALGORITHM = "CRC32"
_CHECKSUM_MEMBER = "ChecksumCRC32"


class S3ImageStore:
    """Stores images in one S3 bucket and hands them out again, never holding a whole image.

    Bytes are spooled to a temporary file (hashed and counted on the way), recognised with
    :func:`~image_gateway.images.sniff.sniff_image`, then uploaded with one ``put_object`` when
    smaller than ``part_size`` or as a multipart upload of ``part_size`` parts sent one after
    the other, so memory stays around one part. Encryption is the bucket's default.
    """

    def __init__(
        self,
        s3_client: Any,
        bucket: str,
        *,
        part_size: int = 8 * 1024 * 1024,
        max_bytes: int = 50 * 1024 * 1024,
    ) -> None:
        if part_size < _S3_MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {_S3_MIN_PART_SIZE} bytes (S3 minimum)")
        self._s3 = s3_client
        self._bucket = bucket
        self._part_size = part_size
        self._max_bytes = max_bytes
        self._last: tuple[str, bytes] | None = None
        """The key and bytes of the last image stored with one PutObject (none after a
        multipart upload, which never holds a whole image)."""

    def store(
        self,
        chunks: Iterable[bytes],
        key_stem: str,
        *,
        metadata: dict[str, str] | None = None,
        check: ImageCheck | None = None,
    ) -> StoredImage:
        """Store the image given as byte chunks at ``{key_stem}.{png|jpg|webp}``.

        Raises:
            PayloadTooLarge: more than ``max_bytes`` bytes (reading stops there).
            InvalidImage: the bytes are not a complete PNG, JPEG or WebP image, or ``check``
                refused its header; nothing is uploaded.
        """
        with spooled_image(chunks, max_bytes=self._max_bytes, check=check) as image:
            info = image.info
            key = f"{key_stem}.{info.extension}"
            extra: dict[str, Any] = {"ContentType": info.content_type}
            if metadata:
                extra["Metadata"] = dict(metadata)
            self._last = None
            if image.size_bytes < self._part_size:
                body = image.file.read()
                self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, **extra)
                self._last = (key, body)
            else:
                self._upload_multipart(image.file, key, extra)
        return StoredImage(
            bucket=self._bucket,
            key=key,
            content_type=info.content_type,
            width=info.width,
            height=info.height,
            size_bytes=image.size_bytes,
            sha256=image.sha256,
        )

    def put_file(self, key: str, body: bytes, *, content_type: str) -> None:
        """One PutObject (a batch's results: not an image, so not checked as one)."""
        if self._last is not None and self._last[0] == key:
            self._last = None
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)

    def store_base64(
        self,
        chunks: Iterable[bytes | str],
        key_stem: str,
        *,
        metadata: dict[str, str] | None = None,
        check: ImageCheck | None = None,
    ) -> StoredImage:
        """Like :meth:`store`, from base64 text (raw or a ``data:...;base64,`` URL) in chunks.

        Raises:
            InvalidImage: the text is not valid base64, or does not decode to an image.
            PayloadTooLarge: the decoded image is over ``max_bytes``.
        """
        return self.store(iter_base64_decoded(chunks), key_stem, metadata=metadata, check=check)

    def delete(self, key: str) -> None:
        """Remove the object at ``key`` (S3 answers a missing key like a deleted one)."""
        if self._last is not None and self._last[0] == key:
            self._last = None
        self._s3.delete_object(Bucket=self._bucket, Key=key)

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return self._bucket

    def presigned_get_url(self, key: str, expires_in: int = 3600) -> str:
        """A URL that lets anyone holding it GET the object for ``expires_in`` seconds.

        The S3 client should be configured with ``signature_version="s3v4"``: SigV2 URLs (what
        boto3 may still produce by default in us-east-1) do not work on SSE-KMS objects.
        """
        url: str = self._s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self._bucket, "Key": key},
            ExpiresIn=expires_in,
        )
        return url

    def presigned_put_url(
        self, key: str, *, content_type: str, content_length: int, expires_in: int = 900
    ) -> str:
        """A URL that lets anyone holding it PUT one object at ``key`` for ``expires_in`` s.

        ``Content-Type`` and ``Content-Length`` are signed headers: S3 refuses a PUT of another
        type or size, so a caller cannot store more than it declared.
        """
        url: str = self._s3.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self._bucket,
                "Key": key,
                "ContentType": content_type,
                "ContentLength": content_length,
            },
            ExpiresIn=expires_in,
        )
        return url

    def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``."""
        try:
            self._s3.head_object(Bucket=self._bucket, Key=key)
        except Exception as error:
            if aws_error_code(error) in {"NoSuchKey", "404", "NotFound"}:
                return False
            raise
        return True

    def open_stream(self, key: str, *, start: int = 0) -> Iterator[bytes]:
        """Yield a stored object's bytes from byte ``start`` in 1 MiB chunks (the request
        starts on first use; a ``start`` at or past the end yields nothing).

        The image this store just wrote at ``key`` (the last one, stored with one PutObject) is
        handed back from memory, without a request.

        Raises:
            NotFound: there is no object at ``key``.
        """
        if self._last is not None and self._last[0] == key:
            yield from _chunks(self._last[1][start:])
            return
        extra = {"Range": f"bytes={start}-"} if start else {}
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key, **extra)
        except Exception as error:
            if aws_error_code(error) == "InvalidRange":  # start is at or past the end
                if self.exists(key):
                    return
                raise NotFound(f"stored object {key} does not exist") from None
            if aws_error_code(error) in {"NoSuchKey", "404", "NotFound"}:
                raise NotFound(f"stored image {key} does not exist") from None
            raise
        body = response["Body"]
        try:
            yield from body.iter_chunks(_READ_CHUNK)
        finally:
            body.close()

    def _upload_multipart(self, spool: IO[bytes], key: str, extra: dict[str, Any]) -> None:
        # Like boto3's own transfer manager: name the checksum algorithm at creation and hand
        # each part's checksum back on completion, as S3 requires once parts carry checksums.
        upload_id = self._s3.create_multipart_upload(
            Bucket=self._bucket, Key=key, ChecksumAlgorithm=_CHECKSUM_ALGORITHM, **extra
        )["UploadId"]
        try:
            parts: list[dict[str, Any]] = []
            part_number = 1
            while part := spool.read(self._part_size):
                response = self._s3.upload_part(
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=part_number,
                    Body=part,
                    ChecksumAlgorithm=_CHECKSUM_ALGORITHM,
                )
                completed = {"PartNumber": part_number, "ETag": response["ETag"]}
                if _CHECKSUM_MEMBER in response:
                    completed[_CHECKSUM_MEMBER] = response[_CHECKSUM_MEMBER]
                parts.append(completed)
                part_number += 1
                del part  # drop this part before the next read
            self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            try:
                self._s3.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
            except Exception:
                # Left for the bucket's AbortIncompleteMultipartUpload lifecycle rule.
                logger.warning("could not abort multipart upload of %s", key, exc_info=True)
            raise


def _chunks(data: bytes) -> Iterator[bytes]:
    for offset in range(0, len(data), _READ_CHUNK):
        yield data[offset : offset + _READ_CHUNK]
