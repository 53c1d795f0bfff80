"""The volume figure's rows: fairness, the ledger's write units and the client job, with targets."""

from __future__ import annotations

from typing import Any

from bench.report import volume_rows


def _spread(median: float) -> dict[str, float]:
    return {"median": median, "p25": median, "p75": median, "min": median, "max": median, "n": 1}


def _volume(*, beside_s: float, large_wru: float, failed: int) -> dict[str, Any]:
    return {
        "fairness": {
            "tasks_a": 1000,
            "tasks_b": 20,
            "b_alone_seconds": _spread(2.0),
            "b_beside_a_seconds": _spread(beside_s),
            "ratio": beside_s / 2.0,
            "target_ratio": 2.0,
            "statuses": {"succeeded": 1040},
            "met": beside_s / 2.0 <= 2.0,
        },
        "ledger": {
            "open_small": 10,
            "open_large": 1000,
            "at": {"10": {"wru": _spread(8.0)}, "1000": {"wru": _spread(large_wru)}},
            "ratio": large_wru / 8.0,
            "target_ratio": 1.1,
            "met": large_wru / 8.0 <= 1.1,
        },
        "client_job": {
            "images": 1000,
            "failed": failed,
            "seconds": 90.0,
            "threads": 8,
            "target_failed": 0,
            "met": failed == 0,
        },
    }


def test_a_fair_run_with_a_flat_ledger_meets_every_volume_target() -> None:
    # Given B as fast beside A as alone, the same write units at 1,000 open tasks, no failure
    rows = volume_rows(_volume(beside_s=3.0, large_wru=8.0, failed=0))
    # Then each of the three rows says its ratio and that it met its target
    assert [(r[3], r[5]) for r in rows] == [("1.50x", "met"), ("1.00x", "met"), ("-", "met")]
    assert rows[0][2] == "B alone 2.0 s (2.0-2.0)"


def test_a_slow_second_client_a_growing_ledger_and_failures_are_missed() -> None:
    # Given B three times slower, a ledger that grows, and failed jobs
    rows = volume_rows(_volume(beside_s=6.0, large_wru=12.0, failed=3))
    # Then each row is marked missed
    assert [r[5] for r in rows] == ["**missed**"] * 3
    assert rows[2][1] == "3 failed (90 s)"


def test_the_run_at_the_default_limit_is_shown_for_the_record_without_a_target() -> None:
    # Given the sized run (A's limit 8) met, and a run at the default limit 14 times slower
    volume = _volume(beside_s=3.0, large_wru=8.0, failed=0)
    volume["fairness"]["a_running_limit"] = 8
    at_default = {**volume["fairness"], "a_running_limit": None}
    at_default.update(b_beside_a_seconds=_spread(28.0), ratio=14.0, met=False)
    volume["fairness_default_limit"] = at_default
    # When the rows are made
    rows = volume_rows(volume)
    # Then the sized run carries the target and the default-limit run is only recorded
    assert "running limit 8" in rows[0][0] and (rows[0][3], rows[0][5]) == ("1.50x", "met")
    assert "the default running limit" in rows[1][0]
    assert (rows[1][3], rows[1][4], rows[1][5]) == ("14.00x", "for the record", "-")


def test_no_volume_figure_adds_no_row() -> None:
    # Given results without the volume figure / Then no row
    assert volume_rows(None) == []


def test_a_figure_rerun_alone_replaces_only_its_own_results_and_is_listed() -> None:
    # Given a full run's results and a re-run of the volume figure alone
    from bench.__main__ import merge_results

    full: dict[str, Any] = {
        "cost": {"x": 1},
        "volume": {"old": 1},
        "meta": {"finished_at": "day 1"},
    }
    earlier = {"figures": ["volume"], "finished_at": "day 1.5"}
    full["meta"]["reruns"] = [earlier]
    rerun = {
        "volume": {"new": 2},
        "caveats": ["c"],
        "meta": {"figures": ["volume"], "finished_at": "day 2"},
    }
    # When they are merged
    merged = merge_results(full, rerun)
    # Then the other figures and the full run's meta stay, and only the latest re-run is listed
    assert merged["cost"] == {"x": 1} and merged["volume"] == {"new": 2}
    assert merged["meta"]["finished_at"] == "day 1"
    assert merged["meta"]["reruns"] == [rerun["meta"]]


def test_issue_19s_checks_are_rows_with_their_targets() -> None:
    # Given a run with the burst, the inbox drop and the largest other item, one of them missed
    volume = _volume(beside_s=3.0, large_wru=8.0, failed=0)
    volume["burst"] = {
        "submits": 300,
        "threads": 16,
        "answers": {"202": 300},
        "statuses": {"succeeded": 300},
        "seconds": 160.0,
        "met": True,
    }
    volume["inbox_drop"] = {
        "photos": 150,
        "tasks": 150,
        "statuses": {"succeeded": 149, "expired": 1},
        "seconds": 90.0,
        "met": False,
    }
    volume["open_items"] = {
        "open_tasks": 400,
        "largest_other_bytes": 612,
        "largest_other_key": "LIMITS#a / COUNTS",
        "limit_bytes": 8192,
        "met": True,
    }
    # When the rows are made
    rows = volume_rows(volume)
    checks = {r[0].split(",")[0]: r for r in rows}
    # Then each says what it saw against its target
    burst = checks["volume: 300 submits of one client from 16 threads"]
    assert (burst[1], burst[5]) == ("300 x 202; 300 succeeded (160 s)", "met")
    drop = checks["volume: 150 photos dropped into the inbox at once"]
    assert (drop[1], drop[5]) == ("150 tasks: 1 expired, 149 succeeded (90 s)", "**missed**")
    items = checks["volume: largest item that is not a task"]
    assert (items[1], items[4], items[5]) == (
        "612 bytes (LIMITS#a / COUNTS)",
        "<= 8,192 bytes",
        "met",
    )
