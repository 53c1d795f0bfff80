"""Which task a function is working on, on every log line it writes from then on.

The flows call :func:`working_on` as soon as they know their task (submit, dispatch, every
refresh: callback, poll step, each task of a sweep, the compat wait; webhook delivery; the
inbox). What that means for the logs is the function's choice: its handler calls
:func:`follow` with its logger, which then carries two keys on every line:

- ``task_id``;
- ``request_id``: the caller's request that created the task (API Gateway's request id, the
  function URL's, or the inbox notification's event id), so one CloudWatch Logs Insights query,
  ``filter request_id = "..."``, finds every line of one request in every function's log.

The service layer itself configures no logger: a Powertools child logger cannot append keys
before its function's logger exists (unit tests have none), and a flow should not know which
logger its function uses (the webhook function has its own small one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class KeyedLogger(Protocol):
    """What :func:`follow` needs of a logger (Powertools' Logger, ``json_log.JsonLogger``)."""

    def append_keys(self, **keys: object) -> None:
        """Add ``keys`` to every line from now on."""
        ...


Listener = Callable[[str, "str | None"], None]
_listeners: list[Listener] = []


def follow(logger: KeyedLogger) -> Callable[[], None]:
    """From now on, ``logger``'s lines name the task the flows are working on (the returned
    function stops that)."""

    def bind(task_id: str, request_id: str | None) -> None:
        logger.append_keys(task_id=task_id, request_id=request_id)

    return listen(bind)


def working_on(task_id: str, request_id: str | None) -> None:
    """Tell the function's logger which task (and which caller's request) this work is for."""
    for listener in _listeners:
        listener(task_id, request_id)


def listen(listener: Listener) -> Callable[[], None]:
    """Add ``listener`` (tests); the returned function removes it again."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)
