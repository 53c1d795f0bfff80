"""The cold start part of the report: the built artefact first, the dev tree as a second table."""

from __future__ import annotations

from typing import Any

from bench.report import markdown, rows


def _spread(median: float) -> dict[str, float]:
    return {"median": median, "p25": median, "p75": median, "min": median, "max": median, "n": 1}


def _cold(python: str, api_ms: float, floor_ms: float) -> dict[str, Any]:
    return {
        "floor_boto3_import_ms": _spread(floor_ms),
        "python": {"version": python, "executable": "python", "boto3": "1.44.5"},
        "functions": {
            "ApiFunction": {
                "total_ms": _spread(api_ms),
                "import_ms": _spread(api_ms / 2),
                "first_event_ms": _spread(api_ms / 2),
                "ratio": _spread(api_ms / floor_ms),
                "target_ratio": 3.0,
                "met": api_ms / floor_ms <= 3.0,
                "maxrss_mb": _spread(70),
                "top_imports": [{"package": "pydantic", "self_ms": 30.0}],
            }
        },
    }


def _results() -> dict[str, Any]:
    built = _cold("3.13.0", api_ms=300, floor_ms=100)
    built["artefact"] = {
        "handlers": ".aws-sam/build/<LogicalId>/app.py",
        "layer": ".aws-sam/build/CommonLayer/python",
        "layer_bytecode": "625 unchecked-hash cpython-313 .pyc files",
        "imported_as": "the built layer as is",
        "environment": "PYTHONDONTWRITEBYTECODE=1",
    }
    built["without_bytecode"] = {
        "floor_boto3_import_ms": _spread(100),
        "functions": {
            "ApiFunction": {"total_ms": _spread(600), "import_ms": _spread(5), "ratio": _spread(6)}
        },
    }
    return {
        "coldstart": built,
        "coldstart_dev": _cold("3.11.7", api_ms=450, floor_ms=100),
        "meta": {"finished_at": "now", "machine": "x86_64", "python": "3.11.7", "seconds": 1},
    }


def test_the_main_table_shows_the_built_artefact_on_its_python() -> None:
    # Given results with the artefact and the dev tree figures / When the table is made
    table = rows(_results())
    # Then the cold start row is the artefact's, on 3.13, against its own floor
    assert table[0][0] == "cold start: ApiFunction (built, Python 3.13.0: import + first event)"
    assert (table[0][3], table[0][5]) == ("3.00x (3.00-3.00)", "met")
    assert not [row for row in table if "dev tree" in row[0]]


def test_results_md_says_what_was_imported_and_keeps_the_dev_tree_and_no_bytecode_tables() -> None:
    text = markdown(_results())
    assert "625 unchecked-hash cpython-313 .pyc files" in text
    assert "| ApiFunction | 300 ms (300-300) | 3.00x (3.00-3.00) | 600 ms (600-600) |" in text
    assert "cold start: ApiFunction (dev tree, Python 3.11.7: import + first event)" in text


def test_results_md_gives_each_functions_cpu_ratio_and_first_event_when_measured() -> None:
    # Given a function measured with its CPU time and a described first event
    results = _results()
    api = results["coldstart"]["functions"]["ApiFunction"]
    api["cpu_ratio"] = _spread(1.8)
    api["first_event"] = "POST /v1/images"
    # When RESULTS.md is made
    text = markdown(results)
    # Then its line says both
    assert "CPU 1.80x (1.80-1.80) the floor's" in text
    assert "First event: POST /v1/images." in text


def test_results_md_names_the_first_events_aws_calls_when_counted() -> None:
    # Given a function whose first event made three AWS calls
    results = _results()
    results["coldstart"]["functions"]["ApiFunction"]["aws_calls"] = {
        "calls": _spread(3),
        "ms": _spread(21.4),
        "operations": {"dynamodb.GetItem": 2, "sqs.SendMessage": 1},
    }
    # When RESULTS.md is made
    text = markdown(results)
    # Then the function's line says how many, how long, and which
    assert (
        "Its AWS calls: 3, in flight 21 ms (0.21x the floor): "
        "dynamodb.GetItem x2, sqs.SendMessage x1." in text
    )
