"""AwsSweepCheckDependencies: the sweeper's ports before it knows there is work (AWS).

The sweeper's cold path on an idle stack (``service/sweep_check.py``): botocore, one DynamoDB
client for the check-time index (:class:`~image_gateway.adapters.dynamodb_due.DynamoDBDueIndex`),
EMF metrics and the timing policy, and nothing of the task model, the settings or pydantic.
When there is work, :meth:`AwsSweepCheckDependencies.everything` builds the full
``AwsDependencies`` on the same botocore session.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import botocore.session

from image_gateway.adapters.boto import PerEnvironment, client_config, new_session
from image_gateway.adapters.dynamodb_due import DynamoDBDueIndex
from image_gateway.adapters.emf_metrics import EmfMetrics
from image_gateway.timing import DEFAULT_TIMING, TimingPolicy

if TYPE_CHECKING:  # built only when there is work (see the module docstring)
    from image_gateway.adapters.aws import AwsDependencies


def table_name(environ: Mapping[str, str] | None = None) -> str:
    """``TABLE_NAME``, the variable :class:`image_gateway.config.Settings` reads it from
    (RuntimeError if missing, as there)."""
    env = os.environ if environ is None else environ
    name = env.get("TABLE_NAME", "").strip()
    if not name:
        raise RuntimeError("function misconfigured, check environment: ['table_name']")
    return name


class AwsSweepCheckDependencies:
    """The check-time index, metrics and timing (``sweep_ports.SweepCheckDependencies``)."""

    def __init__(
        self,
        table: str,
        *,
        session: botocore.session.Session | None = None,
        timing: TimingPolicy = DEFAULT_TIMING,
    ) -> None:
        self._table = table
        self._timing = timing
        self._session = session or new_session()

    @property
    def timing(self) -> TimingPolicy:
        """Every wait, retry and deadline."""
        return self._timing

    @cached_property
    def _dynamodb(self) -> Any:
        return self._session.create_client(
            "dynamodb", config=client_config("dynamodb", self._timing)
        )

    @cached_property
    def due(self) -> DynamoDBDueIndex:
        """The tasks table's check-time index."""
        return DynamoDBDueIndex(self._dynamodb, self._table)

    @cached_property
    def metrics(self) -> EmfMetrics:
        """Operator metrics, as ``AwsDependencies.metrics``."""
        return EmfMetrics.from_environment()

    @cached_property
    def everything(self) -> AwsDependencies:
        """The full ports (settings validated now), for a run with work: same session."""
        from image_gateway.adapters.aws import AwsDependencies
        from image_gateway.config import Settings

        return AwsDependencies(Settings.from_env(), session=self._session, timing=self._timing)


def lazy_sweep_check_dependencies() -> PerEnvironment[AwsSweepCheckDependencies]:
    """One ``AwsSweepCheckDependencies`` per execution environment, built at the first event."""
    return PerEnvironment(lambda: AwsSweepCheckDependencies(table_name()))
