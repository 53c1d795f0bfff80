"""What a waiting caller is told about a task's progress beyond its status.

``expected_seconds`` is the provider adapter's documented typical duration for the task's
request (the same figure the poll loop's first wait uses), at the stack's time scale. It is
worked out when the task is read, for the provider the task is at now (after a fallback, the
new one), so nothing extra is stored.
"""

from __future__ import annotations

from image_gateway.config import Settings
from image_gateway.errors import InvalidRequest
from image_gateway.models.task import Task
from image_gateway.providers.registry import get_provider


def expected_seconds(settings: Settings, task: Task) -> float | None:
    """How long the task's provider typically takes for its request; None for no provider."""
    try:
        provider = get_provider(task.provider)
    except InvalidRequest:  # a task refused before any provider ("none")
        return None
    return round(settings.scaled(provider.expected_latency_seconds(task.request)), 3)
