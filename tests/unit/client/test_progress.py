"""What the CLI prints while it waits: time-stamped lines, a live line on a terminal only."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from imagegw.models import TaskInfo
from imagegw.progress import CLEAR_LINE, Progress, seconds

from tests.unit.client.support import view

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def at(offset: float) -> str:
    return (T0 + timedelta(seconds=offset)).isoformat()


def snapshot(status: str, history: list[tuple[str, float]], **fields: object) -> TaskInfo:
    return TaskInfo.parse(
        view(
            status,
            created_at=at(0),
            submitted_at=at(0.1),
            expected_seconds=30.0,
            history=[{"status": s, "at": at(t), "by": "api"} for s, t in history],
            **fields,
        )
    )


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_status_change_and_failed_attempt_is_one_line_in_time_order() -> None:
    stream = io.StringIO()
    progress = Progress(stream, live=False)
    failed = {
        "provider": "apimart",
        "outcome": "failed",
        "at": at(0.05),
        "error": {"code": "provider_unavailable", "message": "503", "retryable": True},
    }
    submitted = {"provider": "mountsea-async", "outcome": "submitted", "at": at(0.1),
                 "provider_task_id": "ms-1"}  # fmt: skip

    progress.update(snapshot("submitted", [("submitted", 0.1)], attempts=[failed, submitted]))
    progress.update(
        snapshot("running", [("submitted", 0.1), ("running", 2)], attempts=[failed, submitted])
    )

    lines = [line.split("  ", 1)[1] for line in stream.getvalue().splitlines()]
    assert lines == [
        "created    tsk_1: generate 1024x1024",
        "attempt    #1 apimart failed: provider_unavailable (retryable: next provider)",
        "submitted  mountsea-async (poll), provider task ms-1, typically 30.0 s",
        "running    mountsea-async (poll)",
    ]
    assert CLEAR_LINE not in stream.getvalue()


def test_the_success_line_says_size_type_time_against_typical_and_cost() -> None:
    stream = io.StringIO()
    progress = Progress(stream, live=False)

    progress.update(
        snapshot("succeeded", [("submitted", 0.1), ("succeeded", 12)], cost_estimate_usd=0.04)
    )

    last = stream.getvalue().splitlines()[-1]
    assert last.endswith(
        "succeeded  1024x1024 image/png by mountsea-async in 1.0 s (typically 30.0 s), cost $0.040"
    )


def test_a_failure_line_gives_the_error_code() -> None:
    stream = io.StringIO()
    error = {"code": "provider_task_failed", "message": "generation failed"}

    Progress(stream, live=False).update(snapshot("failed", [("failed", 3)], error=error))

    assert (
        stream.getvalue()
        .splitlines()[-1]
        .endswith("failed     provider_task_failed: generation failed")
    )


def test_on_a_terminal_a_live_line_is_redrawn_under_the_lines() -> None:
    stream = io.StringIO()
    progress = Progress(stream, live=True)

    progress.update(snapshot("running", [("running", 1)]))
    progress.tick()

    text = stream.getvalue()
    assert text.count(CLEAR_LINE) == 1
    live = text.rsplit(CLEAR_LINE, 1)[1]
    assert "running · mountsea-async (poll) · " in live and "of ~30.0 s · attempt 1" in live
    progress.close()
    assert stream.getvalue().endswith(CLEAR_LINE)


def test_without_a_terminal_a_waiting_line_comes_every_heartbeat() -> None:
    stream = io.StringIO()
    clock = Clock()
    progress = Progress(stream, live=False, heartbeat=10, clock=clock)
    progress.update(snapshot("running", [("running", 1)]))
    before = len(stream.getvalue().splitlines())

    clock.now = 5
    progress.tick()
    clock.now = 10.5
    progress.tick()

    lines = stream.getvalue().splitlines()
    assert len(lines) == before + 1
    assert "waiting    running at mountsea-async (poll) for" in lines[-1]


def test_durations_read_as_people_write_them() -> None:
    assert [seconds(0.6), seconds(42), seconds(125), seconds(None)] == [
        "0.6 s", "42.0 s", "2 min 05 s", "-",
    ]  # fmt: skip
