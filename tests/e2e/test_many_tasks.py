"""Many tasks at once: ``GET /v1/tasks?ids=`` answers a hundred tasks in one call, and the
``imagegw`` client waiting on a hundred tasks reads them that way, never one by one."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import httpx
import pytest
from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore
from imagegw import Gateway

from devstack.stack import StackInfo

TASKS = 100


class CountingTransport(httpx.HTTPTransport):
    """The client's real transport, remembering each request's method and path."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return super().handle_request(request)

    def reads(self, path: str) -> list[httpx.Request]:
        return [r for r in self.sent if r.method == "GET" and r.url.path == path]


@pytest.fixture(scope="module")
def key(info: StackInfo) -> str:
    """A client of its own: its hundred tasks wait in nobody else's queue."""
    return DynamoDBApiKeyStore(boto3.client("dynamodb"), info.table_name).create_key("many")


@pytest.fixture(scope="module")
def transport() -> CountingTransport:
    return CountingTransport()


@pytest.fixture(scope="module")
def task_ids(info: StackInfo, key: str, transport: CountingTransport) -> Iterator[list[str]]:
    """A hundred generations of that client, submitted."""
    with Gateway(info.api_url, key, transport=transport) as gateway:
        yield [
            gateway.generate(f"a lighthouse, take {n}", provider="apimart", size="1024x1024").id
            for n in range(TASKS)
        ]


def test_a_hundred_ids_are_answered_in_one_call(
    info: StackInfo, key: str, task_ids: list[str]
) -> None:
    # GIVEN a client's hundred tasks
    # WHEN it asks for all of them in one call
    answer = httpx.get(
        f"{info.api_url}/v1/tasks",
        params={"ids": ",".join(task_ids)},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )

    # THEN all hundred come back in full, in the order asked
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [t["task_id"] for t in body["tasks"]] == task_ids
    assert body["not_found"] == []
    assert all("status" in t and "history" in t for t in body["tasks"])


def test_another_clients_ids_are_not_found(info: StackInfo, task_ids: list[str]) -> None:
    # GIVEN the demo client WHEN it asks for the other client's tasks THEN none is shown
    answer = httpx.get(
        f"{info.api_url}/v1/tasks",
        params={"ids": ",".join(task_ids[:3])},
        headers={"Authorization": f"Bearer {info.api_key}"},
        timeout=30,
    )

    assert answer.status_code == 200
    assert answer.json() == {"tasks": [], "not_found": task_ids[:3]}


def test_the_client_waits_on_a_hundred_tasks_with_batch_reads(
    info: StackInfo, key: str, task_ids: list[str], transport: CountingTransport
) -> None:
    # GIVEN the hundred tasks submitted
    # WHEN the client waits on all of them
    with Gateway(info.api_url, key, transport=transport) as gateway:
        done = gateway.wait_all(task_ids, timeout=240)

    # THEN every one succeeded, read only through GET /v1/tasks?ids= (one call per look)
    assert [t.task_id for t in done] == task_ids
    assert {t.status for t in done} == {"succeeded"}
    looks = transport.reads("/v1/tasks")
    assert looks and all(len(r.url.params["ids"].split(",")) <= TASKS for r in looks)
    assert not [r for r in transport.sent if r.url.path.startswith("/v1/tasks/")]
