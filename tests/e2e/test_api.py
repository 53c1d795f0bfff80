"""The client API over HTTP: auth, validation errors, ownership, listing, cancel, OpenAPI."""

from __future__ import annotations

import base64

import boto3
import httpx
import pytest
from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore as ApiKeyStore

from devstack.stack import StackInfo
from tests.e2e.support import submit, wait_terminal

PNG_1X1 = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
    "z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _error(answer: httpx.Response) -> dict:  # type: ignore[type-arg]
    body = answer.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x", "images": [PNG_1X1] * 17}, "images"),
        ({"prompt": "x", "size": "1024"}, "size"),
        ({"prompt": "x", "size": "9000x9000"}, "size"),
        ({"prompt": "x", "images": ["data:image/png;base64,@@@"]}, "images"),
        ({"prompt": "x", "images": ["http://example.com/a.png"]}, "images"),
        ({"prompt": "x", "colour": "blue"}, "colour"),
        ({"prompt": "x", "n": 11}, "n"),
        ({"prompt": "x", "quality": "ultra"}, "quality"),
    ],
    ids=[
        "missing-prompt", "empty-prompt", "17-images", "size-not-WxH", "size-too-big",
        "bad-data-url", "http-url", "unknown-field", "n-11", "bad-quality",
    ],
)  # fmt: skip
def test_a_bad_request_is_a_400_validation_error_naming_the_field(
    api: httpx.Client,
    body: dict,
    field: str,  # type: ignore[type-arg]
) -> None:
    answer = api.post("/v1/images", json=body)
    assert answer.status_code == 400
    error = _error(answer)
    assert error["code"] == "validation_error"
    assert any(f["field"].startswith(field) for f in error["fields"]), error
    assert field in error["message"]


def test_a_body_that_is_not_json_is_a_400(api: httpx.Client) -> None:
    answer = api.post(
        "/v1/images", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert _error(answer)["code"] == "invalid_json"


def test_a_data_url_that_is_not_an_image_is_a_400_invalid_image(api: httpx.Client) -> None:
    not_png = "data:image/png;base64," + base64.b64encode(b"hello, not an image").decode()
    answer = api.post("/v1/images", json={"prompt": "x", "images": [not_png]})
    assert answer.status_code == 400
    assert _error(answer)["code"] == "invalid_image"


def test_a_size_the_provider_cannot_make_is_a_422_listing_what_it_can(api: httpx.Client) -> None:
    answer = api.post(
        "/v1/images", json={"prompt": "x", "provider": "mountsea-async", "size": "2048x2048"}
    )
    assert answer.status_code == 422
    error = _error(answer)
    assert (error["code"], error["provider"], error["field"]) == (
        "unsupported_by_provider",
        "mountsea-async",
        "size",
    )
    assert "1024x1536" in error["supported"]


def test_an_unknown_provider_is_a_400(api: httpx.Client) -> None:
    answer = api.post("/v1/images", json={"prompt": "x", "provider": "nobody"})
    assert answer.status_code == 400
    assert _error(answer)["code"] == "unknown_provider"


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer itg_unknown", "Bearer"])
def test_a_request_without_a_valid_key_is_a_401(info: StackInfo, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    answer = httpx.get(f"{info.api_url}/v1/tasks", headers=headers)
    assert answer.status_code == 401
    assert _error(answer)["code"] == "unauthorized"


def test_an_unknown_task_is_a_404(api: httpx.Client) -> None:
    answer = api.get("/v1/tasks/tsk_doesnotexist")
    assert answer.status_code == 404
    assert _error(answer)["code"] == "task_not_found"


def test_another_clients_task_is_a_404_and_is_not_listed(
    api: httpx.Client, info: StackInfo
) -> None:
    # Given a task of the demo client and a second client with its own key
    mine = submit(api, {"prompt": "mine", "provider": "mountsea-async"})
    other_key = ApiKeyStore(boto3.client("dynamodb"), info.table_name).create_key("other")
    with httpx.Client(
        base_url=info.api_url, headers={"Authorization": f"Bearer {other_key}"}
    ) as other:
        # Then the other client can neither read, cancel nor list it
        assert other.get(f"/v1/tasks/{mine['task_id']}").status_code == 404
        assert other.post(f"/v1/tasks/{mine['task_id']}/cancel").status_code == 404
        assert other.get("/v1/tasks").json()["tasks"] == []
    wait_terminal(api, mine["task_id"])


def test_tasks_are_listed_newest_first_page_by_page(api: httpx.Client, info: StackInfo) -> None:
    key = ApiKeyStore(boto3.client("dynamodb"), info.table_name).create_key("lister")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=info.api_url, headers=headers, timeout=30) as client:
        ids = [
            submit(client, {"prompt": f"n{i}", "provider": "mountsea-async"})["task_id"]
            for i in range(3)
        ]
        first = client.get("/v1/tasks", params={"limit": 2}).json()
        second = client.get("/v1/tasks", params={"limit": 2, "cursor": first["next_cursor"]}).json()
        assert [t["task_id"] for t in first["tasks"] + second["tasks"]] == ids[::-1]
        assert client.get("/v1/tasks", params={"limit": 0}).status_code == 400
        assert client.get("/v1/tasks", params={"cursor": "garbage"}).status_code == 400
        for task_id in ids:
            wait_terminal(client, task_id)


def test_a_running_task_can_be_cancelled_once(api: httpx.Client) -> None:
    created = submit(api, {"prompt": "slow [sim:never]", "provider": "mountsea-async"})
    cancelled = api.post(f"/v1/tasks/{created['task_id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = api.post(f"/v1/tasks/{created['task_id']}/cancel")
    assert again.status_code == 409
    assert _error(again)["code"] == "task_not_cancellable"


def test_the_same_idempotency_key_gives_the_same_task(api: httpx.Client) -> None:
    body = {"prompt": "once", "provider": "mountsea-async"}
    first = api.post("/v1/images", json=body, headers={"Idempotency-Key": "order-7"})
    again = api.post("/v1/images", json=body, headers={"Idempotency-Key": "order-7"})
    other = api.post(
        "/v1/images", json={**body, "prompt": "twice"}, headers={"Idempotency-Key": "order-7"}
    )
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["task_id"] == first.json()["task_id"]
    assert other.status_code == 409
    assert _error(other)["code"] == "idempotency_key_reused"
    wait_terminal(api, first.json()["task_id"])


def test_the_api_serves_its_openapi_document(info: StackInfo) -> None:
    document = httpx.get(f"{info.api_url}/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert {"/v1/images", "/v1/tasks", "/v1/tasks/{task_id}"} <= set(document["paths"])
    schema = document["components"]["schemas"]["ImageRequest"]
    assert "prompt" in schema["required"]


def test_an_unknown_route_is_a_404(api: httpx.Client) -> None:
    assert api.get("/v2/nothing").status_code == 404
