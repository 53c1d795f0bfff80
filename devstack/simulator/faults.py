"""Fault markers: `[sim:<name>]` tokens in a prompt that make the simulator misbehave on purpose.

The markers and their effects are listed in the package docstring (`devstack.simulator`).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Final

from devstack.simulator.wire import SimResponse, json_response, raw_response

FAULT_MARKERS: Final = frozenset(
    {
        "create-503",
        "create-timeout",
        "create-garbage",
        "moderation",
        "fail",
        "cancelled",
        "timeout",
        "never",
        "poll-garbage",
        "bad-image",
        "noise",
        "url-string",
        "unreachable-result",
        "duplicate-callback",
        "late-callback",
        "no-callback",
    }
)
"""Every `[sim:<name>]` marker the simulator understands, besides `[sim:latency=S]` and
`[sim:stall-first-file=S]`."""

CREATE_TIMEOUT_S: Final = 30.0
"""How long `[sim:create-timeout]` holds the create request (real seconds, not scaled); a
synchronous endpoint holds a `[sim:never]` request as long, then answers 504."""

_SECONDS_MARKERS: Final = frozenset({"latency", "stall-first-file"})
"""Markers whose value is a number of real seconds, not a provider."""
_MARKER: Final = re.compile(r"\[sim:([a-z0-9-]+)(?:=([^\]]*))?\]")


@dataclass(frozen=True)
class Faults:
    """The fault markers found in one prompt."""

    markers: frozenset[str] = frozenset()
    latency_s: float | None = None
    """`[sim:latency=S]`: the task's latency in real seconds, not scaled by time_scale."""
    first_download_stall_s: float | None = None
    """`[sim:stall-first-file=S]` (apimart): the first GET of the task's result file is held
    S real seconds before it is answered; later GETs are answered at once."""

    @classmethod
    def parse(cls, prompt: object, provider: str | None = None) -> Faults:
        """Read the markers from a prompt; unknown markers and non-string prompts are ignored.

        `[sim:NAME=PROVIDER]` applies to that provider only (e.g. `[sim:create-503=apimart]`
        makes apimart unavailable while a fallback provider works normally).
        """
        if not isinstance(prompt, str):
            return cls()
        names: set[str] = set()
        seconds: dict[str, float] = {}
        for match in _MARKER.finditer(prompt):
            name, value = match.group(1), match.group(2)
            if name in _SECONDS_MARKERS and value is not None:
                try:
                    seconds[name] = max(0.0, float(value))
                except ValueError:
                    continue
            elif name in FAULT_MARKERS and (value is None or value == provider):
                names.add(name)
        return cls(frozenset(names), seconds.get("latency"), seconds.get("stall-first-file"))

    def __contains__(self, name: object) -> bool:
        return name in self.markers


def create_fault_response(
    faults: Faults, stop: threading.Event, unavailable: SimResponse | None = None
) -> SimResponse | None:
    """The response a create fault forces, or None to carry on with the normal create.

    `[sim:create-503]` answers `unavailable` (a dialect's own 503 error body), by default
    `{"error": "upstream unavailable"}`. `[sim:create-timeout]` waits (until the simulator stops
    at the latest) and then carries on, as a provider that accepted the task but answered too
    late would.
    """
    if "create-503" in faults:
        return unavailable or json_response(503, {"error": "upstream unavailable"})
    if "create-garbage" in faults:
        return raw_response(200, b"<html>oops</html>", "text/html")
    if "create-timeout" in faults:
        stop.wait(CREATE_TIMEOUT_S)
    return None
