"""StepFunctionsPollLoops: one Standard execution per task (adapter of ``ports.PollLoops``)."""

from __future__ import annotations

import json
from typing import Any

from image_gateway.errors import GatewayError


class StepFunctionsPollLoops:
    """Starts the poll state machine, named after the task (AWS refuses a second start)."""

    def __init__(self, stepfunctions_client: Any, state_machine_arn: str | None) -> None:
        self._sfn = stepfunctions_client
        self._arn = state_machine_arn

    def start(self, task_id: str, first_wait_seconds: int) -> bool:
        """Start the loop; False when an execution of that name already exists."""
        if not self._arn:
            raise GatewayError("STATE_MACHINE_ARN is not configured for this function")
        try:
            self._sfn.start_execution(
                stateMachineArn=self._arn,
                name=task_id,
                input=json.dumps(
                    {"task_id": task_id, "wait_seconds": first_wait_seconds, "attempt": 0}
                ),
            )
        except self._sfn.exceptions.ExecutionAlreadyExists:
            return False
        return True
