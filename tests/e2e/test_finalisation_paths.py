"""Both finalisation paths, end to end: HTTP API -> provider simulator -> S3 -> EventBridge."""

from __future__ import annotations

import hashlib

import boto3
import httpx
import pytest

from devstack.demo import demo_inputs
from devstack.stack import StackInfo
from tests.e2e.support import EventLog, download, open_image, submit, wait_terminal


def test_text_to_image_on_apimart_is_finished_by_its_callback(
    api: httpx.Client, events: EventLog
) -> None:
    # Given a 16:9 1K text-to-image request pinned to apimart (a callback provider)
    body = {
        "prompt": "a lighthouse at dawn",
        "provider": "apimart",
        "aspect_ratio": "16:9",
        "resolution": "1K",
        "metadata": {"order": "42"},
    }
    # When it is submitted and runs to the end
    created = submit(api, body)
    task = wait_terminal(api, created["task_id"])
    # Then the callback finished it, and the image in S3 is a real 1536x864 PNG
    assert task["status"] == "succeeded"
    assert [h["status"] for h in task["history"]][-1] == "succeeded"
    assert task["history"][-1]["by"] == "callback"
    output = task["outputs"][0]
    data = download(output["url"])
    assert open_image(data).size == (1536, 864) == (output["width"], output["height"])
    assert output["content_type"] == "image/png"
    assert output["bytes"] == len(data)
    assert output["sha256"] == hashlib.sha256(data).hexdigest()
    assert output["key"].startswith("outputs/demo/")
    # And the subscriber received Submitted then Succeeded, with the S3 location and metadata
    done = events.wait_for(task["task_id"], "Image Task Succeeded")
    assert done["detail"]["outputs"][0]["key"] == output["key"]
    assert done["detail"]["metadata"] == {"order": "42"}
    assert done["detail"]["event_id"] == f"{task['task_id']}:succeeded"
    events.wait_for(task["task_id"], "Image Task Submitted")


def test_masked_edit_on_mountsea_is_finished_by_the_poll_loop(
    api: httpx.Client, events: EventLog, info: StackInfo
) -> None:
    # Given a masked edit (transparent disc in the middle) pinned to mountsea-async (no callback)
    image, mask = demo_inputs()
    created = submit(
        api,
        {
            "prompt": "a moon",
            "provider": "mountsea-async",
            "size": "1024x1024",
            "images": [image],
            "mask": mask,
        },
    )
    # When it runs to the end
    task = wait_terminal(api, created["task_id"])
    # Then the poll loop, a Step Functions execution named after the task, finished it
    assert task["status"] == "succeeded"
    assert task["history"][-1]["by"] == "poll"
    sfn = boto3.client("stepfunctions")
    execution_arn = info.state_machine_arn.replace(":stateMachine:", ":execution:") + (
        f":{task['task_id']}"
    )
    assert sfn.describe_execution(executionArn=execution_arn)["status"] in ("RUNNING", "SUCCEEDED")
    # And only the masked disc was repainted: the corners still match the input photo
    result = open_image(download(task["outputs"][0]["url"])).convert("RGB")
    source = open_image(__import__("base64").b64decode(image.split(",", 1)[1])).convert("RGB")
    assert result.size == (1024, 1024)
    assert result.getpixel((5, 5)) == source.getpixel((5, 5))
    assert result.getpixel((512, 512)) != source.getpixel((512, 512))
    events.wait_for(task["task_id"], "Image Task Succeeded")


def test_the_input_images_were_staged_in_s3_not_stored_in_the_task(
    api: httpx.Client, info: StackInfo
) -> None:
    # Given an edit sent with a data URL
    image, _ = demo_inputs()
    created = submit(api, {"prompt": "tint it", "provider": "mountsea-async", "images": [image]})
    # Then the stored input is an S3 object under inputs/<client>/<task>/
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(
        Bucket=info.bucket_name, Prefix=f"inputs/demo/{created['task_id']}/"
    )
    assert [o["Key"].rsplit("/", 1)[-1] for o in listed.get("Contents", [])] == ["0.png"]
    wait_terminal(api, created["task_id"])


def test_a_base64_jpeg_result_is_stored_as_jpeg(api: httpx.Client) -> None:
    created = submit(
        api,
        {
            "prompt": "a red fox",
            "provider": "mountsea-async",
            "size": "1536x1024",
            "output_format": "jpeg",
            "output_compression": 80,
        },
    )
    task = wait_terminal(api, created["task_id"])
    output = task["outputs"][0]
    assert (output["content_type"], output["width"], output["height"]) == ("image/jpeg", 1536, 1024)
    assert output["key"].endswith(".jpg")
    assert open_image(download(output["url"])).format == "JPEG"


@pytest.mark.parametrize("url_shape", ["list", "string"])
def test_a_url_result_is_mirrored_whether_url_is_a_list_or_a_string(
    api: httpx.Client, url_shape: str
) -> None:
    marker = " [sim:url-string]" if url_shape == "string" else ""
    created = submit(api, {"prompt": "a castle" + marker, "provider": "apimart"})
    task = wait_terminal(api, created["task_id"])
    assert task["status"] == "succeeded"
    assert open_image(download(task["outputs"][0]["url"])).size == (1024, 1024)


def test_a_4k_result_is_streamed_into_s3(api: httpx.Client) -> None:
    # Given a 4K 16:9 request whose result is a large, noisy PNG (multipart upload territory)
    created = submit(
        api,
        {
            "prompt": "static [sim:noise]",
            "provider": "apimart",
            "aspect_ratio": "16:9",
            "resolution": "4K",
        },
    )
    # When it finishes
    task = wait_terminal(api, created["task_id"], timeout=60)
    # Then the stored image is the real 3840x2160 picture, byte for byte
    output = task["outputs"][0]
    data = download(output["url"])
    assert (output["width"], output["height"]) == (3840, 2160)
    assert output["bytes"] == len(data) > 8 * 1024 * 1024
    assert output["sha256"] == hashlib.sha256(data).hexdigest()
    assert open_image(data).size == (3840, 2160)


def test_a_callback_that_never_comes_is_covered_by_the_sweeper(api: httpx.Client) -> None:
    created = submit(api, {"prompt": "quiet [sim:no-callback]", "provider": "apimart"})
    task = wait_terminal(api, created["task_id"])
    assert task["status"] == "succeeded"
    assert task["history"][-1]["by"] == "sweeper"


@pytest.mark.parametrize(
    ("provider", "finisher"),
    [("mountsea-async", "poll"), ("apimart", "callback"), ("mountsea-compat", "dispatch")],
)
def test_a_finished_task_closes_its_attempt_and_says_what_finished_it(
    api: httpx.Client, provider: str, finisher: str
) -> None:
    # GIVEN a task on a provider of each finish path WHEN it succeeds
    prompt = f"a quiet harbour at night, by {provider}"
    body = {"prompt": prompt, "provider": provider, "quality": "low", "output_format": "png"}
    task = wait_terminal(api, submit(api, body)["task_id"])

    # THEN its last attempt is completed with its end time, the view names the path that
    # finished it, and carries what was asked
    assert task["status"] == "succeeded"
    last = task["attempts"][-1]
    assert (last["provider"], last["outcome"]) == (provider, "completed")
    assert last["finished_at"] is not None
    assert task["finished_by"] == finisher
    assert (task["prompt"], task["quality"], task["output_format"]) == (prompt, "low", "png")
