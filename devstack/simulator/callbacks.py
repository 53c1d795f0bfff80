"""Webhook deliveries: a scheduler (one thread, not one per task) and a retrying JSON sender."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import httpx

CALLBACK_TIMEOUT_S: Final = 10.0
CALLBACK_ATTEMPTS: Final = 4
"""One delivery plus up to three retries."""

Job = Callable[[], None]

_log = logging.getLogger(__name__)


class CallbackScheduler:
    """Runs jobs after a delay on a small pool of worker threads."""

    def __init__(self, workers: int = 8) -> None:
        self._queue: list[tuple[float, int, Job]] = []
        self._sequence = itertools.count()
        self._wakeup = threading.Condition()
        self._stopped = False
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sim-callback")
        self._thread = threading.Thread(target=self._run, name="sim-scheduler", daemon=True)

    def start(self) -> None:
        """Start the scheduler thread."""
        self._thread.start()

    def stop(self) -> None:
        """Drop pending jobs and stop; jobs already running finish on their own."""
        with self._wakeup:
            self._stopped = True
            self._queue.clear()
            self._wakeup.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def call_later(self, delay_s: float, job: Job) -> None:
        """Run `job` on a worker thread in `delay_s` real seconds."""
        with self._wakeup:
            if self._stopped:
                return
            heapq.heappush(self._queue, (time.monotonic() + delay_s, next(self._sequence), job))
            self._wakeup.notify()

    def _run(self) -> None:
        with self._wakeup:
            while not self._stopped:
                now = time.monotonic()
                while self._queue and self._queue[0][0] <= now:
                    _, _, job = heapq.heappop(self._queue)
                    self._pool.submit(self._guarded, job)
                timeout = self._queue[0][0] - now if self._queue else None
                self._wakeup.wait(timeout)

    @staticmethod
    def _guarded(job: Job) -> None:
        try:
            job()
        except Exception:  # A failing job must not take the worker down.
            _log.exception("simulator callback job failed")


class WebhookSender:
    """POSTs JSON to webhooks, retrying failures, and records every attempt."""

    def __init__(
        self,
        client: httpx.Client,
        scheduler: CallbackScheduler,
        record: Callable[[dict[str, Any]], None],
        retry_delay_s: float,
    ) -> None:
        self._client = client
        self._scheduler = scheduler
        self._record = record
        self._retry_delay_s = retry_delay_s

    def deliver(
        self,
        url: str,
        body: bytes,
        task_id: str,
        delivery: int,
        then: Job | None = None,
        attempt: int = 1,
    ) -> None:
        """POST `body` to `url` now; retry a non-2xx answer or an error, then run `then`."""
        entry: dict[str, Any] = {
            "time": time.time(),
            "url": url,
            "task_id": task_id,
            "delivery": delivery,
            "attempt": attempt,
            "status_code": None,
            "error": None,
        }
        ok = False
        try:
            response = self._client.post(
                url,
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=CALLBACK_TIMEOUT_S,
            )
            entry["status_code"] = response.status_code
            ok = response.is_success
        except httpx.HTTPError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
        self._record(entry)
        if not ok and attempt < CALLBACK_ATTEMPTS:
            self._scheduler.call_later(
                self._retry_delay_s,
                lambda: self.deliver(url, body, task_id, delivery, then, attempt + 1),
            )
        elif then is not None:
            then()

    def deliver_series(
        self, url: str, body: bytes, task_id: str, extra_delays: Sequence[float] = ()
    ) -> None:
        """Deliver `body` now, then once more after each of `extra_delays` seconds.

        Each extra delivery (numbered 2, 3, ...) waits from the end of the previous delivery's
        attempts, retries included.
        """
        self._deliver_from(url, body, task_id, 1, tuple(extra_delays))

    def _deliver_from(
        self, url: str, body: bytes, task_id: str, delivery: int, extra_delays: tuple[float, ...]
    ) -> None:
        def then() -> None:
            if extra_delays:
                self._scheduler.call_later(
                    extra_delays[0],
                    lambda: self._deliver_from(url, body, task_id, delivery + 1, extra_delays[1:]),
                )

        self.deliver(url, body, task_id, delivery, then)
