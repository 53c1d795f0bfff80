"""Metrics contract: ``RecordingMetrics`` and ``EmfMetrics`` (EMF lines, as Lambda prints them).

Every value put is read back with its name, unit and dimensions; the EMF side is read the way
CloudWatch reads it: each line's directive, one series per dimension set.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from image_gateway.adapters.emf_metrics import EmfMetrics
from image_gateway.metrics import Metrics

from tests.fakes import MetricPoint, RecordingMetrics

NAMESPACE = "ImageTaskGateway"


@dataclass
class MetricsUnderTest:
    """The port, and every series value it produced (one per dimension set)."""

    metrics: Metrics
    series: Callable[[], list[MetricPoint]]


def _from_emf(output: str) -> list[MetricPoint]:
    found: list[MetricPoint] = []
    for line in output.splitlines():
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == NAMESPACE
            for metric in directive["Metrics"]:
                for keys in directive["Dimensions"]:
                    found.append(
                        MetricPoint(
                            metric["Name"],
                            float(document[metric["Name"]]),
                            metric["Unit"],
                            {k: document[k] for k in keys},
                        )
                    )
    return found


def _rolled_up(points: list[MetricPoint]) -> list[MetricPoint]:
    """The series CloudWatch keeps for the fake's points (each leading part of the dimensions)."""
    found: list[MetricPoint] = []
    for point in points:
        keys = list(point.dimensions)
        for n in range(1, len(keys) + 1) if keys else [0]:
            dims = {k: point.dimensions[k] for k in keys[:n]}
            found.append(MetricPoint(point.name, point.value, point.unit, dims))
    return found


@pytest.fixture
def under_test(implementation: str, capsys: pytest.CaptureFixture[str]) -> MetricsUnderTest:
    """Fresh metrics: the fake, or EMF on this process's stdout."""
    if implementation == "memory":
        fake = RecordingMetrics()
        return MetricsUnderTest(fake, lambda: _rolled_up(fake.points))
    capsys.readouterr()
    return MetricsUnderTest(EmfMetrics(NAMESPACE), lambda: _from_emf(capsys.readouterr().out))


def test_a_value_is_read_back_with_its_name_unit_and_dimensions(
    under_test: MetricsUnderTest,
) -> None:
    under_test.metrics.put("TasksFailed", 1, "Count", {"Provider": "apimart", "Path": "poll"})
    series = under_test.series()
    assert MetricPoint("TasksFailed", 1.0, "Count", {"Provider": "apimart"}) in series
    full = {"Provider": "apimart", "Path": "poll"}
    assert MetricPoint("TasksFailed", 1.0, "Count", full) in series
    assert len(series) == 2


def test_a_value_without_dimensions_is_one_series(under_test: MetricsUnderTest) -> None:
    under_test.metrics.put("OldestOpenTaskOverdueSeconds", 12.5, "Seconds", {})
    assert under_test.series() == [MetricPoint("OldestOpenTaskOverdueSeconds", 12.5, "Seconds", {})]


def test_values_are_kept_apart(under_test: MetricsUnderTest) -> None:
    under_test.metrics.put("CostEstimateUsd", 0.02, "None", {"Provider": "apimart"})
    under_test.metrics.put("CostEstimateUsd", 0.05, "None", {"Provider": "apimodels"})
    values = {(p.dimensions["Provider"], p.value) for p in under_test.series()}
    assert values == {("apimart", 0.02), ("apimodels", 0.05)}


def test_emf_lines_carry_a_millisecond_timestamp(capsys: pytest.CaptureFixture[str]) -> None:
    EmfMetrics(NAMESPACE).put("TasksSucceeded", 1, "Count", {"Provider": "pmock"})
    document = json.loads(capsys.readouterr().out)
    assert isinstance(document["_aws"]["Timestamp"], int)
    assert document["_aws"]["Timestamp"] > 1_700_000_000_000


@pytest.mark.parametrize(
    ("variables", "written"),
    [
        ({}, True),
        ({"POWERTOOLS_METRICS_DISABLED": "true"}, False),
        ({"POWERTOOLS_METRICS_DISABLED": "false"}, True),
        ({"POWERTOOLS_DEV": "true"}, False),
        ({"POWERTOOLS_DEV": "true", "POWERTOOLS_METRICS_DISABLED": "false"}, True),
    ],
)
def test_emf_lines_follow_powertools_metrics_disabled(
    variables: dict[str, str],
    written: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN Powertools' variables WHEN a value is put THEN a line is written only if enabled
    for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()

    EmfMetrics.from_environment(NAMESPACE).put("TasksSucceeded", 1, "Count", {"Provider": "p"})

    assert bool(capsys.readouterr().out) is written


def test_a_handler_that_counted_nothing_flushes_without_a_warning() -> None:
    # GIVEN Powertools' Metrics of a handler that expects invocations without metrics
    from aws_lambda_powertools import Metrics
    from image_gateway.metrics import expect_invocations_without_metrics

    metrics = Metrics(namespace=NAMESPACE, service="test")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        expect_invocations_without_metrics()
        # WHEN an invocation ends with nothing counted
        metrics.flush_metrics()

    # THEN Powertools says nothing about it
    assert [str(w.message) for w in caught] == []


def test_a_disabled_powertools_metrics_keeps_nothing_and_prints_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN metrics disabled (devstack's default) and a handler's Powertools Metrics
    from aws_lambda_powertools import Metrics
    from image_gateway.metrics import expect_invocations_without_metrics

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics = Metrics(namespace=NAMESPACE, service="test")
    metrics.clear_metrics()
    expect_invocations_without_metrics(metrics)

    # WHEN a warm function counts 150 values over its invocations, flushing after each
    for _ in range(150):
        metrics.add_metric(name="TasksSubmitted", unit="Count", value=1)
        metrics.flush_metrics()

    # THEN no raw metric line is printed (Powertools alone prints the set at its 100th value)
    assert "_aws" not in capsys.readouterr().out
