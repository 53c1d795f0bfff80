"""Bounded waiting for conditions that other threads or processes make true."""

from __future__ import annotations

import time
from typing import Any


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy (bounded), then return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)
