"""The S3 user metadata that links a stored image (an output, its thumbnail) to its task."""

from __future__ import annotations

from urllib.parse import quote


def task_object_metadata(
    task_id: str,
    client_id: str,
    provider: str,
    *,
    source_bucket: str | None = None,
    source_key: str | None = None,
    source_version_id: str | None = None,
) -> dict[str, str]:
    """``task-id``, ``client-id``, ``provider``, and the inbox upload it was made from, if any
    (S3 metadata is ASCII: the source key is percent-encoded)."""
    metadata = {"task-id": task_id, "client-id": client_id, "provider": provider}
    if source_bucket is not None and source_key is not None:
        metadata["source-bucket"] = source_bucket
        metadata["source-key"] = quote(source_key, safe="/")
        if source_version_id:
            metadata["source-version-id"] = source_version_id
    return metadata
