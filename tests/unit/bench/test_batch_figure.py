"""The batch figure (bench/batchrun.py): its lines, what it reads from the two runs of
``imagegw batch --json``, and its rows of the results table."""

from __future__ import annotations

from typing import Any

from bench.batchrun import catalogue, report_rows, summarise
from bench.report import rows


def _run(
    seconds: float, *, saved: int, kept: int, code: int = 0, succeeded: int = 4
) -> tuple[float, int, dict[str, Any]]:
    """One run's seconds, exit code and JSON document, as ``imagegw batch --json`` prints it."""
    batch = {
        "batch_id": "batch_1",
        "status": "completed",
        "counts": {"total": 4, "succeeded": succeeded},
        "input_file": "s3://b/inputs/c/uploads/upl_1/0.jsonl",
    }
    return (
        seconds,
        code,
        {
            "batch": batch,
            "saved": [f"out/sku-{i}.png" for i in range(saved)],
            "kept": [f"out/sku-{i}.png" for i in range(kept)],
            "failed": [],
        },
    )


def test_the_catalogue_has_unique_ids_and_three_sizes() -> None:
    lines = catalogue(9)
    assert len({line["custom_id"] for line in lines}) == 9
    assert {line["body"]["size"] for line in lines} == {"1024x1024", "1536x1024", "1024x1536"}


def test_every_image_saved_then_all_kept_meets_the_target() -> None:
    # GIVEN a first run that saved all 4 images, and a second that kept all 4
    fig = summarise(4, _run(8.0, saved=4, kept=0), _run(0.5, saved=0, kept=4))

    # THEN both targets are met, and the rows say so with the times
    assert fig["all_saved"] and fig["resumed_downloads_nothing"] and fig["met"]
    assert fig["lines_per_second"] == 0.5 and fig["input_file"]
    first, resumed = report_rows(fig)
    assert first[1] == "8 s (0.5 lines/s), 4 images saved"
    assert first[0].startswith("batch: 4-line JSONL through `imagegw batch` on devstack")
    assert "input_file" in first[0] and first[5] == "met"
    assert resumed[1] == "0.5 s, 0 downloaded, 4 kept" and resumed[5] == "met"


def test_a_resumed_run_that_downloads_again_misses_its_target() -> None:
    # GIVEN a second run that downloaded one image again
    fig = summarise(4, _run(8.0, saved=4, kept=0), _run(0.9, saved=1, kept=3))

    # THEN the first target is met, the resume's is missed
    assert fig["all_saved"] and not fig["resumed_downloads_nothing"] and not fig["met"]
    assert [r[5] for r in report_rows(fig)] == ["met", "**missed**"]


def test_a_line_without_an_image_misses_the_first_target() -> None:
    # GIVEN a batch with 3 of 4 lines succeeded (the command exits 1)
    fig = summarise(4, _run(8.0, saved=3, kept=0, code=1, succeeded=3), _run(0.5, saved=0, kept=3))

    # THEN neither target is met
    assert not fig["all_saved"] and not fig["resumed_downloads_nothing"]
    assert [r[5] for r in report_rows(fig)] == ["**missed**", "**missed**"]


def test_the_results_table_has_the_figures_rows_when_the_run_has_it() -> None:
    fig = summarise(4, _run(8.0, saved=4, kept=0), _run(0.5, saved=0, kept=4))
    assert rows({"batch": fig})[-2:] == report_rows(fig)
    assert rows({}) == []
