"""Where the gateway is and which key to use: flags, then the environment, then devstack.

``IMAGEGW_URL`` and ``IMAGEGW_KEY`` set them in the environment. Without either, a running
devstack is found by its state file, ``.devstack/stack.json``, in the current folder or a
parent (``make devstack`` writes it in the repository's folder with the API URL and the demo
client's key).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from imagegw.errors import ConfigError

STATE_FILE = Path(".devstack") / "stack.json"


@dataclass(frozen=True)
class Connection:
    """A gateway URL, an API key, and where each came from."""

    url: str
    key: str
    source: str


def find_stack_file(start: Path) -> Path | None:
    """``.devstack/stack.json`` in ``start`` or the nearest parent that has one."""
    for folder in (start, *start.parents):
        candidate = folder / STATE_FILE
        if candidate.is_file():
            return candidate
    return None


def missing_message(url: str | None, key: str | None) -> str:
    """What to say when the URL, the key or both were found nowhere."""
    missing = " and no ".join(n for n, v in (("gateway URL", url), ("API key", key)) if not v)
    return (
        f"no {missing} given: pass --url and --key, set IMAGEGW_URL and IMAGEGW_KEY, or run "
        "`make devstack` in the repository (imagegw then reads its .devstack/stack.json)"
    )


def resolve(
    url: str | None = None,
    key: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Connection:
    """The connection to use (ConfigError when the URL or the key is nowhere)."""
    env = os.environ if environ is None else environ
    sources = []
    if url:
        sources.append("flags")
    elif env.get("IMAGEGW_URL"):
        url = env["IMAGEGW_URL"]
        sources.append("IMAGEGW_URL")
    if key:
        sources.append("flags")
    elif env.get("IMAGEGW_KEY"):
        key = env["IMAGEGW_KEY"]
        sources.append("IMAGEGW_KEY")
    if not url or not key:
        found = find_stack_file(cwd or Path.cwd())
        if found is not None:
            try:
                state = json.loads(found.read_text())
            except (OSError, ValueError):
                state = {}
            if not url and state.get("api_url"):
                url = str(state["api_url"])
                sources.append(str(found))
            if not key and state.get("api_key"):
                key = str(state["api_key"])
                sources.append(str(found))
    if not url or not key:
        raise ConfigError(missing_message(url, key))
    return Connection(url=url.rstrip("/"), key=key, source=", ".join(dict.fromkeys(sources)))
