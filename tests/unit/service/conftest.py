"""Flow tests on the in-memory fakes: no sockets, no sleeps, no AWS (see tests/fakes)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image

from tests.fakes import FakeDependencies


def png(width: int = 1024, height: int = 1024, color: str = "teal") -> bytes:
    """PNG bytes of a plain image."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def result_png() -> bytes:
    """What the fake providers hand back by default (1024x1024)."""
    return png()


@pytest.fixture
def deps(result_png: bytes) -> FakeDependencies:
    """A gateway on fakes, every registered provider configured."""
    return FakeDependencies(default_image=result_png)


DepsFactory = Callable[..., FakeDependencies]
