"""The batch cost model (bench/batchcost.py): docs/batches.md holds what it gives now, it
follows the batch code's chunk and segment sizes and template.yaml's memory, and each part
counts what the code does."""

from __future__ import annotations

import copy

import pytest
from image_gateway.service.batch_input import INGEST_LINES
from image_gateway.service.batches import CHUNK_LINES

from bench import batchcost
from bench.batchcost import (
    SCENARIOS,
    Scenario,
    Sizes,
    counting_per_task,
    create_counts,
    current,
    ingest_counts,
    phases,
    render,
    sizes,
)
from bench.cost import price
from devstack.template import load_template


def test_the_table_in_docs_batches_is_current() -> None:
    assert current() == render(), "docs/batches.md is stale: python -m bench.batchcost"


def test_a_changed_assumption_changes_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a chunk assumed to take twice as long WHEN the table is made THEN it is not the page's
    monkeypatch.setitem(batchcost.SECONDS, "chunk", 5.0)
    assert render() != current()


def test_the_model_uses_the_batch_codes_chunk_and_segment_sizes() -> None:
    assert (batchcost.CHUNK_LINES, batchcost.INGEST_LINES) == (CHUNK_LINES, INGEST_LINES)


def test_lambda_memory_comes_from_the_template() -> None:
    # GIVEN the template with BatchFunction's memory doubled
    document = copy.deepcopy(load_template())
    memory = document["Resources"]["BatchFunction"]["Properties"]["MemorySize"]
    document["Resources"]["BatchFunction"]["Properties"]["MemorySize"] = memory * 2

    # THEN the model reads each function's, or the Globals' when it has none
    assert batchcost._memory_mb("BatchFunction") == memory
    assert batchcost._memory_mb("BatchFunction", document) == memory * 2
    assert (
        batchcost._memory_mb("ApiFunction") == load_template()["Globals"]["Function"]["MemorySize"]
    )


def test_each_counted_change_is_a_two_item_transaction_not_copied_to_the_listing_index() -> None:
    # GIVEN items under 1 KB: each transactional item 2 units; the listing index holds keys
    # only, which a counter's change does not touch
    small = counting_per_task(Sizes(batch=800, line=231, marker=109))
    # THEN three changes of (2 + 2) units, and two reads after the end
    assert (small.dynamodb_wru, small.dynamodb_rru) == (12.0, 2.0)

    # GIVEN a batch item of 1.5 KB (large metadata) THEN its writes cost twice as much
    large = counting_per_task(Sizes(batch=1_500, line=231, marker=109))
    assert large.dynamodb_wru == 3 * (2 + 2 * 2)


def test_the_real_items_are_sized_from_the_adapters_builders() -> None:
    # WHEN the model sizes a 1,000-line batch's items
    found = sizes(1_000, input_file=False)
    # THEN a line fits one write unit and the batch item too (the counters are on it)
    assert 100 < found.line <= 1024
    assert 300 < found.batch <= 1024
    assert found.marker < found.line


def test_an_inline_create_grows_with_its_lines_and_a_files_does_not() -> None:
    # GIVEN the same lines inline and as a file
    inline = Scenario("inline", 1_000, input_file=False)
    file = Scenario("file", 1_000, input_file=True)
    s = sizes(1_000, input_file=False)

    # THEN inline, the API validates and stores every line; for a file, the batch function
    inline_create, file_create = create_counts(inline, s), create_counts(file, s)
    assert inline_create.dynamodb_wru > 1_000 and file_create.dynamodb_wru < 10
    assert ingest_counts(inline, s).as_dict() == ingest_counts(Scenario("x", 1, False), s).as_dict()
    assert ingest_counts(file, s).dynamodb_wru > 1_000
    assert ingest_counts(file, s).s3_get_class == 1 + 1  # one segment, and the survey


def test_a_50000_line_file_is_read_in_ten_segments_and_made_in_a_thousand_chunks() -> None:
    (_, big) = SCENARIOS
    by_phase = phases(big)

    assert by_phase["ingest"].lambda_invocations == 10
    assert by_phase["chunks"].lambda_invocations == 1_000
    assert by_phase["finish"].eventbridge_events == 1
    assert by_phase["finish"].s3_put_class == 1  # results.jsonl


def test_the_overhead_per_line_is_a_fraction_of_a_cent() -> None:
    # WHEN each scenario is priced THEN its overhead is well under a tenth of a cent a line
    for scenario in SCENARIOS:
        total = sum(price(c).total for c in phases(scenario).values())
        assert 0 < total / scenario.lines < 0.0001


def test_each_sqs_message_is_sent_once_and_received_and_deleted_once() -> None:
    # GIVEN the 50,000-line file: 10 segment messages (the first sent by the create) and 1,000
    # chunk messages (sent by the last segment's commit)
    (_, big) = SCENARIOS
    by_phase = phases(big)

    # THEN the create sends 1; ingest receives and deletes 10, sends 9 and the 1,000 chunks;
    # the chunks receive and delete theirs
    assert by_phase["create"].sqs_requests == 1
    assert by_phase["ingest"].sqs_requests == 10 * 2 + 9 + 1_000
    assert by_phase["chunks"].sqs_requests == 1_000 * 2
