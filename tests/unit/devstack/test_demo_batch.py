"""The demo's batch step: what it sends and the lines it prints about the finished batch."""

from __future__ import annotations

from pathlib import Path

from imagegw.batch import BatchInfo, DownloadSummary

from devstack.demo_batch import BATCH_LINES, finished_line, results_location, saved_line


def _info(**counts: int) -> BatchInfo:
    return BatchInfo.parse(
        {
            "batch_id": "batch_1",
            "status": "completed",
            "counts": {"total": 3, **counts},
            "final_cost_usd": 0.125,
            "results_url": None,
        }
    )


def test_the_demo_batch_has_three_sizes_and_a_line_asking_for_two_images() -> None:
    # Given the demo's batch THEN each line has its own size, and one asks for n=2
    sizes = {line["body"]["size"] for line in BATCH_LINES}
    assert len(BATCH_LINES) == 3
    assert len(sizes) == 3
    assert [line["body"].get("n", 1) for line in BATCH_LINES].count(2) == 1


def test_the_results_file_is_named_by_its_bucket_and_key() -> None:
    # Given a path-style presigned URL of the results file, as devstack's moto signs it
    url = (
        "http://127.0.0.1:5000/images-bucket/batches/demo/batch_1/results.jsonl"
        "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc"
    )
    # WHEN it is named THEN s3://bucket/key, the signature left out
    assert (
        results_location(url, "images-bucket")
        == "s3://images-bucket/batches/demo/batch_1/results.jsonl"
    )
    assert results_location(None, "images-bucket") == "-"


def test_the_finished_line_gives_status_counts_cost_and_time() -> None:
    # Given a completed batch of three with one failed line
    line = finished_line(_info(succeeded=2, failed=1), 4.25)
    # THEN one line says all of it
    assert line == (
        "batch: batch_1 completed in 4.2 s: 2 of 3 lines succeeded, 1 failed, 0 invalid, "
        "0 cancelled or expired; cost $0.125"
    )


def test_the_saved_line_names_every_image_saved_or_kept() -> None:
    # Given two images saved now and one kept from an earlier run
    summary = DownloadSummary(
        saved=[Path("out/mug-red.png"), Path("out/mug-pair-1.png")], kept=[Path("out/a.png")]
    )
    # THEN the line counts and names all three
    assert saved_line(summary, Path("demo-output/batch")) == (
        "batch: 3 images in demo-output/batch/: mug-red.png, mug-pair-1.png, a.png"
    )
