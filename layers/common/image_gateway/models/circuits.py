"""Provider health as callers and subscribers see it: the ``Provider Circuit Changed`` event's
detail (schema: events/schema/provider-circuit-changed.v1.json) and a provider's health row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from image_gateway.health.breaker import phase
from image_gateway.health.circuit import Circuit, CircuitState

CIRCUIT_CHANGED_DETAIL_TYPE = "Provider Circuit Changed"

State = Literal["closed", "open", "half_open"]


def _time(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class CircuitChangedDetail(BaseModel):
    """``detail`` of the ``Provider Circuit Changed`` event (schema version 1): one provider's
    breaker changed state; only the writer that won the change emits it."""

    model_config = ConfigDict(frozen=True)

    version: Literal["1"] = "1"
    event_id: str = Field(
        description="provider:state:changed_at in milliseconds; deduplicate on it"
    )
    provider: str
    state: State = Field(description="the new state")
    previous_state: State
    changed_at: datetime
    open_until: datetime | None = Field(
        description="open: when the cool-down ends and one trial call is let through"
    )
    reason: str = Field(description="what made it change, in words")
    task_id: str | None = Field(description="the task whose call made the change")
    recent_calls: int = Field(description="calls the success rate is read from")
    success_rate: float | None = Field(description="successes over the recent calls")

    @classmethod
    def of(
        cls, before: CircuitState, after: Circuit, *, reason: str, task_id: str | None
    ) -> CircuitChangedDetail:
        """The detail of ``after``'s change from ``before``."""
        at = after.changed_at or 0.0
        return cls(
            event_id=f"{after.provider}:{after.state.value}:{round(at * 1000)}",
            provider=after.provider,
            state=after.state.value,
            previous_state=before.value,
            changed_at=datetime.fromtimestamp(at, UTC),
            open_until=_time(after.open_until) if after.state is CircuitState.OPEN else None,
            reason=reason,
            task_id=task_id,
            recent_calls=len(after.recent),
            success_rate=after.success_rate,
        )


def circuit_changed_schema() -> dict[str, object]:
    """The JSON Schema of the ``Provider Circuit Changed`` event's ``detail``
    (published as events/schema/provider-circuit-changed.v1.json)."""
    schema = CircuitChangedDetail.model_json_schema()
    schema["$id"] = "https://github.com/image-task-gateway/events/provider-circuit-changed.v1.json"
    schema["title"] = f"{CIRCUIT_CHANGED_DETAIL_TYPE} event detail (version 1)"
    return schema


class ProviderHealthView(BaseModel):
    """A provider's circuit breaker in ``GET /v1/providers``."""

    state: State = Field(
        description="closed: calls go through; open: skipped until `until`; half_open: one "
        "trial call decides"
    )
    until: datetime | None = Field(
        default=None, description="open: when the cool-down ends (then half_open)"
    )
    changed_at: datetime | None = Field(default=None, description="when the state last changed")
    recent_calls: int = Field(default=0, description="calls the success rate is read from")
    success_rate: float | None = Field(
        default=None, description="successes over the recent calls (retryable failures count)"
    )

    @classmethod
    def of(cls, circuit: Circuit, now: float) -> ProviderHealthView:
        """The breaker as a caller sees it at ``now``."""
        state = phase(circuit, now)
        return cls(
            state=state.value,
            until=_time(circuit.open_until) if state is CircuitState.OPEN else None,
            changed_at=_time(circuit.changed_at),
            recent_calls=len(circuit.recent),
            success_rate=circuit.success_rate,
        )
