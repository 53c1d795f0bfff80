"""What providers measured and how routing used it, as callers see it: ``measured`` in
``GET /v1/providers``."""

from __future__ import annotations

from pydantic import BaseModel, Field

from image_gateway.health.measure import Measured
from image_gateway.models.request import Operation, Resolution


class MeasuredFigures(BaseModel):
    """What a provider's calls measured over the window (``health.measure``)."""

    latency_p50_seconds: float | None = Field(
        description="median time to done, from the attempt's dispatch to the image stored "
        "(None: no image made in the window)"
    )
    latency_p90_seconds: float | None = Field(description="90th percentile time to done")
    success_rate: float | None = Field(
        description="answers over samples: moderation and invalid input count as answers; "
        "retryable failures, broken answers and deadlines passed as failures"
    )
    slot_wait_p50_seconds: float | None = Field(
        default=None,
        description="median wait of the attempts for one of the provider's slots (queueing at "
        "its concurrency limit), from the attempt's hand-off to its call",
    )
    slot_wait_p90_seconds: float | None = Field(default=None, description="its 90th percentile")
    samples: int = Field(description="attempts that ended in the window")
    window: str = Field(description="the rolling window, e.g. 15m")

    @classmethod
    def of(cls, figures: Measured) -> MeasuredFigures:
        """The view of summed records."""
        return cls(
            latency_p50_seconds=figures.latency_p50_seconds,
            latency_p90_seconds=figures.latency_p90_seconds,
            success_rate=figures.success_rate,
            slot_wait_p50_seconds=figures.slot_wait_p50_seconds,
            slot_wait_p90_seconds=figures.slot_wait_p90_seconds,
            samples=figures.samples,
            window=figures.window,
        )


class MeasuredTier(MeasuredFigures):
    """A provider's figures for one operation and resolution tier."""

    operation: Operation
    tier: Resolution


class MeasuredView(MeasuredFigures):
    """A provider's figures over every operation and tier, and per operation and tier."""

    by_tier: list[MeasuredTier] = Field(
        default_factory=list, description="the same figures per operation and resolution tier"
    )
