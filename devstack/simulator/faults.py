"""Fault markers: `[sim:<name>]` tokens in a prompt that make the simulator misbehave on purpose.

The markers and their effects are listed in the package docstring (`devstack.simulator`).
"""

from __future__ import annotations

import random
import re
import threading
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Final

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

FIRST_CREATES_503: Final = "first-creates-503"
"""`[sim:first-creates-503=K]`: the first K creates of this exact prompt at each provider answer
503; later ones work (one image of a request for n fails at every provider, the others not)."""
_CREATES_SEEN: dict[tuple[str | None, str], int] = {}
_CREATES_SEEN_MAX: Final = 10_000
_CREATES_LOCK = threading.Lock()

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
            elif name == FIRST_CREATES_503 and value is not None and value.isdigit():
                if _counted_create(prompt, provider) < int(value):
                    names.add("create-503")
            elif name in FAULT_MARKERS and (value is None or value == provider):
                names.add(name)
        found = cls(frozenset(names), seconds.get("latency"), seconds.get("stall-first-file"))
        profiles = ACTIVE_PROFILES.get()
        return found if profiles is None or provider is None else profiles.apply(found, provider)

    def __contains__(self, name: object) -> bool:
        return name in self.markers


def _counted_create(prompt: str, provider: str | None) -> int:
    """How many creates of ``prompt`` at ``provider`` came before this one (and count it)."""
    with _CREATES_LOCK:
        seen = _CREATES_SEEN.get((provider, prompt), 0)
        if len(_CREATES_SEEN) >= _CREATES_SEEN_MAX:  # a test helper: bounded, oldest forgotten
            del _CREATES_SEEN[next(iter(_CREATES_SEEN))]
        _CREATES_SEEN[(provider, prompt)] = seen + 1
    return seen


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


@dataclass(frozen=True)
class Profile:
    """A provider's runtime profile (``POST /_sim/profile``): every new task of it takes
    ``latency_seconds`` (real seconds, not scaled; a prompt's ``[sim:latency=S]`` still wins),
    and a share ``fail_rate`` of its creates answers 503 (retryable: the provider's fault)."""

    latency_seconds: float | None = None
    fail_rate: float = 0.0

    @classmethod
    def parse(cls, body: Any) -> tuple[str, Profile]:
        """``{"provider", "latency_seconds", "fail_rate"}`` -> (provider, profile); ValueError
        says what is wrong."""
        if not isinstance(body, dict) or not isinstance(body.get("provider"), str):
            raise ValueError("give a JSON object with provider (and latency_seconds, fail_rate)")
        unknown = set(body) - {"provider", "latency_seconds", "fail_rate"}
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}")
        latency, fail_rate = body.get("latency_seconds"), body.get("fail_rate", 0.0)
        if latency is not None and (not isinstance(latency, int | float) or latency < 0):
            raise ValueError("latency_seconds must be a number >= 0 (real seconds) or null")
        if not isinstance(fail_rate, int | float) or not 0 <= fail_rate <= 1:
            raise ValueError("fail_rate must be a number from 0 to 1")
        return body["provider"], cls(None if latency is None else float(latency), float(fail_rate))


class RuntimeProfiles:
    """Each provider's runtime profile, changed while the simulator runs (thread-safe)."""

    def __init__(self, seed: int | None = None) -> None:
        self._profiles: dict[str, Profile] = {}
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def set(self, provider: str, profile: Profile) -> None:
        """Give ``provider`` this profile (replacing its previous one)."""
        with self._lock:
            self._profiles[provider] = profile

    def reset(self) -> None:
        """Every provider back to its documented behaviour."""
        with self._lock:
            self._profiles.clear()

    def show(self) -> dict[str, dict[str, float | None]]:
        """The profiles by provider, as ``GET /_sim/profile`` answers."""
        with self._lock:
            return {
                name: {"latency_seconds": p.latency_seconds, "fail_rate": p.fail_rate}
                for name, p in sorted(self._profiles.items())
            }

    def apply(self, faults: Faults, provider: str) -> Faults:
        """The faults of a new task of ``provider`` with its profile applied."""
        with self._lock:
            profile = self._profiles.get(provider)
            fails = profile is not None and self._random.random() < profile.fail_rate
        if profile is None:
            return faults
        latency = faults.latency_s if faults.latency_s is not None else profile.latency_seconds
        markers = faults.markers | {"create-503"} if fails else faults.markers
        return replace(faults, markers=markers, latency_s=latency)


ACTIVE_PROFILES: ContextVar[RuntimeProfiles | None] = ContextVar("sim_profiles", default=None)
"""The profiles of the simulator answering the current request (set by the server around each
provider request, so that every dialect's ``Faults.parse`` applies them)."""
