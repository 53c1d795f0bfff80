"""Where the client finds the gateway: flags, then IMAGEGW_URL/IMAGEGW_KEY, then devstack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from imagegw.config import missing_message, resolve
from imagegw.errors import ConfigError


def _stack_file(folder: Path) -> Path:
    path = folder / ".devstack" / "stack.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"api_url": "http://127.0.0.1:9999", "api_key": "itg_stack"}))
    return path


def test_flags_win_over_the_environment(tmp_path: Path) -> None:
    env = {"IMAGEGW_URL": "https://env.example", "IMAGEGW_KEY": "itg_env"}

    found = resolve("https://flag.example/", "itg_flag", environ=env, cwd=tmp_path)

    assert (found.url, found.key, found.source) == ("https://flag.example", "itg_flag", "flags")


def test_the_environment_wins_over_devstack(tmp_path: Path) -> None:
    _stack_file(tmp_path)
    env = {"IMAGEGW_URL": "https://env.example", "IMAGEGW_KEY": "itg_env"}

    found = resolve(environ=env, cwd=tmp_path)

    assert (found.url, found.key) == ("https://env.example", "itg_env")


def test_a_running_devstack_is_found_from_a_subfolder(tmp_path: Path) -> None:
    state = _stack_file(tmp_path)
    below = tmp_path / "a" / "b"
    below.mkdir(parents=True)

    found = resolve(environ={}, cwd=below)

    assert (found.url, found.key, found.source) == (
        "http://127.0.0.1:9999",
        "itg_stack",
        str(state),
    )


def test_nothing_anywhere_is_a_config_error_saying_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="IMAGEGW_URL") as caught:
        resolve(environ={"IMAGEGW_URL": "https://env.example"}, cwd=tmp_path)

    assert caught.value.code == "not_configured"
    assert caught.value.message.startswith("no API key given: pass --url and --key")


@pytest.mark.parametrize(
    ("url", "key", "start"),
    [
        (None, None, "no gateway URL and no API key given: "),
        ("http://gw", None, "no API key given: "),
        (None, "itg_k", "no gateway URL given: "),
    ],
)
def test_the_not_configured_message_names_what_is_missing_in_a_sentence(
    url: str | None, key: str | None, start: str
) -> None:
    assert missing_message(url, key).startswith(start)
