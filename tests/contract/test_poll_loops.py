"""PollLoops contract: ``InMemoryPollLoops`` and ``StepFunctionsPollLoops`` (moto).

One poll loop per task: an execution of the poll state machine (statemachines/poll.asl.json)
named after the task, whose input starts the loop's first wait. moto records executions
without running them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from image_gateway.adapters.stepfunctions_poll import StepFunctionsPollLoops
from image_gateway.ports import PollLoops

from devstack.template import ROOT
from tests.fakes import InMemoryPollLoops

ASL_PATH = ROOT / "statemachines" / "poll.asl.json"
DUMMY_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:poll"


@dataclass
class LoopsUnderTest:
    """The poll loops, and the inputs of the executions started for a task."""

    loops: PollLoops
    inputs_of: Callable[[str], list[dict[str, Any]]]


def _state_machine(stepfunctions: Any, substitutions: dict[str, Any]) -> str:
    definition = ASL_PATH.read_text()
    for name in substitutions:
        definition = definition.replace("${" + name + "}", DUMMY_FUNCTION_ARN)
    arn: str = stepfunctions.create_state_machine(
        name=f"poll-{uuid.uuid4().hex[:12]}",
        definition=definition,
        roleArn="arn:aws:iam::123456789012:role/poll",
        type="STANDARD",
    )["stateMachineArn"]
    return arn


def _step_functions_under_test(stepfunctions: Any, resources: dict[str, Any]) -> LoopsUnderTest:
    substitutions = resources["PollStateMachine"]["Properties"]["DefinitionSubstitutions"]
    arn = _state_machine(stepfunctions, substitutions)

    def inputs_of(task_id: str) -> list[dict[str, Any]]:
        executions = stepfunctions.list_executions(stateMachineArn=arn)["executions"]
        return [
            json.loads(stepfunctions.describe_execution(executionArn=e["executionArn"])["input"])
            for e in executions
            if e["name"] == task_id
        ]

    return LoopsUnderTest(StepFunctionsPollLoops(stepfunctions, arn), inputs_of)


def _memory_under_test() -> LoopsUnderTest:
    fake = InMemoryPollLoops()
    return LoopsUnderTest(
        fake, lambda task_id: [dict(fake.inputs[task_id])] if task_id in fake.inputs else []
    )


@pytest.fixture
def poll(implementation: str, request: pytest.FixtureRequest) -> LoopsUnderTest:
    """No loop started yet: the fake, or the poll state machine on moto's Step Functions."""
    if implementation == "memory":
        return _memory_under_test()
    return _step_functions_under_test(
        request.getfixturevalue("stepfunctions"), request.getfixturevalue("template_resources")
    )


def test_given_a_started_loop_then_its_input_carries_the_task_the_first_wait_and_attempt_0(
    poll: LoopsUnderTest,
) -> None:
    poll.loops.start("task-1", 30)

    assert poll.inputs_of("task-1") == [{"task_id": "task-1", "wait_seconds": 30, "attempt": 0}]


def test_given_a_started_loop_when_started_again_with_another_wait_then_no_second_loop(
    poll: LoopsUnderTest,
) -> None:
    poll.loops.start("task-1", 30)

    poll.loops.start("task-1", 5)

    assert poll.inputs_of("task-1") == [{"task_id": "task-1", "wait_seconds": 30, "attempt": 0}]


def test_given_a_running_loop_when_started_again_alike_then_no_second_loop(
    poll: LoopsUnderTest,
) -> None:
    poll.loops.start("task-1", 30)

    poll.loops.start("task-1", 30)

    assert len(poll.inputs_of("task-1")) == 1


def test_given_two_tasks_when_their_loops_start_then_each_has_its_own(
    poll: LoopsUnderTest,
) -> None:
    poll.loops.start("task-1", 30)
    poll.loops.start("task-2", 30)

    assert [len(poll.inputs_of(t)) for t in ("task-1", "task-2")] == [1, 1]
