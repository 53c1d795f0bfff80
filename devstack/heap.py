"""Short garbage-collector pauses for devstack's main process.

moto keeps every stored item, message and object as Python objects in this one interpreter
(with the provider simulator and the router). A full collection walks all of them while holding
the interpreter, so every thread of the process stops: in the 2,000-task bench run (figure 9)
the slowest full collection took 0.84 s of a 0.86 s pause, with 1.2 million objects tracked,
and the pauses grew with the store.

:class:`HeapFreezer` moves the objects that survived a collection out of the collector's reach
(``gc.freeze``) every ``every_seconds``, so a full collection walks only what was made since.
Reference counting still frees a frozen object that is no longer used; what the collector can
no longer free is a reference cycle among frozen objects that dies later: the bench's memory
per task is the check that this stays small. :meth:`stop` gives the frozen objects back to the
collector (``gc.unfreeze``).
"""

from __future__ import annotations

import gc
import threading

FREEZE_EVERY_SECONDS = 30.0


class HeapFreezer:
    """Collect then freeze the survivors now, and again every ``every_seconds`` until stopped."""

    def __init__(self, every_seconds: float = FREEZE_EVERY_SECONDS) -> None:
        self._every = every_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Freeze what exists now (imports, provisioning), then keep freezing in a thread."""
        self._freeze()
        self._thread = threading.Thread(target=self._run, name="heap-freezer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop freezing and give every frozen object back to the collector."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        gc.unfreeze()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._freeze()

    @staticmethod
    def _freeze() -> None:
        gc.collect()  # walks only what is not frozen yet: the objects of the last interval
        gc.freeze()
