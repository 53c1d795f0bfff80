"""The API's view of a client's limits and usage (``GET /v1/usage``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from image_gateway.limits.ports import UsageCounts


class RateWindowView(BaseModel):
    """The current fixed rate window: submits counted in it, and when it ends."""

    limit_per_minute: int = Field(description="submits a minute this client may make")
    used: int = Field(description="submits counted in the current window")
    remaining: int
    window_start: datetime
    window_seconds: int
    resets_at: datetime = Field(description="when the next window starts")

    @classmethod
    def of(cls, counts: UsageCounts, *, limit: int) -> RateWindowView:
        """The view of the ledger's window."""
        return cls(
            limit_per_minute=limit,
            used=counts.window_requests,
            remaining=max(0, limit - counts.window_requests),
            window_start=counts.window_start,
            window_seconds=counts.window_seconds,
            resets_at=counts.window_start + timedelta(seconds=counts.window_seconds),
        )


class UsageView(BaseModel):
    """A client's day: spend against its budget, running and queued tasks against their
    limits, the rate."""

    client_id: str
    day: str = Field(description="the UTC day (YYYY-MM-DD) the spend is counted in")
    spent_usd: float = Field(
        description="estimates of today's tasks: reserved while open, their final estimate once "
        "ended (failed tasks cost 0)"
    )
    daily_budget_usd: float | None = Field(description="null: no budget")
    budget_remaining_usd: float | None
    running_tasks: int = Field(
        description="tasks holding one of the client's running places: at a provider, or on "
        "their way to one"
    )
    max_running_tasks: int = Field(description="running places; tasks over it queue")
    queued_tasks: int = Field(
        description="accepted tasks waiting for a running place (they start oldest first)"
    )
    max_queued_tasks: int = Field(
        description="queued tasks past which a submit gets 429 queue_full"
    )
    rate: RateWindowView
