"""Flow tests on the in-memory fakes: no sockets, no sleeps, no AWS (see tests/fakes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from image_gateway.timing import DEFAULT_TIMING, TimingPolicy

from tests.fakes import FakeDependencies, fake_settings
from tests.unit.service.support import png

__all__ = ["DepsFactory", "png"]


@pytest.fixture(scope="session")
def result_png() -> bytes:
    """What the fake providers hand back by default (1024x1024)."""
    return png()


@pytest.fixture
def deps(result_png: bytes) -> FakeDependencies:
    """A gateway on fakes, every registered provider configured."""
    return FakeDependencies(default_image=result_png)


DepsFactory = Callable[..., FakeDependencies]


@pytest.fixture
def make_deps(result_png: bytes) -> DepsFactory:
    """A gateway on fakes with other settings (``fake_settings`` overrides) or timing."""

    def build(*, timing: TimingPolicy = DEFAULT_TIMING, **settings: Any) -> FakeDependencies:
        return FakeDependencies(
            default_image=result_png, settings=fake_settings(**settings), timing=timing
        )

    return build
