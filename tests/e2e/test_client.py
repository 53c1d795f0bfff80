"""The Python client against devstack: wait() and download() on every finishing path, uploads
for edits too big for a request body, listing every page, the asyncio flavour, errors."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from imagegw import BadRequest, Conflict, Gateway, TaskInfo
from imagegw.aio import AsyncGateway
from PIL import Image

from devstack.stack import StackInfo
from tests.e2e.support import open_image


@pytest.fixture
def gateway(info: StackInfo) -> Iterator[Gateway]:
    """The sync client, as the demo client."""
    with Gateway(info.api_url, info.api_key) as client:
        yield client


@pytest.mark.parametrize(
    ("provider", "path", "options"),
    [
        ("apimart", "callback", {"aspect_ratio": "16:9", "resolution": "1K"}),
        ("mountsea-async", "poll", {"size": "1024x1536", "quality": "low"}),
        ("mountsea-compat", "sync", {"size": "1536x1024"}),
    ],
)
def test_wait_and_download_work_on_every_finishing_path(
    gateway: Gateway, tmp_path: Path, provider: str, path: str, options: dict[str, str]
) -> None:
    # Given a generation on a provider that finishes by callback, poll loop or sync call
    task = gateway.generate("a red bicycle", provider=provider, **options)
    seen: list[TaskInfo] = []

    # When the caller waits and downloads
    info = task.wait(timeout=60, on_update=seen.append)
    saved = task.download(tmp_path)

    # Then it saw the task open then succeeded, with the provider's typical time
    assert seen[0].status in ("queued", "submitted", "running")
    assert info.status == "succeeded" and info.path == path
    assert info.expected_seconds is not None and info.expected_seconds > 0
    # And the file is the stored image: same sha256, real size
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == info.outputs[0].sha256
    assert f"{open_image(saved.read_bytes()).size[0]}x{open_image(saved.read_bytes()).size[1]}" == (
        info.size_produced
    )


def test_an_edit_of_sixteen_large_local_files_is_uploaded_past_the_body_limit(
    info: StackInfo, tmp_path: Path
) -> None:
    # Given 16 photos of about 770 KB each (12 MB: over API Gateway's 10 MB request body)
    files = []
    for i in range(16):
        buffer = io.BytesIO()
        Image.frombytes("RGB", (512, 512), os.urandom(512 * 512 * 3)).save(buffer, "PNG")
        files.append(tmp_path / f"ref{i}.png")
        files[-1].write_bytes(buffer.getvalue())
    assert sum(f.stat().st_size for f in files) > 10 * 1024 * 1024
    sent: list[httpx.Request] = []
    transport = httpx.HTTPTransport()

    class Recording(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return transport.handle_request(request)

    # When they are sent as one edit
    with Gateway(info.api_url, info.api_key, transport=Recording()) as gateway:
        task = gateway.edit(
            "Blend them into one poster", files, provider="mountsea-async", size="1024x1024"
        )
        done = task.wait(timeout=60)

    # Then most went to the bucket first, and the request body stayed small
    puts = [r for r in sent if r.method == "PUT"]
    submit = next(r for r in sent if r.url.path == "/v1/images")
    assert len(puts) >= 12
    assert len(submit.content) < 5 * 1024 * 1024
    assert done.status == "succeeded" and done.size_produced == "1024x1024"


def test_tasks_iterates_every_page_newest_first(gateway: Gateway) -> None:
    made = [gateway.generate(f"page test {i}", provider="apimart").id for i in range(3)]

    listed = [row.task_id for row in gateway.tasks(page_size=2, limit=10)]

    assert listed[:3] == made[::-1]


def test_the_gateways_refusals_are_exceptions_with_its_codes(gateway: Gateway) -> None:
    with pytest.raises(BadRequest) as refused:
        gateway.generate("x", size="64x9999")
    task = gateway.generate("a fox", provider="apimart")
    task.wait(timeout=60)
    with pytest.raises(Conflict) as late:
        task.cancel()

    assert refused.value.code == "validation_error"
    assert late.value.code == "task_not_cancellable"


def test_the_asyncio_client_waits_and_downloads(info: StackInfo, tmp_path: Path) -> None:
    async def make() -> tuple[TaskInfo, Path, list[str]]:
        async with AsyncGateway(info.api_url, info.api_key) as gateway:
            task = await gateway.generate("a blue door", provider="mountsea-async")
            done = await task.wait(timeout=60)
            providers = [p.name for p in await gateway.providers()]
            return done, await task.download(tmp_path / "door.png"), providers

    done, saved, providers = asyncio.run(make())

    assert done.status == "succeeded" and saved == tmp_path / "door.png"
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == done.outputs[0].sha256
    assert "mountsea-async" in providers
