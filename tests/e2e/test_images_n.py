"""``n`` from 1 to 10 on devstack: n provider calls in parallel, n outputs on one task.

A task of n images is a parent of n part tasks (one image each, own routing and fallback); the
client sees the parent alone: its outputs, its events, its place in the listing.
"""

from __future__ import annotations

import uuid
from base64 import b64decode
from collections.abc import Iterator

import boto3
import httpx
import openai
import pytest

from devstack.stack import StackInfo
from tests.e2e.support import EventLog, download, open_image, submit, wait_terminal


@pytest.fixture(scope="module")
def client(info: StackInfo) -> Iterator[openai.OpenAI]:
    """The official SDK, unchanged (no SDK retries)."""
    with openai.OpenAI(
        base_url=info.openai_base_url, api_key=info.api_key, max_retries=0, timeout=90
    ) as sdk:
        yield sdk


def test_the_openai_sdk_asking_for_three_images_gets_three_of_the_size_asked(
    client: openai.OpenAI, api: httpx.Client
) -> None:
    # WHEN the SDK asks for 3 images of 1024x1536
    raw = client.images.with_raw_response.generate(
        model="gpt-image-2", prompt="three lighthouses", n=3, size="1024x1536"
    )
    result = raw.parse()

    # THEN data holds 3 images, each of that size, and one task holds them
    assert result.data is not None and len(result.data) == 3
    images = [b64decode(i.b64_json) if i.b64_json else download(i.url or "") for i in result.data]
    assert [open_image(image).size for image in images] == [(1024, 1536)] * 3
    task = api.get(f"/v1/tasks/{raw.headers['x-task-id']}").raise_for_status().json()
    assert (task["status"], task["n"], len(task["outputs"])) == ("succeeded", 3, 3)
    assert len({o["key"] for o in task["outputs"]}) == 3  # three provider calls, three objects


def test_four_images_end_as_four_outputs_in_s3_on_one_task_with_one_event(
    api: httpx.Client, info: StackInfo, events: EventLog
) -> None:
    # WHEN 4 images are asked for on POST /v1/images
    created = submit(api, {"prompt": "four foxes", "n": 4, "size": "1024x1024"})
    task = wait_terminal(api, created["task_id"], timeout=60)

    # THEN the task succeeded with 4 distinct outputs, stored in S3 under its own id
    assert (task["status"], task["error"]) == ("succeeded", None)
    keys = [o["key"] for o in task["outputs"]]
    assert len(set(keys)) == 4
    assert [k.rsplit("/", 2)[1:] for k in keys] == [[task["task_id"], f"{i}.png"] for i in range(4)]
    s3 = boto3.client("s3")
    assert all(s3.head_object(Bucket=info.bucket_name, Key=k)["ContentLength"] > 0 for k in keys)
    # AND one Succeeded event names all 4; the parts are neither announced nor listed
    event = events.wait_for(task["task_id"], "Image Task Succeeded")
    assert [o["key"] for o in event["detail"]["outputs"]] == keys
    assert events.for_task(task["parts"][0]["task_id"]) == []
    listed = api.get("/v1/tasks", params={"limit": 50}).raise_for_status().json()["tasks"]
    ids = [t["task_id"] for t in listed]
    assert task["task_id"] in ids and not {p["task_id"] for p in task["parts"]} & set(ids)


def test_one_image_failing_at_every_provider_leaves_the_others_and_says_one_of_three(
    api: httpx.Client,
) -> None:
    # GIVEN a prompt whose first create at each provider answers 503 (one part fails at both)
    prompt = f"three owls [sim:first-creates-503=1] {uuid.uuid4().hex}"

    # WHEN 3 images are asked for, with a fallback provider
    body = {"prompt": prompt, "n": 3, "providers": ["apimart", "mountsea-async"]}
    task = wait_terminal(api, submit(api, body)["task_id"], timeout=60)

    # THEN the task succeeded with the 2 images made, and says the third failed and why
    assert task["status"] == "succeeded" and len(task["outputs"]) == 2
    assert task["error"]["code"] == "partial_failure"
    assert task["error"]["message"].startswith("1 of 3 images failed (2 made)")
    failed = [p for p in task["parts"] if p["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["provider"] == "mountsea-async"
    part = api.get(f"/v1/tasks/{failed[0]['task_id']}").raise_for_status().json()
    assert [a["provider"] for a in part["attempts"]] == ["apimart", "mountsea-async"]


def test_the_openai_sdk_gets_the_images_made_when_one_of_three_fails_everywhere(
    client: openai.OpenAI,
) -> None:
    # GIVEN a prompt whose first create at each provider answers 503 (one part fails at both)
    prompt = f"three herons [sim:first-creates-503=1] {uuid.uuid4().hex}"

    # WHEN the SDK asks for 3 images with a fallback provider
    raw = client.images.with_raw_response.generate(
        model="gpt-image-2",
        prompt=prompt,
        n=3,
        size="1024x1024",
        extra_body={"providers": ["apimart", "mountsea-async"]},
    )

    # THEN the answer is a 200 with the 2 images made, and says one failed
    assert len(raw.parse().data or []) == 2
    assert raw.headers["x-images-failed"] == "1"
