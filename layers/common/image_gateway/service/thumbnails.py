"""Thumbnails: a small JPEG of each succeeded task's first output, made off the finaliser's path.

The thumbnail function reads the gateway's own ``Image Task Succeeded`` events (an EventBridge
rule sends them to ``ThumbnailQueue``) and, for each, stores ``{output stem}.thumb.jpg`` next to
the first output and names it on the task (``thumbnail_key``: the console's gallery and the task
list show it; without one they show the image itself). The finalisers (callback, poll loop,
sync dispatch, sweeper) no longer wait for Pillow, an S3 read-back and a third task write: the
task's event, its webhook and an OpenAI-compatible caller's answer go out without them.

A repeated event (the sweeper re-emits an event it is not sure went out) finds the thumbnail
named and does nothing. An output Pillow cannot read is logged and left without a thumbnail
(the gallery falls back to the image); an AWS error raises, and SQS delivers the event again.
"""

from __future__ import annotations

from enum import StrEnum

from image_gateway.errors import NotFound
from image_gateway.images.thumbnail import make_thumbnail, thumbnail_stem
from image_gateway.thumbnail_ports import ThumbnailDependencies


class ThumbnailOutcome(StrEnum):
    """What one event came to."""

    MADE = "made"
    ALREADY_MADE = "already_made"
    NO_OUTPUT = "no_output"
    UNREADABLE = "unreadable"


def make_task_thumbnail(deps: ThumbnailDependencies, task_id: str) -> ThumbnailOutcome:
    """Make, store and name the thumbnail of the task's first output (once)."""
    first = deps.tasks.first_output(task_id)
    if first is None:
        return ThumbnailOutcome.NO_OUTPUT
    if first.thumbnail_key is not None:
        return ThumbnailOutcome.ALREADY_MADE
    try:
        preview = make_thumbnail(deps.images.open_stream(first.key))
    except NotFound:  # the output was deleted meanwhile (its task too, soon)
        return ThumbnailOutcome.NO_OUTPUT
    except OSError:  # Pillow's UnidentifiedImageError too: retrying cannot help
        return ThumbnailOutcome.UNREADABLE
    stored = deps.images.store([preview], thumbnail_stem(first.key), metadata=first.metadata)
    if deps.tasks.name_thumbnail(task_id, stored.key):
        return ThumbnailOutcome.MADE
    return ThumbnailOutcome.ALREADY_MADE  # another delivery of the event named it first
