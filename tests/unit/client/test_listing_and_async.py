"""Listing every page, providers, and the asyncio twin of the client."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from imagegw import Gateway
from imagegw.aio import AsyncGateway

from tests.unit.client.support import IMAGE, KEY, URL, FakeClock, ScriptedGateway, view

ROW_FIELDS = ("task_id", "status", "operation", "provider", "created_at", "finished_at")


def row(task_id: str) -> dict[str, object]:
    return {key: view("succeeded", task_id=task_id)[key] for key in ROW_FIELDS}


def test_tasks_iterates_every_page_newest_first(gateway: Gateway, server: ScriptedGateway) -> None:
    server.on(
        "GET /v1/tasks",
        {"tasks": [row("tsk_3"), row("tsk_2")], "next_cursor": "c1"},
        {"tasks": [row("tsk_1")], "next_cursor": None},
    )

    ids = [t.task_id for t in gateway.tasks(page_size=2)]

    assert ids == ["tsk_3", "tsk_2", "tsk_1"]
    assert [r.url.params.get("cursor") for r in server.sent("GET /v1/tasks")] == [None, "c1"]


def test_tasks_stops_at_the_limit(gateway: Gateway, server: ScriptedGateway) -> None:
    server.on("GET /v1/tasks", {"tasks": [row("tsk_3"), row("tsk_2")], "next_cursor": "c1"})

    assert [t.task_id for t in gateway.tasks(limit=1)] == ["tsk_3"]


def test_providers_are_read_with_their_capabilities(
    gateway: Gateway, server: ScriptedGateway
) -> None:
    server.on(
        "GET /v1/providers",
        {"default_order": ["apimart"], "providers": [
            {"name": "apimart", "enabled": True, "default_rank": 1,
             "capabilities": {"modes": ["async"], "callback": True}, "price": None,
             "health": {"state": "open", "until": "2026-12-01T12:02:40.929000Z",
                        "recent_calls": 5, "success_rate": 0.4}}]},
    )  # fmt: skip

    (apimart,) = gateway.providers()

    assert (apimart.name, apimart.enabled, apimart.capabilities["callback"]) == (
        "apimart", True, True,
    )  # fmt: skip
    assert apimart.breaker == "open until 12:02:40"


def test_the_async_client_submits_waits_and_downloads(tmp_path: Path) -> None:
    server = ScriptedGateway()
    server.on("POST /v1/images", (202, view("queued")))
    server.on("GET /v1/tasks/tsk_1", view("running"), view("succeeded"))
    server.on("GET https://bucket.example/outputs/demo/1.png", (200, IMAGE))
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.sleep(seconds)

    async def run() -> tuple[list[str], Path]:
        seen: list[str] = []
        async with AsyncGateway(
            URL, KEY, transport=httpx.MockTransport(server), sleep=sleep, clock=clock
        ) as gateway:
            task = await gateway.generate("a fox", size="1024x1024")
            await task.wait(on_update=lambda t: seen.append(t.status))
            return seen, await task.download(tmp_path)

    seen, path = asyncio.run(run())

    assert seen == ["queued", "running", "succeeded"]
    assert path.read_bytes() == IMAGE
    assert server.json_of("POST /v1/images") == {"prompt": "a fox", "size": "1024x1024"}
