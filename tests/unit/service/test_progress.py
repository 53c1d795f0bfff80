"""expected_seconds: the provider's typical duration for the task's request, time-scaled."""

from __future__ import annotations

from image_gateway.models.task import Task, utc_now
from image_gateway.service.progress import expected_seconds

from tests.fakes import fake_settings
from tests.unit.service.support import fox


def _task(provider: str, **request: object) -> Task:
    now = utc_now()
    return Task(
        task_id="tsk_1", client_id="c", operation=fox().operation, model="gpt-image-2",
        provider=provider, request=fox(**request), created_at=now, updated_at=now,
    )  # fmt: skip


def test_it_is_the_adapters_latency_for_the_request() -> None:
    settings = fake_settings()

    assert expected_seconds(settings, _task("mountsea-async", quality="high")) == 45.0
    assert expected_seconds(settings, _task("apimart", size="2048x1152")) == 50.0


def test_it_follows_the_stacks_time_scale() -> None:
    assert expected_seconds(fake_settings(time_scale=0.02), _task("mountsea-async")) == 0.6


def test_a_task_without_a_known_provider_has_none() -> None:
    assert expected_seconds(fake_settings(), _task("none")) is None
