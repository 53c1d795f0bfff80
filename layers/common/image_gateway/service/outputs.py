"""Where a task's images go in S3, and what is deleted again: the finaliser's storage rules
(``service.refresh``). Keys are fixed per task and index, so a retried finaliser writes the same
objects; a hedge's images have keys of their own (``health.hedging.HEDGE_STEM_SUFFIX``).
"""

from __future__ import annotations

from contextlib import ExitStack

from aws_lambda_powertools import Logger

from image_gateway.errors import InvalidImage
from image_gateway.health.hedging import HEDGE_STEM_SUFFIX
from image_gateway.images.metadata import task_object_metadata
from image_gateway.models.task import ImageOutput, ProviderAttempt, Task
from image_gateway.ports import Dependencies
from image_gateway.providers.base import ResultImage

logger = Logger(child=True)


def discard_unnamed(deps: Dependencies, task: Task, stored: list[ImageOutput]) -> Task:
    """Delete the outputs this writer stored that the task, as it ended, does not name.

    Keys are fixed per task and index, so a duplicate finaliser that lost to the winner wrote
    the winner's own objects: those stay. A failed, cancelled or expired task names none.
    A delete that fails is logged (the object stays, with its task id in its metadata).
    """
    named = {output.key for output in task.outputs}
    for output in stored:
        if output.key in named:
            continue
        try:
            deps.images.delete(output.key)
        except Exception:
            logger.warning(
                "could not delete an output no task names",
                extra={"task_id": task.task_id, "key": output.key},
                exc_info=True,
            )
            continue
        logger.info(
            "output deleted: the task ended without it",
            extra={"task_id": task.task_id, "key": output.key, "status": task.status},
        )
    return task


def output_key_stem(task: Task, index: int) -> str:
    """Where output ``index`` goes (the extension follows the format).

    ``outputs/{client}/{yyyy}/{mm}/{dd}/{taskId}/{n}``, or the task's own ``output_key_stem``
    (inbox rules), with ``-{n}`` after the first output.
    """
    if task.output_key_stem is not None:
        return task.output_key_stem if index == 0 else f"{task.output_key_stem}-{index}"
    day = task.created_at
    return f"outputs/{task.client_id}/{day:%Y}/{day:%m}/{day:%d}/{task.task_id}/{index}"


def output_metadata(task: Task) -> dict[str, str]:
    """S3 user metadata that links an output to its task (and its inbox source, if any)."""
    source = task.source
    return task_object_metadata(
        task.task_id,
        task.client_id,
        task.provider,
        source_bucket=None if source is None else source.bucket,
        source_key=None if source is None else source.key,
        source_version_id=None if source is None else source.version_id,
    )


def store_output(
    deps: Dependencies,
    task: Task,
    index: int,
    image: ResultImage,
    *,
    hedge: ProviderAttempt | None = None,
) -> ImageOutput:
    """Stream one provider image into S3 at the task's key for ``index`` (a hedge's: its own
    key, ``HEDGE_STEM_SUFFIX``) and describe it."""
    metadata = output_metadata(task)
    stem = output_key_stem(task, index)
    if hedge is not None:  # its own keys: the other attempt may be storing the task's
        metadata["provider"] = hedge.provider
        stem += HEDGE_STEM_SUFFIX
    with ExitStack() as stack:
        if image.url is not None:
            chunks = stack.enter_context(deps.fetcher.stream(image.url))
            stored = deps.images.store(chunks, stem, metadata=metadata)
        elif isinstance(image.b64, str):
            stored = deps.images.store_base64([image.b64], stem, metadata=metadata)
        elif image.b64 is not None:
            stored = deps.images.store_base64(image.b64.iter_chunks(), stem, metadata=metadata)
        else:
            raise InvalidImage("the provider result had no image")
    logger.info(
        "image stored",
        extra={"task_id": task.task_id, "key": stored.key, "bytes": stored.size_bytes},
    )
    return ImageOutput(
        bucket=stored.bucket,
        key=stored.key,
        content_type=stored.content_type,
        width=stored.width,
        height=stored.height,
        bytes=stored.size_bytes,
        sha256=stored.sha256,
    )
