"""AwsThumbnailDependencies: the thumbnail function's ports on AWS
(``thumbnail_ports.ThumbnailDependencies``).

Like the webhook's (:mod:`image_gateway.adapters.webhook`): botocore clients built at the first
event, the table and bucket names from the environment, and nothing of the rest of the gateway
(no pydantic settings or models, no httpx, no provider code).
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

import botocore.session

from image_gateway.adapters.boto import PerEnvironment, client_config, new_session
from image_gateway.adapters.dynamodb_thumbnails import DynamoDBThumbnailTasks
from image_gateway.adapters.s3_images import S3ImageStore
from image_gateway.timing import DEFAULT_TIMING, TimingPolicy


class AwsThumbnailDependencies:
    """The tasks table (read as JSON) and the images bucket."""

    def __init__(
        self,
        table_name: str,
        bucket_name: str,
        *,
        session: botocore.session.Session | None = None,
        timing: TimingPolicy = DEFAULT_TIMING,
    ) -> None:
        self._table = table_name
        self._bucket = bucket_name
        self._timing = timing
        self._session = session or new_session()

    def _client(self, service: str) -> Any:
        return self._session.create_client(service, config=client_config(service, self._timing))

    @cached_property
    def tasks(self) -> DynamoDBThumbnailTasks:
        """The tasks table."""
        return DynamoDBThumbnailTasks(self._client("dynamodb"), self._table)

    @cached_property
    def images(self) -> S3ImageStore:
        """The images bucket."""
        return S3ImageStore(self._client("s3"), self._bucket)


def lazy_thumbnail_dependencies() -> PerEnvironment[AwsThumbnailDependencies]:
    """One ``AwsThumbnailDependencies`` per execution environment, built at the first event."""
    return PerEnvironment(
        lambda: AwsThumbnailDependencies(os.environ["TABLE_NAME"], os.environ["BUCKET_NAME"])
    )
