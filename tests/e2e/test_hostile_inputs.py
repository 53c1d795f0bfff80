"""Hostile requests through devstack: every malformed body, with and without a key.

Each body is posted once with a key and once without (one module fixture does all the posting),
by a client of its own, so that afterwards "nothing was written" is exact: that client has no
task, nothing under ``inputs/<client>/``, and no request the simulator received mentions the
run's marker or the client's inputs.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest
from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore

from devstack.stack import DevStack, StackInfo, wait_until
from tests.e2e.support import wait_terminal
from tests.hostile_images import png_bomb, png_header, real_png, truncated_png

MARK = f"hostile-{uuid.uuid4().hex[:10]}"
JSON = "application/json"


def _data_url(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


def _body(**fields: Any) -> bytes:
    return json.dumps({"prompt": f"{MARK} a lighthouse", **fields}).encode()


PHOTO = _data_url(real_png(64, 64))


@dataclass(frozen=True)
class Case:
    """A hostile request and the answer it must get with a valid key."""

    body: bytes
    status: int
    code: str
    content_type: str | None = JSON


CASES: dict[str, Case] = {
    # the crashes
    "invalid-utf8": Case(f'{{"prompt": "{MARK} \xff"}}'.encode("latin-1"), 400, "invalid_json"),
    "nested-100000-deep": Case(
        f'{{"prompt": "{MARK}", "x": '.encode() + b"[" * 100_000 + b"]" * 100_000 + b"}",
        400,
        "invalid_json",
    ),
    "integer-of-5000-digits": Case(
        f'{{"prompt": "{MARK}", "output_compression": '.encode() + b"7" * 5000 + b"}",
        400,
        "invalid_json",
    ),
    "multipart-without-boundary": Case(
        _body(), 415, "unsupported_media_type", "multipart/form-data"
    ),
    # media types
    "multipart-form": Case(
        b'--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n'
        + MARK.encode()
        + b"\r\n--b--\r\n",
        415,
        "unsupported_media_type",
        "multipart/form-data; boundary=b",
    ),
    "text-plain": Case(_body(), 415, "unsupported_media_type", "text/plain"),
    "form-urlencoded": Case(
        f"prompt={MARK}".encode(),
        415,
        "unsupported_media_type",
        "application/x-www-form-urlencoded",
    ),
    "no-content-type": Case(_body(), 415, "unsupported_media_type", None),
    "latin-1-json": Case(
        _body(), 415, "unsupported_media_type", "application/json; charset=latin-1"
    ),
    # bodies that are not a request object
    "empty": Case(b"", 400, "invalid_json"),
    "null": Case(b"null", 400, "invalid_json"),
    "a-list": Case(b"[" + _body() + b"]", 400, "invalid_json"),
    "not-json": Case(f"{{prompt: {MARK}".encode(), 400, "invalid_json"),
    "nan": Case(f'{{"prompt": "{MARK}", "output_compression": NaN}}'.encode(), 400, "invalid_json"),
    "unpaired-surrogate": Case(f'{{"prompt": "{MARK} \\ud800"}}'.encode(), 400, "invalid_json"),
    "over-6-mib": Case(_body(metadata={"x": "y" * 7_000_000}), 413, "body_too_large"),
    # fields
    "huge-prompt": Case(_body(prompt=MARK + "x" * 1_000_000), 400, "validation_error"),
    "wrong-types": Case(_body(images="x", n="1", metadata=[]), 400, "validation_error"),
    "unknown-fields": Case(_body(colour="red", __proto__={}), 400, "validation_error"),
    "bad-base64-characters": Case(
        _body(images=["data:image/png;base64,@@@@"]), 400, "validation_error"
    ),
    "bad-base64-padding": Case(
        _body(images=["data:image/png;base64,iVBORw0KG"]), 400, "invalid_image"
    ),
    # images
    "data-url-of-text": Case(
        _body(images=["data:image/png;base64," + base64.b64encode(b"hello").decode()]),
        400,
        "invalid_image",
    ),
    "png-bomb-40000x40000": Case(
        _body(images=[_data_url(png_bomb())]), 400, "image_too_many_pixels"
    ),
    "header-only-png": Case(_body(images=[_data_url(png_header(64, 64))]), 400, "invalid_image"),
    "truncated-png": Case(_body(images=[_data_url(truncated_png())]), 400, "invalid_image"),
    "mask-of-another-size": Case(
        _body(images=[PHOTO], mask=_data_url(real_png(32, 32))), 400, "mask_size_mismatch"
    ),
    "second-image-invalid": Case(_body(images=[PHOTO, _data_url(b"GIF89a")]), 400, "invalid_image"),
    "second-image-a-bomb": Case(
        _body(images=[PHOTO, _data_url(png_bomb())]), 400, "image_too_many_pixels"
    ),
}


@dataclass(frozen=True)
class Answers:
    """What the API answered each case, with and without a key, and who asked."""

    client_id: str
    with_key: dict[str, httpx.Response]
    without_key: dict[str, httpx.Response]


@pytest.fixture(scope="module")
def answers(info: StackInfo) -> Iterator[Answers]:
    """Post every case with a key of a fresh client, and without a key."""
    client_id = f"hostile-{uuid.uuid4().hex[:8]}"
    key = DynamoDBApiKeyStore(boto3.client("dynamodb"), info.table_name).create_key(client_id)
    with_key: dict[str, httpx.Response] = {}
    without_key: dict[str, httpx.Response] = {}
    with httpx.Client(base_url=info.api_url, timeout=60) as http:
        for name, case in CASES.items():
            headers = {} if case.content_type is None else {"Content-Type": case.content_type}
            for answers, extra in (
                (with_key, {"Authorization": f"Bearer {key}"}),
                (without_key, {}),
            ):
                answers[name] = http.post(
                    "/v1/images", content=case.body, headers={**headers, **extra}
                )
    yield Answers(client_id, with_key, without_key)


def test_no_hostile_body_gets_a_5xx(answers: Answers) -> None:
    statuses = {
        f"{name} ({who})": response.status_code
        for who, responses in (("key", answers.with_key), ("no key", answers.without_key))
        for name, response in responses.items()
    }

    assert {name: s for name, s in statuses.items() if s >= 500} == {}


@pytest.mark.parametrize("name", sorted(CASES))
def test_with_a_key_each_hostile_body_gets_its_4xx_and_stable_code(
    answers: Answers, name: str
) -> None:
    response = answers.with_key[name]
    body = response.json()

    assert set(body) == {"error"}, body
    assert (response.status_code, body["error"]["code"]) == (CASES[name].status, CASES[name].code)
    assert body["error"]["message"]


def test_without_a_key_every_body_gets_the_same_401_and_no_validation_detail(
    answers: Answers,
) -> None:
    bodies = {name: (r.status_code, r.text) for name, r in answers.without_key.items()}

    assert set(bodies.values()) == {(401, answers.without_key["empty"].text)}, (
        "a 401 must not depend on the body"
    )
    error = answers.without_key["empty"].json()["error"]
    assert (error["code"], set(error)) == ("unauthorized", {"code", "message"})


def test_nothing_was_written_stored_or_sent_for_any_hostile_body(
    answers: Answers, info: StackInfo
) -> None:
    # No task for the client (the API's own listing, which reads the table)
    with httpx.Client(base_url=info.api_url, timeout=30) as http:
        key = DynamoDBApiKeyStore(boto3.client("dynamodb"), info.table_name).create_key(
            answers.client_id
        )
        listed = http.get("/v1/tasks", headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200 and listed.json()["tasks"] == []
    # No object under its inputs/ (the first image of a refused edit was deleted again)
    prefix = f"inputs/{answers.client_id}/"
    stored = boto3.client("s3").list_objects_v2(Bucket=info.bucket_name, Prefix=prefix)
    assert stored.get("KeyCount", 0) == 0, [o["Key"] for o in stored.get("Contents", [])]
    # No request reached a provider
    journal = httpx.get(f"{info.simulator_url}/_sim/requests").raise_for_status().json()
    sent = [r for r in journal if MARK in json.dumps(r) or prefix in json.dumps(r)]
    assert sent == []


def test_the_checks_above_see_what_an_accepted_edit_writes(info: StackInfo) -> None:
    # GIVEN an edit the gate accepts (JSON in upper case, with a charset) from another client
    client_id = f"control-{uuid.uuid4().hex[:8]}"
    key = DynamoDBApiKeyStore(boto3.client("dynamodb"), info.table_name).create_key(client_id)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "APPLICATION/JSON; Charset=UTF-8"}
    body = _body(images=[PHOTO], mask=_data_url(real_png(64, 64)), provider="mountsea-async")
    with httpx.Client(base_url=info.api_url, headers=headers, timeout=60) as http:
        created = http.post("/v1/images", content=body)
        assert created.status_code == 202, created.text
        task = wait_terminal(http, created.json()["task_id"])
        # THEN the same three checks find its task, its inputs and its provider request
        assert [t["task_id"] for t in http.get("/v1/tasks").json()["tasks"]] == [task["task_id"]]
    assert task["status"] == "succeeded", task["error"]
    prefix = f"inputs/{client_id}/"
    stored = boto3.client("s3").list_objects_v2(Bucket=info.bucket_name, Prefix=prefix)
    assert stored.get("KeyCount", 0) == 2  # the image and its mask
    journal = httpx.get(f"{info.simulator_url}/_sim/requests").raise_for_status().json()
    assert [r for r in journal if prefix in json.dumps(r)]


def test_a_result_delivered_after_a_cancel_is_not_left_in_outputs(
    api: httpx.Client, info: StackInfo, stack: DevStack
) -> None:
    # GIVEN a versioned images bucket (so even a stored-then-deleted image leaves a version to
    # see), and a sync task whose provider call takes 3 s
    s3 = boto3.client("s3")
    s3.put_bucket_versioning(Bucket=info.bucket_name, VersioningConfiguration={"Status": "Enabled"})
    try:
        marker = f"slow {uuid.uuid4().hex[:8]} [sim:latency=3]"
        created = api.post(
            "/v1/images", json={"prompt": marker, "provider": "mountsea-compat"}
        ).json()
        task_id = created["task_id"]
        wait_until(
            lambda: api.get(f"/v1/tasks/{task_id}").json()["status"] == "running", timeout=15
        )
        # WHEN the client cancels while the provider draws, and the provider then answers
        assert api.post(f"/v1/tasks/{task_id}/cancel").status_code == 200

        def answered() -> bool:
            journal = httpx.get(f"{info.simulator_url}/_sim/requests").raise_for_status().json()
            return any(marker in json.dumps(r["body"]) and r.get("status") for r in journal)

        wait_until(answered, timeout=20)
        wait_until(lambda: stack.queue_idle("DispatchQueue"), timeout=20)

        # THEN the delivered image is dropped unstored (the dispatch sees the task ended): no
        # version of any object of the task was ever written, and the task stays cancelled
        listed = s3.list_object_versions(
            Bucket=info.bucket_name, Prefix=f"outputs/{info.client_id}/"
        )
        stored = [v["Key"] for v in listed.get("Versions", []) if task_id in v["Key"]]
        deleted = [m["Key"] for m in listed.get("DeleteMarkers", []) if task_id in m["Key"]]
        assert (stored, deleted) == ([], [])
        task = api.get(f"/v1/tasks/{task_id}").json()
        assert (task["status"], task["outputs"]) == ("cancelled", [])
    finally:
        s3.put_bucket_versioning(
            Bucket=info.bucket_name, VersioningConfiguration={"Status": "Suspended"}
        )


@pytest.mark.parametrize(
    "image",
    [truncated_png(), png_header(64, 64), real_png(64, 64) + b"\0" * 1_000_000],
    ids=["truncated", "header-only", "trailing-bytes"],
)
def test_a_bad_file_put_through_an_upload_slot_is_refused_at_submit_like_inline(
    api: httpx.Client, image: bytes
) -> None:
    # GIVEN the file PUT to an upload slot (S3 holds it only to its declared size and type)
    plan = api.post(
        "/v1/uploads", json={"files": [{"content_type": "image/png", "bytes": len(image)}]}
    )
    assert plan.status_code == 201, plan.text
    slot = plan.json()["uploads"][0]
    assert httpx.put(slot["url"], content=image, headers=slot["headers"]).status_code == 200

    # WHEN a request refers to it, and the same file is sent inline
    uploaded = api.post("/v1/images", json={"prompt": f"{MARK} a kite", "images": [slot["ref"]]})
    inline = api.post("/v1/images", json={"prompt": f"{MARK} a kite", "images": [_data_url(image)]})

    # THEN both are refused at submit with the same status and code
    assert (uploaded.status_code, uploaded.json()["error"]["code"]) == (400, "invalid_image")
    assert (inline.status_code, inline.json()["error"]["code"]) == (400, "invalid_image")
