"""``GET /v1/tasks``'s query string: a page of the caller's tasks, or up to 100 by id."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator, model_validator

MAX_IDS_PER_LOOKUP = 100
MAX_TASK_ID_CHARS = 128
# 100 task ids (36 characters each) with their commas, well inside API Gateway's 10 KB for
# the request line and headers together.
MAX_IDS_CHARS = 4_900


class TaskListQuery(BaseModel):
    """``GET /v1/tasks``'s query string (other parameters are ignored): a page of the caller's
    tasks, or, with ``ids``, those tasks in full."""

    limit: int = Field(20, ge=1, le=100, description="tasks per page (not with ids)")
    cursor: str | None = Field(
        None, max_length=2048, description="the next_cursor of the page before (not with ids)"
    )
    ids: str | None = Field(
        None,
        max_length=MAX_IDS_CHARS,
        pattern=r"^[A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*$",
        description=f"up to {MAX_IDS_PER_LOOKUP} task ids, comma-separated: answers those "
        "tasks in full (a TaskBatch) instead of a page; ids that are unknown or another "
        "client's are listed in not_found",
    )

    @field_validator("ids")
    @classmethod
    def _at_most_a_batch(cls, ids: str | None) -> str | None:
        if ids is None:
            return None
        parts = ids.split(",")
        if len(set(parts)) > MAX_IDS_PER_LOOKUP:
            raise ValueError(f"at most {MAX_IDS_PER_LOOKUP} distinct ids per call")
        if any(len(part) > MAX_TASK_ID_CHARS for part in parts):
            raise ValueError(f"a task id has at most {MAX_TASK_ID_CHARS} characters")
        return ids

    @model_validator(mode="after")
    def _ids_alone(self) -> TaskListQuery:
        if self.ids is not None and {"limit", "cursor"} & self.model_fields_set:
            raise ValueError("ids reads those tasks: it takes no limit or cursor")
        return self

    def id_list(self) -> list[str]:
        """The ids asked for, each once, in the order given (empty without ``ids``)."""
        return list(dict.fromkeys(self.ids.split(","))) if self.ids else []
