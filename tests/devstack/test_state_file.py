"""``make demo`` next to a running ``make devstack``: the demo's stack writes no state file, so
the running stack's ``.devstack/stack.json`` (what imagegw finds) is neither replaced nor
removed by the demo's start and stop."""

from __future__ import annotations

import json
from pathlib import Path

from devstack.demo import demo_config
from devstack.stack import DevStack, StackConfig, StackInfo


def info(api_url: str) -> StackInfo:
    return StackInfo(api_url, "itg_k", "demo", "http://moto", "http://sim", "t", "b", "bus", "arn")


def test_the_demos_stack_leaves_a_running_devstacks_state_file_alone() -> None:
    default = StackConfig().state_file  # where `make devstack` writes, and imagegw looks
    assert default is not None
    before = default.read_text() if default.exists() else None
    demo = DevStack(demo_config())
    demo.info = info("http://127.0.0.1:2222")

    demo._write_state(demo.info)  # what starting does
    demo._forget_state()  # what stopping does

    assert demo.config.state_file is None
    assert (default.read_text() if default.exists() else None) == before


def test_a_devstack_with_a_state_file_writes_it_and_removes_it_when_it_is_its_own(
    tmp_path: Path,
) -> None:
    config = demo_config()
    config.state_file = tmp_path / "stack.json"
    stack = DevStack(config)
    stack.info = info("http://127.0.0.1:3333")

    stack._write_state(stack.info)
    written = json.loads(config.state_file.read_text())["api_url"]
    stack._forget_state()

    assert written == "http://127.0.0.1:3333"
    assert not config.state_file.exists()
