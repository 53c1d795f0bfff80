"""Figure 5: tasks per second through submit -> callback -> finalise on the local stack.

Client threads submit over the local HTTP API (zero-latency simulator); the simulator calls the
webhook back at once; a task counts when it has succeeded and its event is out. devstack runs
one handler at a time, so the baseline is the same work as direct calls one after the other:
1 / (direct submit p50 + direct finalise p50) from the overhead figure of the same run.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from bench.stack import ZERO_LATENCY, BenchStack

BODY = {
    "prompt": f"a lighthouse {ZERO_LATENCY}",
    "provider": "apimart",
    "aspect_ratio": "1:1",
    "resolution": "1K",
}


def run(
    bench: BenchStack, tasks: int, clients: int, floor_ms: float | None, progress: Any
) -> dict[str, Any]:
    """Push ``tasks`` tasks through with ``clients`` concurrent callers."""
    headers = {"Authorization": f"Bearer {bench.info.api_key}"}

    def one(_: int) -> str:
        with httpx.Client(base_url=bench.info.api_url, headers=headers, timeout=60) as client:
            answer = client.post("/v1/images", json=BODY)
            answer.raise_for_status()
            return str(answer.json()["task_id"])

    runs: list[float] = []
    for attempt in range(3):
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            ids = list(pool.map(one, range(tasks)))
        bench.wait_settled(ids, timeout=300)
        elapsed = time.perf_counter() - started
        runs.append(tasks / elapsed)
        progress(f"  throughput run {attempt + 1}/3: {runs[-1]:.1f} tasks/s")
    runs.sort()
    floor = 1000 / floor_ms if floor_ms else None
    median = runs[1]
    return {
        "tasks_per_second": {"median": median, "min": runs[0], "max": runs[-1], "n": len(runs)},
        "tasks_per_run": tasks,
        "clients": clients,
        "floor_tasks_per_second": floor,
        "ratio": median / floor if floor else None,
    }
