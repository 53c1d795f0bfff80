"""Every provider through devstack: generate, edit with references, masked edit, each by its own
path (callback, poll loop, sync dispatch); fallback, moderation, size mapping, runtime config."""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any

import boto3
import httpx
import pytest
from PIL import Image, ImageDraw

from devstack.stack import DevStack, StackInfo
from tests.e2e.support import EventLog, download, open_image, submit, wait_terminal


def _data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


PHOTO = _data_url(Image.new("RGB", (640, 640), (30, 120, 200)))
SECOND = _data_url(Image.new("RGB", (400, 600), (220, 60, 40)))
_mask = Image.new("RGBA", (640, 640), (0, 0, 0, 255))
ImageDraw.Draw(_mask).ellipse((200, 200, 440, 440), fill=(0, 0, 0, 0))
MASK = _data_url(_mask)

# provider -> operation -> (request fields, expected path, expected produced size)
CASES: dict[str, dict[str, tuple[dict[str, Any], str, str]]] = {
    "apimart": {
        "generate": ({"aspect_ratio": "16:9", "resolution": "1K"}, "callback", "1536x864"),
        "edit": ({"aspect_ratio": "3:2", "images": [PHOTO, SECOND]}, "callback", "1536x1024"),
    },
    "mountsea-async": {
        "generate": ({"size": "1536x1024"}, "poll", "1536x1024"),
        "edit": ({"size": "1024x1536", "images": [PHOTO, SECOND]}, "poll", "1024x1536"),
        "masked-edit": (
            {"size": "1024x1024", "images": [PHOTO], "mask": MASK},
            "poll",
            "1024x1024",
        ),
    },
    "pmock": {
        "generate": ({"size": "1536x1024", "output_format": "webp"}, "poll", "1536x1024"),
        "edit": ({"size": "1024x1536", "images": [PHOTO, SECOND]}, "poll", "1024x1536"),
        "masked-edit": (
            {"size": "1024x1024", "images": [PHOTO], "mask": MASK},
            "poll",
            "1024x1024",
        ),
    },
    "apimodels": {
        "generate": ({"size": "1280x720", "quality": "low"}, "sync", "1280x720"),
        "edit": (
            {"aspect_ratio": "9:16", "resolution": "1K", "images": [PHOTO, SECOND]},
            "callback",
            "864x1536",
        ),
        "masked-edit": (
            {"size": "1024x1024", "quality": "low", "images": [PHOTO], "mask": MASK},
            "sync",
            "1024x1024",
        ),
    },
    "mountsea-compat": {
        "generate": ({"size": "1024x1536", "output_format": "jpeg"}, "sync", "1024x1536"),
        "edit": ({"size": "1536x1024", "images": [PHOTO, SECOND]}, "sync", "1536x1024"),
        "masked-edit": (
            {"size": "1024x1024", "images": [PHOTO], "mask": MASK},
            "sync",
            "1024x1024",
        ),
    },
    "openai": {
        "generate": ({"size": "1024x1024", "quality": "low"}, "sync", "1024x1024"),
        "edit": ({"size": "1536x1024", "images": [PHOTO, SECOND]}, "sync", "1536x1024"),
        "masked-edit": (
            {"size": "1024x1024", "images": [PHOTO], "mask": MASK},
            "sync",
            "1024x1024",
        ),
    },
}
PARAMS = [
    pytest.param(provider, operation, id=f"{provider}-{operation}")
    for provider, operations in CASES.items()
    for operation in operations
]


def _sim_requests(info: StackInfo) -> list[dict[str, Any]]:
    return list(httpx.get(f"{info.simulator_url}/_sim/requests").raise_for_status().json())


@pytest.mark.parametrize(("provider", "operation"), PARAMS)
def test_every_provider_completes_each_operation_by_its_own_path(
    api: httpx.Client, events: EventLog, provider: str, operation: str
) -> None:
    fields, path, produced = CASES[provider][operation]
    body = {"prompt": f"{operation} on {provider}", "provider": provider, **fields}

    created = submit(api, body)
    task = wait_terminal(api, created["task_id"], timeout=45)

    assert task["status"] == "succeeded", task["error"]
    assert (task["provider"], task["path"]) == (provider, path)
    assert task["operation"] == ("generate" if operation == "generate" else "edit")
    assert task["size_produced"] == produced
    last = task["attempts"][-1]  # closed with the outcome of the task, whatever the path
    assert (last["provider"], last["outcome"]) == (provider, "completed")
    image = open_image(download(task["outputs"][0]["url"]))  # a real decoder, not our sniffing
    assert f"{image.width}x{image.height}" == produced
    expected_format = {"jpeg": "JPEG", "webp": "WEBP"}.get(fields.get("output_format", ""), "PNG")
    assert image.format == expected_format
    event = events.wait_for(task["task_id"], "Image Task Succeeded")
    assert event["detail"]["outputs"][0]["sha256"] == task["outputs"][0]["sha256"]
    assert event["detail"]["cost_estimate_usd"] == task["cost_estimate_usd"]
    if provider == "apimodels":
        assert task["cost_estimate_usd"] is not None and task["cost_estimate_usd"] > 0
    else:
        assert task["cost_estimate_usd"] is None  # no published price for the others


def test_apimodels_prices_come_from_its_published_table(api: httpx.Client) -> None:
    # 1280x720 low: 1K low = $0.005; 2048x1152 high: 2K high = $0.10
    low = wait_terminal(
        api,
        submit(api, {"prompt": "p", "provider": "apimodels", "size": "1280x720", "quality": "low"})[
            "task_id"
        ],
    )
    high = wait_terminal(
        api,
        submit(
            api, {"prompt": "p", "provider": "apimodels", "size": "2048x1152", "quality": "high"}
        )["task_id"],
    )
    assert (low["cost_estimate_usd"], high["cost_estimate_usd"]) == (0.005, 0.1)
    assert high["size_produced"] == "2048x1152"


def test_apimart_refuses_a_masked_edit_before_any_spend(api: httpx.Client, info: StackInfo) -> None:
    before = len(_sim_requests(info))
    answer = api.post(
        "/v1/images",
        json={"prompt": "x", "provider": "apimart", "images": [PHOTO], "mask": MASK},
    )
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert (error["code"], error["provider"], error["field"]) == (
        "unsupported_by_provider",
        "apimart",
        "mask",
    )
    assert "apimart" in error["message"]
    assert len(_sim_requests(info)) == before  # nothing was sent to any provider


def test_pmock_requests_are_camel_case_and_polled_at_the_default_path(
    api: httpx.Client, info: StackInfo
) -> None:
    created = submit(
        api,
        {
            "prompt": "camel check",
            "provider": "pmock",
            "output_format": "jpeg",
            "output_compression": 70,
        },
    )
    wait_terminal(api, created["task_id"])
    requests = [r for r in _sim_requests(info) if r["provider"] == "pmock"]
    create = next(r for r in requests if (r["body"] or {}).get("prompt") == "camel check")
    assert create["path"] == "/pmock/api/ai/openai/images/generate"
    assert {"outputFormat": "jpeg", "outputCompression": 70}.items() <= create["body"].items()
    assert not {"output_format", "output_compression"} & set(create["body"])
    polls = [r for r in requests if r["path"] == "/pmock/api/ai/openai/tasks"]
    assert polls and all("taskId" in r["query"] for r in polls)


def test_sync_edits_are_multipart_with_every_reference_and_the_mask(
    api: httpx.Client, info: StackInfo
) -> None:
    created = submit(
        api,
        {
            "prompt": "multipart check",
            "provider": "mountsea-compat",
            "images": [PHOTO, SECOND],
            "mask": MASK,
            "size": "1024x1024",
        },
    )
    assert wait_terminal(api, created["task_id"])["status"] == "succeeded"
    edits = [
        r
        for r in _sim_requests(info)
        if r["path"] == "/mountsea/openai/v1/images/edits" and r["provider"] == "mountsea-compat"
    ]
    assert edits, "no multipart edit reached mountsea-compat"
    logged = json.dumps(edits[-1])
    assert "image[]" in logged and "mask" in logged


# -- fallback ----------------------------------------------------------------------------------
def test_an_async_provider_answering_503_falls_back_and_both_attempts_are_recorded(
    api: httpx.Client, events: EventLog
) -> None:
    created = submit(
        api, {"prompt": "fb [sim:create-503=apimart]", "providers": ["apimart", "pmock"]}
    )
    task = wait_terminal(api, created["task_id"])
    assert (task["status"], task["provider"], task["path"]) == ("succeeded", "pmock", "poll")
    assert [(a["provider"], a["outcome"]) for a in task["attempts"]] == [
        ("apimart", "failed"),
        ("pmock", "completed"),
    ]
    assert task["attempts"][0]["error"]["code"] == "provider_unavailable"
    events.wait_for(task["task_id"], "Image Task Succeeded")


def test_a_sync_provider_answering_503_falls_back_from_the_dispatch_function(
    api: httpx.Client, events: EventLog
) -> None:
    created = submit(
        api,
        {
            "prompt": "fb [sim:create-503=mountsea-compat]",
            "providers": ["mountsea-compat", "openai"],
        },
    )
    assert (created["status"], created["path"]) == ("queued", None)
    task = wait_terminal(api, created["task_id"])
    assert (task["status"], task["provider"], task["path"]) == ("succeeded", "openai", "sync")
    assert [(a["provider"], a["outcome"]) for a in task["attempts"]] == [
        ("mountsea-compat", "failed"),
        ("openai", "completed"),
    ]
    assert task["attempts"][0]["error"]["code"] == "provider_unavailable"
    events.wait_for(task["task_id"], "Image Task Succeeded")


def test_a_sync_failure_can_fall_back_to_an_async_provider(api: httpx.Client) -> None:
    created = submit(
        api, {"prompt": "fb [sim:create-503=openai]", "providers": ["openai", "mountsea-async"]}
    )
    task = wait_terminal(api, created["task_id"])
    assert (task["status"], task["provider"], task["path"]) == (
        "succeeded",
        "mountsea-async",
        "poll",
    )
    assert [a["outcome"] for a in task["attempts"]] == ["failed", "completed"]


@pytest.mark.parametrize("first", ["apimodels", "pmock", "openai"])
def test_a_moderation_refusal_on_the_first_provider_does_not_fall_back(
    api: httpx.Client, events: EventLog, first: str
) -> None:
    created = submit(
        api,
        {
            "prompt": f"bad [sim:moderation={first}]",
            "providers": [first, "mountsea-async"],
            "size": "1024x1024",
        },
    )
    task = wait_terminal(api, created["task_id"])
    assert task["status"] == "failed"
    assert task["error"]["code"] == "moderation_blocked"
    assert [a["provider"] for a in task["attempts"]] == [first]
    assert task["cost_estimate_usd"] == 0.0
    event = events.wait_for(task["task_id"], "Image Task Failed")
    assert event["detail"]["error"]["code"] == "moderation_blocked"
    assert event["detail"]["cost_estimate_usd"] == 0.0


# -- sizes -------------------------------------------------------------------------------------
def test_a_size_no_listed_provider_makes_is_refused_with_each_providers_sizes(
    api: httpx.Client,
) -> None:
    answer = api.post(
        "/v1/images",
        json={"prompt": "x", "size": "1920x1080", "providers": ["mountsea-async", "apimart"]},
    )
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "no_provider_can_honour"
    by_provider = {r["provider"]: r for r in error["refusals"]}
    assert set(by_provider) == {"mountsea-async", "apimart"}
    assert by_provider["mountsea-async"]["supported"] == [
        "auto",
        "1024x1024",
        "1024x1536",
        "1536x1024",
    ]
    assert by_provider["apimart"]["nearest"] == "16:9 @ 2k"


def test_the_exact_policy_skips_to_a_provider_that_makes_the_size(api: httpx.Client) -> None:
    created = submit(
        api, {"prompt": "x", "size": "1920x1088", "providers": ["mountsea-async", "apimodels"]}
    )
    task = wait_terminal(api, created["task_id"])
    assert (task["status"], task["provider"], task["size_produced"]) == (
        "succeeded",
        "apimodels",
        "1920x1088",
    )
    assert [a["provider"] for a in task["attempts"]] == ["apimodels"]


@pytest.mark.parametrize(
    ("provider", "size", "sent", "produced"),
    [
        ("mountsea-async", "1920x1080", "1536x1024", "1536x1024"),
        ("apimart", "1920x1080", "16:9 @ 2k", "2048x1152"),
        ("apimodels", "1920x1080", "1920x1088", "1920x1088"),
        ("openai", "800x1400", "1024x1536", "1024x1536"),
    ],
)
def test_the_nearest_policy_makes_the_documented_nearest_size_and_records_it(
    api: httpx.Client, provider: str, size: str, sent: str, produced: str
) -> None:
    created = submit(
        api, {"prompt": "x", "provider": provider, "size": size, "size_policy": "nearest"}
    )
    task = wait_terminal(api, created["task_id"])
    assert task["status"] == "succeeded", task["error"]
    assert (task["size_requested"], task["size_sent"], task["size_produced"]) == (
        size,
        sent,
        produced,
    )


# -- runtime configuration (the providers SSM parameter) ---------------------------------------
def test_providers_are_disabled_and_reordered_without_a_redeploy(
    api: httpx.Client, stack: DevStack
) -> None:
    ssm = boto3.client("ssm")
    name = "/imagegw-dev/providers"
    original = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    document = json.loads(original)
    try:
        ssm.put_parameter(
            Name=name,
            Value=json.dumps({**document, "order": ["pmock", "apimart"], "disabled": ["apimart"]}),
            Type="String",
            Overwrite=True,
        )
        time.sleep(60 * stack.config.time_scale + 0.5)  # the cache: 60 s x the time scale
        listing = api.get("/v1/providers").raise_for_status().json()
        assert listing["default_order"] == ["pmock", "apimart"]
        enabled = {p["name"]: p["enabled"] for p in listing["providers"]}
        assert (enabled["apimart"], enabled["pmock"]) == (False, True)
        task = submit(api, {"prompt": "default order"})
        assert task["provider"] == "pmock"
        refused = api.post("/v1/images", json={"prompt": "x", "provider": "apimart"})
        assert (refused.status_code, refused.json()["error"]["code"]) == (
            422,
            "no_provider_available",
        )
    finally:
        ssm.put_parameter(Name=name, Value=original, Type="String", Overwrite=True)
        time.sleep(60 * stack.config.time_scale + 0.5)


def test_the_providers_listing_shows_capabilities_and_prices(api: httpx.Client) -> None:
    listing = api.get("/v1/providers").raise_for_status().json()
    rows = {p["name"]: p for p in listing["providers"]}
    assert set(rows) == set(CASES)
    assert rows["apimart"]["capabilities"]["mask"] is False
    assert rows["apimart"]["capabilities"]["batch_poll"] is True
    assert rows["apimodels"]["capabilities"]["modes"] == ["async", "sync"]
    assert rows["apimodels"]["price"]["per_image"]["2K"]["high"] == 0.1
    assert rows["openai"]["default_rank"] is None


# -- batch polling -----------------------------------------------------------------------------
def test_late_apimart_tasks_are_read_with_one_batch_query(
    api: httpx.Client, info: StackInfo
) -> None:
    # Three tasks submitted within well under one sweep period (60 s x 0.02): at least two of
    # them are due in the same sweep, which reads them with POST /v1/tasks/batch.
    created = [
        submit(api, {"prompt": f"quiet {i} [sim:no-callback]", "provider": "apimart"})
        for i in range(3)
    ]
    tasks = [wait_terminal(api, c["task_id"], timeout=30) for c in created]
    assert all(t["status"] == "succeeded" for t in tasks)
    assert all(t["history"][-1]["by"] == "sweeper" for t in tasks)
    ours = {t["attempts"][-1]["provider_task_id"] for t in tasks}
    batches = [
        set(r["body"]["task_ids"])
        for r in _sim_requests(info)
        if r["path"] == "/apimart/v1/tasks/batch"
    ]
    assert any(len(batch & ours) >= 2 for batch in batches), batches
