"""``gw.upload_batch_file`` + ``gw.batch(input_file=...)``: over 1,000 requests go as a JSONL
file PUT to a presigned upload slot, then named by its ref (what ``imagegw batch`` does)."""

from __future__ import annotations

import json

import pytest
from imagegw import Gateway

from tests.unit.client.support import ScriptedGateway

SLOT_URL = "https://bucket.example/inputs/c/uploads/upl_1/0.jsonl?sig=abc"
REF = "s3://bucket/inputs/c/uploads/upl_1/0.jsonl"
BATCH = {
    "batch_id": "batch_1",
    "status": "validating",
    "counts": {"total": 0},
    "input_file": REF,
}


def test_requests_are_uploaded_as_jsonl_and_the_batch_names_the_file(
    gateway: Gateway, server: ScriptedGateway
) -> None:
    # GIVEN a gateway that gives an upload slot and accepts the batch
    slot = {"ref": REF, "url": SLOT_URL, "headers": {"Content-Type": "application/x-ndjson"}}
    server.on("POST /v1/uploads", (201, {"upload_id": "upl_1", "uploads": [slot]}))
    server.on("PUT https://bucket.example/inputs/c/uploads/upl_1/0.jsonl", (200, b""))
    server.on("POST /v1/batches", (202, BATCH))
    requests = [{"custom_id": f"sku-{n}", "body": {"prompt": f"mug {n}"}} for n in range(3)]

    # WHEN the requests are uploaded and sent as input_file
    ref = gateway.upload_batch_file(requests)
    batch = gateway.batch(input_file=ref, idempotency_key="k")

    # THEN the slot was asked for the file's exact size, the PUT carried one line per request,
    # and the batch names the file (no requests inline)
    (put,) = [r for r in server.requests if r.method == "PUT"]
    lines = [json.loads(x) for x in put.content.decode().splitlines()]
    assert lines == requests
    assert server.json_of("POST /v1/uploads") == {
        "files": [{"content_type": "application/x-ndjson", "bytes": len(put.content)}]
    }
    assert server.json_of("POST /v1/batches") == {"input_file": REF}
    assert batch.id == "batch_1"


def test_a_batch_takes_requests_or_a_file_not_both(gateway: Gateway) -> None:
    with pytest.raises(TypeError):
        gateway.batch([{"custom_id": "a", "body": {}}], input_file=REF)
