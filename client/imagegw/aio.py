"""The asyncio client: ``AsyncGateway`` and ``AsyncTask``, the same calls as the sync ones.

from imagegw.aio import AsyncGateway

async with AsyncGateway() as gw:
    task = await gw.generate("a lighthouse at dawn", size="1024x1536")
    await task.wait()
    print(await task.download("out/"))
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Unpack

import httpx

from imagegw.client import OnUpdate, provider_elapsed
from imagegw.config import resolve
from imagegw.errors import (
    ApiError,
    ConnectionFailed,
    ImagegwError,
    InputError,
    TaskFailed,
    WaitTimeout,
)
from imagegw.files import Destination, VerifiedWriter, target_path
from imagegw.inputs import (
    INLINE_BUDGET,
    INLINE_MAX_BYTES,
    ImageInput,
    LocalImage,
    collect_inputs,
    plan_inputs,
)
from imagegw.models import ImageOptions, ProviderInfo, TaskInfo, TaskRow
from imagegw.polling import DEFAULT_BACKOFF, Backoff
from imagegw.protocol import (
    CALL_RETRIES,
    api_headers,
    decode,
    image_body,
    new_idempotency_key,
    retry_delay,
    uploads_body,
    worth_retrying,
)


class AsyncGateway:
    """The asyncio twin of ``imagegw.Gateway`` (same arguments, same errors)."""

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        *,
        timeout: float = 30.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        inline_max_bytes: int = INLINE_MAX_BYTES,
        inline_budget: int = INLINE_BUDGET,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        connection = resolve(url, key)
        self.url = connection.url
        self.backoff = backoff
        self.inline_max_bytes = inline_max_bytes
        self.inline_budget = inline_budget
        self._sleep = sleep
        self._clock = clock
        self._api = httpx.AsyncClient(
            base_url=self.url,
            headers=api_headers(connection.key),
            timeout=timeout,
            transport=transport,
        )
        self._storage = httpx.AsyncClient(
            timeout=timeout, transport=transport, follow_redirects=True
        )

    async def __aenter__(self) -> AsyncGateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._api.aclose()
        await self._storage.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One API call (tried again on 429/502/503/504 and lost connections); its JSON."""
        for attempt in range(CALL_RETRIES + 1):
            response: httpx.Response | None = None
            try:
                response = await self._api.request(
                    method, path, json=json, params=params, headers=headers
                )
                if not worth_retrying(response) or attempt == CALL_RETRIES:
                    return decode(response)
            except httpx.TransportError as exc:
                if attempt == CALL_RETRIES:
                    raise ConnectionFailed(f"{method} {self.url}{path}: {exc!r}") from None
            await self._sleep(retry_delay(attempt, response))
        raise AssertionError("unreachable")  # pragma: no cover

    async def generate(
        self, prompt: str, *, idempotency_key: str | None = None, **options: Unpack[ImageOptions]
    ) -> AsyncTask:
        """Submit a generation; the task handle."""
        return await self.submit(image_body(prompt, [], None, options), idempotency_key)

    async def edit(
        self,
        prompt: str,
        images: list[ImageInput],
        mask: ImageInput | None = None,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[ImageOptions],
    ) -> AsyncTask:
        """Submit an edit of ``images`` (paths, bytes, https/s3/data URLs), with a mask."""
        if not images:
            raise InputError("an edit needs at least one image")
        refs = await self.send_inputs(collect_inputs(images, mask))
        body = image_body(prompt, refs[: len(images)], refs[len(images)] if mask else None, options)
        return await self.submit(body, idempotency_key)

    async def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> AsyncTask:
        """``POST /v1/images`` with a ready body (an Idempotency-Key is always sent)."""
        key = idempotency_key or new_idempotency_key()
        data = await self.call("POST", "/v1/images", json=body, headers={"Idempotency-Key": key})
        return AsyncTask(self, TaskInfo.parse(data))

    async def send_inputs(self, items: list[str | LocalImage]) -> list[str]:
        """What to put in ``images``/``mask``: inline data URLs, or refs of uploaded files."""
        plan = plan_inputs(
            items, inline_max_bytes=self.inline_max_bytes, inline_budget=self.inline_budget
        )
        refs = await self.upload(plan.uploads) if plan.uploads else []
        return plan.resolve(refs)

    async def upload(self, files: list[LocalImage]) -> list[str]:
        """Upload files through presigned PUT URLs, all at once; their ``s3://`` refs."""
        slots = (await self.call("POST", "/v1/uploads", json=uploads_body(files)))["uploads"]

        async def put(slot: dict[str, Any], file: LocalImage) -> None:
            try:
                answer = await self._storage.request(
                    slot.get("method", "PUT"),
                    slot["url"],
                    content=file.data,
                    headers=slot["headers"],
                )
            except httpx.TransportError as exc:
                raise ConnectionFailed(f"upload of {file.name}: {exc!r}") from None
            if not answer.is_success:
                raise ApiError(
                    answer.status_code,
                    "upload_failed",
                    f"the bucket refused {file.name}: HTTP {answer.status_code}",
                )

        await asyncio.gather(*(put(s, f) for s, f in zip(slots, files, strict=True)))
        return [str(slot["ref"]) for slot in slots]

    async def task(self, task_id: str) -> AsyncTask:
        """A handle on an existing task (read now)."""
        return AsyncTask(self, await self.get_task(task_id))

    async def get_task(self, task_id: str) -> TaskInfo:
        """``GET /v1/tasks/{id}``."""
        return TaskInfo.parse(await self.call("GET", f"/v1/tasks/{task_id}"))

    async def cancel(self, task_id: str) -> TaskInfo:
        """Cancel an open task."""
        return TaskInfo.parse(await self.call("POST", f"/v1/tasks/{task_id}/cancel"))

    async def tasks(
        self, *, limit: int | None = None, page_size: int = 50
    ) -> AsyncIterator[TaskRow]:
        """The caller's tasks, newest first, across every page (at most ``limit``)."""
        cursor: str | None = None
        count = 0
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if cursor:
                params["cursor"] = cursor
            page = await self.call("GET", "/v1/tasks", params=params)
            for row in page["tasks"]:
                if limit is not None and count >= limit:
                    return
                count += 1
                yield TaskRow.parse(row)
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def providers(self) -> list[ProviderInfo]:
        """``GET /v1/providers``."""
        answer = await self.call("GET", "/v1/providers")
        return [ProviderInfo.parse(p) for p in answer["providers"]]

    async def wait_for(
        self, task: TaskInfo, *, timeout: float | None = None, on_update: OnUpdate | None = None
    ) -> TaskInfo:
        """Poll until the task is terminal (the policy of ``Gateway.wait_for``)."""
        deadline = None if timeout is None else self._clock() + timeout
        late_looks = errors = 0
        seen = task.state
        if on_update is not None:
            on_update(task)
        while not task.done:
            elapsed = provider_elapsed(task)
            delay = self.backoff.delay(
                elapsed=elapsed, expected=task.expected_seconds, late_looks=late_looks
            )
            if task.expected_seconds is None or elapsed >= task.expected_seconds:
                late_looks += 1
            if deadline is not None:
                left = deadline - self._clock()
                if left <= 0:
                    raise WaitTimeout(task, timeout or 0)
                delay = min(delay, left)
            await self._sleep(delay)
            try:
                task = await self.get_task(task.task_id)
                errors = 0
            except (ConnectionFailed, ApiError) as exc:
                if isinstance(exc, ApiError) and not exc.retryable:
                    raise
                errors += 1
                if errors >= self.backoff.max_errors:
                    raise
                continue
            if on_update is not None and task.state != seen:
                on_update(task)
            seen = task.state
        return task

    async def download_output(
        self, task: TaskInfo, dest: Destination, *, index: int = 0, verify: bool = True
    ) -> Path:
        """Download output ``index`` of a succeeded task, sha256 checked."""
        if not task.outputs:
            raise ImagegwError(
                f"task {task.task_id} has no image ({task.status})", code="no_output"
            )
        for attempt in range(2):
            output = task.outputs[index]
            writer = VerifiedWriter(target_path(dest, task.task_id, output, index), output)
            try:
                async with self._storage.stream("GET", output.url) as answer:
                    if answer.status_code == 403 and attempt == 0:
                        writer.discard()
                        task = await self.get_task(task.task_id)
                        continue
                    if not answer.is_success:
                        raise ApiError(
                            answer.status_code,
                            "download_failed",
                            f"{output.key}: HTTP {answer.status_code}",
                        )
                    async for chunk in answer.aiter_bytes():
                        writer.write(chunk)
            except httpx.TransportError as exc:
                writer.discard()
                raise ConnectionFailed(f"download of {output.key}: {exc!r}") from None
            except BaseException:
                writer.discard()
                raise
            return writer.commit(verify=verify)
        raise AssertionError("unreachable")  # pragma: no cover


class AsyncTask:
    """The asyncio twin of ``imagegw.Task``."""

    def __init__(self, gateway: AsyncGateway, info: TaskInfo) -> None:
        self.gateway = gateway
        self.info = info

    def __repr__(self) -> str:
        return f"<AsyncTask {self.id} {self.status}>"

    @property
    def id(self) -> str:
        """The task id."""
        return self.info.task_id

    @property
    def status(self) -> str:
        """The status as last read."""
        return self.info.status

    async def refresh(self) -> TaskInfo:
        """Read the task again."""
        self.info = await self.gateway.get_task(self.id)
        return self.info

    async def wait(
        self,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        *,
        raise_on_failure: bool = True,
    ) -> TaskInfo:
        """Poll until terminal; ``TaskFailed`` / ``WaitTimeout`` as ``Task.wait``."""
        try:
            self.info = await self.gateway.wait_for(self.info, timeout=timeout, on_update=on_update)
        except WaitTimeout as exc:
            self.info = exc.task
            raise
        if raise_on_failure and not self.info.succeeded:
            raise TaskFailed(self.info)
        return self.info

    async def download(
        self, dest: Destination = ".", *, index: int = 0, verify: bool = True
    ) -> Path:
        """Save the image to ``dest`` (file or folder), sha256 checked."""
        if not self.info.done:
            await self.wait()
        return await self.gateway.download_output(self.info, dest, index=index, verify=verify)

    async def cancel(self) -> TaskInfo:
        """Cancel the task at the gateway."""
        self.info = await self.gateway.cancel(self.id)
        return self.info
