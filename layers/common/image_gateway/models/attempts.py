"""One try at one provider as a task records it (``attempts`` of the task view), and the
gateway's error model a failed try or task carries."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from image_gateway.errors import ProviderError


class TaskError(BaseModel):
    """Why a task failed, in the gateway's error model."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    provider: str | None = None
    retryable: bool = False

    @classmethod
    def from_provider_error(cls, error: ProviderError) -> TaskError:
        """The task's record of a classified provider error."""
        return cls(
            code=error.code,
            message=error.message,
            provider=error.provider,
            retryable=error.retryable,
        )


FinishPath = Literal["callback", "poll", "sync"]
"""How a task is finished: provider callback, poll loop, or one sync call (dispatch queue)."""


AttemptOutcome = Literal["submitted", "completed", "failed", "cancelled", "expired", "superseded"]
"""Where one try at one provider ended (``submitted`` while the provider still works on it)."""


class ProviderAttempt(BaseModel):
    """One try at one provider."""

    provider: str
    provider_task_id: str | None = None
    at: datetime = Field(description="when the provider was called")
    outcome: AttemptOutcome = Field(
        description="submitted: the provider took the task and is working on it; completed: "
        "it made the image; failed: see error; cancelled / expired: the task was cancelled or "
        "passed its deadline while the provider worked; superseded: another attempt of the "
        "task (hedging) ended it first, and this one's result, if any, was discarded"
    )
    finished_at: datetime | None = Field(
        default=None, description="when the attempt ended (None while submitted)"
    )
    error: TaskError | None = None
    slot_wait_seconds: float | None = Field(
        default=None,
        description="how long it waited for one of the provider's slots (from its hand-off)",
    )
    hedge: bool = Field(
        default=False,
        description="started as a hedge, beside the attempt before it (docs/routing.md)",
    )
    note: str | None = Field(default=None, description="why a hedge was started")
    path: FinishPath | None = Field(
        default=None, description="a hedge's own path (callback, poll or sync)"
    )
    size_sent: str | None = Field(default=None, description="what a hedge's provider was asked")
    cost_estimate_usd: float | None = Field(
        default=None,
        description="a hedge's price, added to the task's cost once its provider took it",
    )
