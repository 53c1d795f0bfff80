"""StepFunctionsPollLoops: one Standard execution per task (adapter of ``ports.PollLoops``)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from image_gateway.errors import GatewayError


class StepFunctionsPollLoops:
    """Starts the poll state machine, named after the task (AWS refuses a second start)."""

    def __init__(self, stepfunctions_client: Any, state_machine_arn: str | None) -> None:
        self._sfn = stepfunctions_client
        self._arn = state_machine_arn

    def start(self, task_id: str, first_wait_seconds: int, *, hedge: bool = False) -> None:
        """Start the loop (a second start is refused by AWS, or is a no-op for the same input);
        a hedge's loop is a second execution, named ``{task_id}-hedge``."""
        if not self._arn:
            raise GatewayError("STATE_MACHINE_ARN is not configured for this function")
        # ExecutionAlreadyExists: the task's loop is already running (a redelivered hand-off)
        with contextlib.suppress(self._sfn.exceptions.ExecutionAlreadyExists):
            self._sfn.start_execution(
                stateMachineArn=self._arn,
                name=f"{task_id}-hedge" if hedge else task_id,
                input=json.dumps(
                    {"task_id": task_id, "wait_seconds": first_wait_seconds, "attempt": 0}
                ),
            )
