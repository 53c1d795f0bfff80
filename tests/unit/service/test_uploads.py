"""Upload slots (POST /v1/uploads): presigned PUTs under the caller's inputs, usable by submit."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from image_gateway.errors import PayloadTooLarge
from image_gateway.models.task import utc_now
from image_gateway.models.uploads import MAX_BATCH_FILE_BYTES, UploadRequest
from image_gateway.service.submit import submit_task
from image_gateway.service.uploads import plan_uploads
from pydantic import ValidationError

from tests.fakes import FakeDependencies
from tests.unit.service.conftest import DepsFactory
from tests.unit.service.support import drain, fox, png


def _request(*files: tuple[str, int]) -> UploadRequest:
    return UploadRequest.model_validate(
        {"files": [{"content_type": kind, "bytes": size} for kind, size in files]}
    )


def test_each_file_gets_a_slot_under_the_callers_inputs_in_order(deps: FakeDependencies) -> None:
    # GIVEN a PNG and a JPEG WHEN slots are asked for THEN each is a key under
    # inputs/{client}/uploads/{upload id}/ with its extension, named by an s3:// ref
    plan = plan_uploads(deps, _request(("image/png", 100), ("image/jpeg", 200)), client_id="c")

    refs = [slot.ref for slot in plan.uploads]
    assert plan.upload_id.startswith("upl_")
    assert refs == [
        f"s3://images/inputs/c/uploads/{plan.upload_id}/0.png",
        f"s3://images/inputs/c/uploads/{plan.upload_id}/1.jpg",
    ]


def test_a_slots_url_is_signed_for_its_type_and_size_for_fifteen_minutes(
    deps: FakeDependencies,
) -> None:
    plan = plan_uploads(deps, _request(("image/webp", 1234)), client_id="c")

    (slot,) = plan.uploads
    query = parse_qs(urlsplit(slot.url).query)
    assert (slot.method, slot.headers) == ("PUT", {"Content-Type": "image/webp"})
    assert query == {
        "content-type": ["image/webp"], "content-length": ["1234"], "expires_in": ["900"],
    }  # fmt: skip
    assert abs(slot.expires_at - (utc_now() + timedelta(seconds=900))) < timedelta(seconds=5)


def test_a_batch_file_gets_a_jsonl_slot_and_the_batch_file_limit(make_deps: DepsFactory) -> None:
    # GIVEN a stack whose image limit is 1 MB
    deps = make_deps(max_image_bytes=1_000_000)

    # WHEN a 20 MB JSONL file asks for a slot, and a file one byte over 50 MiB
    plan = plan_uploads(deps, _request(("application/x-ndjson", 20_000_000)), client_id="c")
    with pytest.raises(PayloadTooLarge) as caught:
        plan_uploads(
            deps, _request(("application/x-ndjson", MAX_BATCH_FILE_BYTES + 1)), client_id="c"
        )

    # THEN the first gets a .jsonl slot (the image limit is not its), the second none
    assert plan.uploads[0].ref.endswith("/0.jsonl")
    assert caught.value.code == "input_file_too_large"


def test_a_file_over_the_image_limit_gets_no_slot(deps: FakeDependencies) -> None:
    too_big = deps.settings.max_image_bytes + 1

    with pytest.raises(PayloadTooLarge) as caught:
        plan_uploads(deps, _request(("image/png", 10), ("image/png", too_big)), client_id="c")

    assert caught.value.code == "image_too_large"
    assert "files[1]" in caught.value.message


@pytest.mark.parametrize(
    "files",
    [[], [{"content_type": "image/gif", "bytes": 10}], [{"content_type": "image/png", "bytes": 0}],
     [{"content_type": "image/png", "bytes": 1}] * 18],
    ids=["none", "gif", "empty-file", "18-files"],
)  # fmt: skip
def test_a_request_outside_the_rules_is_refused_by_the_model(files: list[object]) -> None:
    with pytest.raises(ValidationError):
        UploadRequest.model_validate({"files": files})


def test_an_uploaded_file_is_accepted_by_submit_as_the_callers_own(
    deps: FakeDependencies,
) -> None:
    # GIVEN a slot the caller PUT a photo into
    (slot,) = plan_uploads(deps, _request(("image/png", 10)), client_id="c").uploads
    deps.images.objects[slot.ref.removeprefix("s3://images/")] = png(64, 64)

    # WHEN an edit names it
    task = submit_task(deps, fox(images=[slot.ref]), client_id="c").task

    # THEN the task keeps the ref and goes to a provider
    assert task.request.images == [slot.ref]
    drain(deps)
    assert deps.tasks.require(task.task_id).status.value == "submitted"
