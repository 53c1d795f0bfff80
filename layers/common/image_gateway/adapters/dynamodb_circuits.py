"""DynamoDBCircuitStore: every provider's circuit breaker in the tasks table
(adapter of ``health.ports.CircuitStore``), and ``AwsHealth``, the health ports on AWS.

Item layout: ``pk=BREAKER``, ``sk=<provider>``, ``state``, ``failures`` (epoch seconds),
``open_until``, ``trial_holder``, ``trial_until``, ``recent`` (``S``/``F``), ``changed_at``,
``version``, ``expires_at`` (TTL). One partition holds every provider, so one eventually
consistent query (a few hundred bytes: half a read unit) reads them all for a routing
decision; a conditional put on ``version`` changes one, so of two writers one wins.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from typing import Any

from botocore.exceptions import ClientError

from image_gateway.adapters.dynamodb_measurements import DynamoDBMeasurementStore
from image_gateway.adapters.eventbridge import EventBridgeCircuitEvents
from image_gateway.health.circuit import Circuit, CircuitState

PARTITION = "BREAKER"


class DynamoDBCircuitStore:
    """Circuits as items of one partition of the tasks table."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._ddb = dynamodb_client
        self._table = table_name

    def all(self) -> dict[str, Circuit]:
        """Every stored circuit (one query, eventually consistent: a claim is conditional)."""
        answer = self._ddb.query(
            TableName=self._table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": PARTITION}},
        )
        circuits = (_load(item) for item in answer.get("Items", []))
        return {c.provider: c for c in circuits}

    def get(self, provider: str) -> Circuit:
        """One circuit, read consistently (closed at version 0 when none is stored)."""
        answer = self._ddb.get_item(
            TableName=self._table,
            Key={"pk": {"S": PARTITION}, "sk": {"S": provider}},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return Circuit(provider) if item is None else _load(item)

    def put(self, circuit: Circuit, *, expires_at: float) -> bool:
        """Write if the stored version is the one before ``circuit.version``."""
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if circuit.version <= 1
            else {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": {"N": str(circuit.version - 1)}},
            }
        )
        try:
            self._ddb.put_item(TableName=self._table, Item=_dump(circuit, expires_at), **condition)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def reset(self, provider: str) -> None:
        """Delete the provider's circuit (closed again)."""
        self._ddb.delete_item(
            TableName=self._table, Key={"pk": {"S": PARTITION}, "sk": {"S": provider}}
        )


def _number(value: float) -> dict[str, str]:
    return {"N": f"{value:.3f}"}


def _dump(circuit: Circuit, expires_at: float) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": PARTITION},
        "sk": {"S": circuit.provider},
        "state": {"S": circuit.state.value},
        "failures": {"L": [_number(t) for t in circuit.failures]},
        "recent": {"S": circuit.recent},
        "version": {"N": str(circuit.version)},
        "expires_at": {"N": str(int(expires_at))},
    }
    for name in ("open_until", "trial_until", "changed_at"):
        value = getattr(circuit, name)
        if value is not None:
            item[name] = _number(value)
    if circuit.trial_holder is not None:
        item["trial_holder"] = {"S": circuit.trial_holder}
    return item


def _load(item: dict[str, Any]) -> Circuit:
    def number(name: str) -> float | None:
        return float(item[name]["N"]) if name in item else None

    return Circuit(
        provider=item["sk"]["S"],
        state=CircuitState(item["state"]["S"]),
        failures=tuple(float(t["N"]) for t in item.get("failures", {}).get("L", [])),
        open_until=number("open_until"),
        trial_holder=item["trial_holder"]["S"] if "trial_holder" in item else None,
        trial_until=number("trial_until"),
        recent=item.get("recent", {}).get("S", ""),
        changed_at=number("changed_at"),
        version=int(item["version"]["N"]),
    )


class AwsHealth:
    """Provider health on AWS (satisfies ``health.ports.HealthPorts``)."""

    def __init__(
        self,
        dynamodb: Any,
        table_name: str,
        events: Callable[[], EventBridgeCircuitEvents],
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table_name
        self._events = events

    @cached_property
    def circuits(self) -> DynamoDBCircuitStore:
        """Every provider's breaker, in the tasks table."""
        return DynamoDBCircuitStore(self._dynamodb, self._table)

    @cached_property
    def measurements(self) -> DynamoDBMeasurementStore:
        """Each provider's measured calls, in the tasks table."""
        return DynamoDBMeasurementStore(self._dynamodb, self._table)

    @cached_property
    def events(self) -> EventBridgeCircuitEvents:
        """``Provider Circuit Changed`` on the stack's bus (its client built on first use)."""
        return self._events()

    def now(self) -> float:
        """Epoch seconds."""
        return time.time()
