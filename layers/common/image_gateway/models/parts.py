"""A task of ``n`` images and its parts: the bookkeeping, as pure functions on the parent.

Every provider makes one image per call, so a request for ``n`` > 1 images becomes a *parent*
task and ``n`` *part* tasks (ordinary tasks of one image, ids ``{parent}_{index}``). When a part
ends, the writer that won its terminal change records it on the parent (:func:`record_part`,
inside the parent's conditional write, so each part is recorded exactly once), and once all
``n`` are recorded the parent ends (:func:`parent_outcome`): ``succeeded`` with every image made,
in part order, when at least one was; an ``error`` with the code ``partial_failure`` says how
many failed and why.
"""

from __future__ import annotations

from image_gateway.models.task import PartRecord, Task, TaskError, TaskStatus

PARTIAL_FAILURE = "partial_failure"
"""The ``error.code`` of a task that succeeded with fewer images than it asked for."""


class AlreadyRecorded(Exception):
    """This part was recorded on its parent before (a retry or a duplicate writer)."""


def part_id(parent_id: str, index: int) -> str:
    """The id of part ``index`` (0-based) of ``parent_id``."""
    return f"{parent_id}_{index}"


def part_ids(parent: Task) -> list[str]:
    """The ids of every part of ``parent``, in order."""
    return [part_id(parent.task_id, index) for index in range(parent.request.n)]


def record_part(parent: Task, part: Task) -> None:
    """Record the ended ``part`` on ``parent`` (a change for the parent's conditional write):
    its entry, and the parent's outputs (every part's, in part order) and cost (their sum).

    Raises :class:`AlreadyRecorded` when the part is already there, so it counts once.
    """
    if part.part_index is None or not part.status.terminal:
        raise ValueError(f"{part.task_id} is not an ended part")
    if any(entry.index == part.part_index for entry in parent.parts):
        raise AlreadyRecorded(part.task_id)
    entry = PartRecord(
        index=part.part_index,
        task_id=part.task_id,
        status=part.status,
        provider=part.provider,
        outputs=part.outputs,
        error=part.error,
        cost_estimate_usd=part.cost_estimate_usd,
    )
    parent.parts = sorted([*parent.parts, entry], key=lambda e: e.index)
    parent.outputs = [output for e in parent.parts for output in e.outputs]
    costs = [e.cost_estimate_usd for e in parent.parts if e.cost_estimate_usd is not None]
    parent.cost_estimate_usd = round(sum(costs), 6) if costs else None


def parent_outcome(parent: Task) -> tuple[TaskStatus, TaskError | None] | None:
    """How the parent ends once every part is recorded (None before): ``succeeded`` when a
    part made its image (``partial_failure`` naming the others), else the parts' common end
    (all cancelled, all expired) or ``failed``, with the first part's error."""
    if len(parent.parts) < parent.request.n:
        return None
    missed = [e for e in parent.parts if e.status is not TaskStatus.SUCCEEDED]
    if not missed:
        return TaskStatus.SUCCEEDED, None
    reasons = "; ".join(_reason(e) for e in missed)
    n = parent.request.n
    if len(missed) < n:
        message = f"{len(missed)} of {n} images failed ({n - len(missed)} made): {reasons}"
        return TaskStatus.SUCCEEDED, TaskError(code=PARTIAL_FAILURE, message=message)
    ends = {e.status for e in missed}
    status = ends.pop() if len(ends) == 1 else TaskStatus.FAILED
    first = missed[0].error
    message = f"all {n} images failed ({reasons})"
    if first is None:
        return status, TaskError(code=f"task_{status.value}", message=message)
    return status, first.model_copy(update={"message": f"{message}; first: {first.message}"})


def _reason(entry: PartRecord) -> str:
    why = entry.error.code if entry.error else entry.status.value
    at = f" at {entry.error.provider}" if entry.error and entry.error.provider else ""
    return f"image {entry.index}: {why}{at}"
