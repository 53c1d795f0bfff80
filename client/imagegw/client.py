"""The synchronous client: ``Gateway`` and the ``Task`` handles it returns.

from imagegw import Gateway

with Gateway() as gw:                      # IMAGEGW_URL / IMAGEGW_KEY, or a running devstack
    task = gw.generate("a lighthouse at dawn", aspect_ratio="16:9", resolution="2K")
    task.wait(on_update=lambda t: print(t.status))
    print(task.download("out/"))           # out/tsk_....png, sha256 checked
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Unpack

import httpx

from imagegw.batch import BATCH_FILE_TYPE, Batch, BatchInfo
from imagegw.config import resolve
from imagegw.errors import (
    ApiError,
    ConnectionFailed,
    ImagegwError,
    InputError,
    NotFound,
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

IDS_PER_CALL = 100  # GET /v1/tasks?ids= takes up to 100 ids
OnUpdate = Callable[[TaskInfo], None]
"""Called by ``wait`` with the first snapshot, then with each one that changed."""


def since(moment: datetime | None) -> float:
    """Seconds from ``moment`` to now (0 when unknown or in the future: clock skew)."""
    if moment is None:
        return 0.0
    return max(0.0, (datetime.now(UTC) - moment).total_seconds())


def provider_elapsed(task: TaskInfo) -> float:
    """Seconds since the provider got the task (since it was created, before that)."""
    return since(task.submitted_at or task.created_at)


class Gateway:
    """A client of one gateway, with one API key.

    ``url`` and ``key`` default to ``IMAGEGW_URL`` / ``IMAGEGW_KEY``, then to a running
    devstack's ``.devstack/stack.json``. Every error is an ``imagegw.errors.ImagegwError``
    with a stable ``code``.
    """

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        *,
        timeout: float = 30.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        inline_max_bytes: int = INLINE_MAX_BYTES,
        inline_budget: int = INLINE_BUDGET,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        connection = resolve(url, key)
        self.url = connection.url
        self.source = connection.source
        """Where the URL and key came from: flags, IMAGEGW_URL/IMAGEGW_KEY, a stack file."""
        self.backoff = backoff
        self.inline_max_bytes = inline_max_bytes
        self.inline_budget = inline_budget
        self._sleep = sleep
        self._clock = clock
        self._api = httpx.Client(
            base_url=self.url,
            headers=api_headers(connection.key),
            timeout=timeout,
            transport=transport,
        )
        # Presigned storage URLs carry their own signature: never the API key.
        self._storage = httpx.Client(timeout=timeout, transport=transport, follow_redirects=True)

    # -- plumbing ----------------------------------------------------------------------------
    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._api.close()
        self._storage.close()

    def call(
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
                response = self._api.request(
                    method, path, json=json, params=params, headers=headers
                )
                if not worth_retrying(response) or attempt == CALL_RETRIES:
                    return decode(response)
            except httpx.TransportError as exc:
                if attempt == CALL_RETRIES:
                    raise ConnectionFailed(f"{method} {self.url}{path}: {exc!r}") from None
            self._sleep(retry_delay(attempt, response))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- submitting ----------------------------------------------------------------------------
    def generate(
        self, prompt: str, *, idempotency_key: str | None = None, **options: Unpack[ImageOptions]
    ) -> Task:
        """Submit a generation; the task handle (``queued`` or further)."""
        return self.submit(image_body(prompt, [], None, options), idempotency_key)

    def edit(
        self,
        prompt: str,
        images: list[ImageInput],
        mask: ImageInput | None = None,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[ImageOptions],
    ) -> Task:
        """Submit an edit of ``images`` (paths, bytes, https/s3/data URLs), with a mask."""
        if not images:
            raise InputError("an edit needs at least one image")
        refs = self.send_inputs(collect_inputs(images, mask))
        body = image_body(prompt, refs[: len(images)], refs[len(images)] if mask else None, options)
        return self.submit(body, idempotency_key)

    def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> Task:
        """``POST /v1/images`` with a ready body (an Idempotency-Key is always sent)."""
        key = idempotency_key or new_idempotency_key()
        data = self.call("POST", "/v1/images", json=body, headers={"Idempotency-Key": key})
        return Task(self, TaskInfo.parse(data))

    def send_inputs(self, items: list[str | LocalImage]) -> list[str]:
        """What to put in ``images``/``mask``: inline data URLs, or refs of uploaded files."""
        plan = plan_inputs(
            items, inline_max_bytes=self.inline_max_bytes, inline_budget=self.inline_budget
        )
        refs = self.upload(plan.uploads) if plan.uploads else []
        return plan.resolve(refs)

    def upload(self, files: list[LocalImage]) -> list[str]:
        """Upload files through presigned PUT URLs (``POST /v1/uploads``); their ``s3://`` refs."""
        slots = self.call("POST", "/v1/uploads", json=uploads_body(files))["uploads"]
        for slot, file in zip(slots, files, strict=True):
            try:
                answer = self._storage.request(
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
        return [str(slot["ref"]) for slot in slots]

    # -- reading -------------------------------------------------------------------------------
    def task(self, task_id: str) -> Task:
        """A handle on an existing task (read now)."""
        return Task(self, self.get_task(task_id))

    def get_task(self, task_id: str) -> TaskInfo:
        """``GET /v1/tasks/{id}``."""
        return TaskInfo.parse(self.call("GET", f"/v1/tasks/{task_id}"))

    def get_tasks(self, task_ids: Iterable[str]) -> dict[str, TaskInfo]:
        """``GET /v1/tasks?ids=``: many tasks, one call per 100 ids; by id, the unknown absent."""
        unique = list(dict.fromkeys(task_ids))
        found: dict[str, TaskInfo] = {}
        for start in range(0, len(unique), IDS_PER_CALL):
            chunk = unique[start : start + IDS_PER_CALL]
            answer = self.call("GET", "/v1/tasks", params={"ids": ",".join(chunk)})
            for data in answer["tasks"]:
                info = TaskInfo.parse(data)
                found[info.task_id] = info
        return found

    def cancel(self, task_id: str) -> TaskInfo:
        """Cancel an open task (``Conflict`` ``task_not_cancellable`` once it has ended)."""
        return TaskInfo.parse(self.call("POST", f"/v1/tasks/{task_id}/cancel"))

    def tasks(self, *, limit: int | None = None, page_size: int = 50) -> Iterator[TaskRow]:
        """The caller's tasks, newest first, across every page (at most ``limit``)."""
        for row in self._rows("/v1/tasks", "tasks", limit=limit, page_size=page_size):
            yield TaskRow.parse(row)

    def _rows(
        self, path: str, key: str, *, limit: int | None, page_size: int
    ) -> Iterator[dict[str, Any]]:
        """The rows under ``key`` of a paged listing, page after page (at most ``limit``)."""
        cursor: str | None = None
        count = 0
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if cursor:
                params["cursor"] = cursor
            page = self.call("GET", path, params=params)
            for row in page[key]:
                if limit is not None and count >= limit:
                    return
                count += 1
                yield row
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # -- batches (imagegw.batch) -------------------------------------------------------------
    def batch(
        self,
        requests: list[dict[str, Any]] | None = None,
        *,
        input_file: str | None = None,
        metadata: dict[str, str] | None = None,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> Batch:
        """``POST /v1/batches`` with ``requests`` (``{"custom_id", "body"}`` each) inline, or
        with ``input_file``: the ref :meth:`upload_batch_file` gave (over 1,000 lines).

        With ``idempotency_key``, sending the same batch again answers the batch made the first
        time (``imagegw batch`` passes a digest of the file: a re-run resumes it).
        """
        if (requests is None) == (input_file is None):
            raise TypeError("batch() takes requests or input_file, not both or neither")
        body: dict[str, Any] = (
            {"requests": requests} if requests is not None else {"input_file": input_file}
        )
        if metadata:
            body["metadata"] = metadata
        if callback_url:
            body["callback_url"] = callback_url
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return Batch(self, BatchInfo.parse(self.call("POST", "/v1/batches", json=body,
                                                     headers=headers)))  # fmt: skip

    def upload_batch_file(self, requests: list[dict[str, Any]]) -> str:
        """Upload ``requests`` as a JSONL file (``POST /v1/uploads``, a presigned PUT); the
        ref to send as ``input_file`` of :meth:`batch`."""
        data = "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in requests)
        raw = data.encode()
        files = {"files": [{"content_type": BATCH_FILE_TYPE, "bytes": len(raw)}]}
        (slot,) = self.call("POST", "/v1/uploads", json=files)["uploads"]
        try:
            answer = self._storage.put(slot["url"], content=raw, headers=slot["headers"])
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"upload of the batch file: {exc!r}") from None
        if not answer.is_success:
            raise ApiError(
                answer.status_code,
                "upload_failed",
                f"the bucket refused the batch file: HTTP {answer.status_code}",
            )
        return str(slot["ref"])

    def get_batch(self, batch_id: str) -> BatchInfo:
        """``GET /v1/batches/{id}``."""
        return BatchInfo.parse(self.call("GET", f"/v1/batches/{batch_id}"))

    def cancel_batch(self, batch_id: str) -> BatchInfo:
        """``POST /v1/batches/{id}/cancel``."""
        return BatchInfo.parse(self.call("POST", f"/v1/batches/{batch_id}/cancel"))

    def batches(self, *, limit: int | None = None, page_size: int = 20) -> Iterator[BatchInfo]:
        """The caller's batches, newest first, across every page (at most ``limit``)."""
        for row in self._rows("/v1/batches", "batches", limit=limit, page_size=page_size):
            yield BatchInfo.parse(row)

    @property
    def storage(self) -> httpx.Client:
        """The HTTP client for presigned storage URLs (never sends the API key)."""
        return self._storage

    def sleep(self, seconds: float) -> None:
        """Sleep (the injected clock's sleep in tests)."""
        self._sleep(seconds)

    def clock(self) -> float:
        """Now, on the injected monotonic clock."""
        return self._clock()

    def providers(self) -> list[ProviderInfo]:
        """``GET /v1/providers``: every provider, enabled or not, with capabilities and prices."""
        return [ProviderInfo.parse(p) for p in self.call("GET", "/v1/providers")["providers"]]

    # -- waiting and downloading (what Task calls) ---------------------------------------------
    def wait_for(
        self,
        task: TaskInfo,
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
    ) -> TaskInfo:
        """Poll until the task is terminal (see ``Task.wait``); WaitTimeout carries the last."""
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
            self._sleep(delay)
            try:
                task = self.get_task(task.task_id)
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

    def wait_all(
        self,
        tasks: Iterable[Task | TaskInfo | str],
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
    ) -> list[TaskInfo]:
        """Poll many tasks until each is terminal; their last snapshots, in the order given.

        One ``GET /v1/tasks?ids=`` per 100 open tasks per look (not one call per task), paced
        by the task due soonest under the same backoff as :meth:`wait_for`; ``on_update`` is
        called with each task's first snapshot, then each change. Raises ``WaitTimeout`` (for
        the first task still open) when ``timeout`` passes, ``NotFound`` (404) for an id that is
        not the caller's task. Failed tasks are returned, not raised.
        """
        deadline = None if timeout is None else self._clock() + timeout
        given = list(tasks)
        known = {t.task_id: t for t in given if isinstance(t, TaskInfo)}
        known.update({t.id: t.info for t in given if isinstance(t, Task)})
        order = list(
            dict.fromkeys(
                t if isinstance(t, str) else t.task_id if isinstance(t, TaskInfo) else t.id
                for t in given
            )
        )
        latest = {**self._read_all([i for i in order if i not in known]), **known}
        late_looks = dict.fromkeys(order, 0)
        errors = 0
        if on_update is not None:
            for info in latest.values():
                on_update(info)
        while open_ids := [i for i in order if not latest[i].done]:
            delay = min(
                self.backoff.delay(
                    elapsed=provider_elapsed(latest[i]),
                    expected=latest[i].expected_seconds,
                    late_looks=late_looks[i],
                )
                for i in open_ids
            )
            for i in open_ids:
                expected = latest[i].expected_seconds
                if expected is None or provider_elapsed(latest[i]) >= expected:
                    late_looks[i] += 1
            if deadline is not None:
                left = deadline - self._clock()
                if left <= 0:
                    raise WaitTimeout(latest[open_ids[0]], timeout or 0)
                delay = min(delay, left)
            self._sleep(delay)
            try:
                fresh = self._read_all(open_ids)
                errors = 0
            except (ConnectionFailed, ApiError) as exc:
                if isinstance(exc, ApiError) and not exc.retryable:
                    raise
                errors += 1
                if errors >= self.backoff.max_errors:
                    raise
                continue
            for task_id, info in fresh.items():
                if on_update is not None and info.state != latest[task_id].state:
                    on_update(info)
                latest[task_id] = info
        return [latest[i] for i in order]

    def _read_all(self, task_ids: list[str]) -> dict[str, TaskInfo]:
        found = self.get_tasks(task_ids)
        missing = [i for i in task_ids if i not in found]
        if missing:
            raise NotFound(404, "task_not_found", f"no task {missing[0]}")
        return found

    def download_output(
        self, task: TaskInfo, dest: Destination, *, index: int = 0, verify: bool = True
    ) -> Path:
        """Download output ``index`` of a succeeded task (see ``Task.download``)."""
        if not task.outputs:
            raise ImagegwError(
                f"task {task.task_id} has no image ({task.status})", code="no_output"
            )
        for attempt in range(2):
            output = task.outputs[index]
            writer = VerifiedWriter(target_path(dest, task.task_id, output, index), output)
            try:
                with self._storage.stream("GET", output.url) as answer:
                    if answer.status_code == 403 and attempt == 0:  # the URL expired: a new one
                        writer.discard()
                        task = self.get_task(task.task_id)
                        continue
                    if not answer.is_success:
                        raise ApiError(
                            answer.status_code,
                            "download_failed",
                            f"{output.key}: HTTP {answer.status_code}",
                        )
                    for chunk in answer.iter_bytes():
                        writer.write(chunk)
            except httpx.TransportError as exc:
                writer.discard()
                raise ConnectionFailed(f"download of {output.key}: {exc!r}") from None
            except BaseException:
                writer.discard()
                raise
            return writer.commit(verify=verify)
        raise AssertionError("unreachable")  # pragma: no cover


def _task_id(task: Task | TaskInfo | str) -> str:
    if isinstance(task, str):
        return task
    return task.task_id if isinstance(task, TaskInfo) else task.id


class Task:
    """A handle on one task: its latest snapshot (``info``), and what can be done with it."""

    def __init__(self, gateway: Gateway, info: TaskInfo) -> None:
        self.gateway = gateway
        self.info = info

    def __repr__(self) -> str:
        return f"<Task {self.id} {self.status}>"

    @property
    def id(self) -> str:
        """The task id (``tsk_...``)."""
        return self.info.task_id

    @property
    def status(self) -> str:
        """The status as last read."""
        return self.info.status

    def refresh(self) -> TaskInfo:
        """Read the task again."""
        self.info = self.gateway.get_task(self.id)
        return self.info

    def wait(
        self,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        *,
        raise_on_failure: bool = True,
    ) -> TaskInfo:
        """Poll until the task is terminal, backing off around the provider's expected latency.

        ``on_update`` is called with the first snapshot at once, then with each one that
        changed (``TaskInfo.state``: status, provider, history, attempts, images or error; not
        at every look). Raises
        ``TaskFailed`` when it ended without an image (unless ``raise_on_failure=False``) and
        ``WaitTimeout`` when ``timeout`` seconds pass first (the task goes on).
        """
        try:
            self.info = self.gateway.wait_for(self.info, timeout=timeout, on_update=on_update)
        except WaitTimeout as exc:
            self.info = exc.task
            raise
        if raise_on_failure and not self.info.succeeded:
            raise TaskFailed(self.info)
        return self.info

    def download(self, dest: Destination = ".", *, index: int = 0, verify: bool = True) -> Path:
        """Save the image to ``dest`` (a file, or a folder: ``{task id}.{ext}`` in it).

        The bytes are checked against the task's sha256 and size before the file appears
        (``IntegrityError`` otherwise); an expired URL is renewed once.
        """
        if not self.info.done:
            self.wait()
        return self.gateway.download_output(self.info, dest, index=index, verify=verify)

    def download_all(self, dest: Destination = ".", *, verify: bool = True) -> list[Path]:
        """Save every image of the task (``n`` of them), in order, like :meth:`download`: in
        a folder as ``{task id}.{ext}``, ``{task id}-1.{ext}``...; a file name gets ``-1``,
        ``-2``... before its extension from the second image on."""
        if not self.info.done:
            self.wait()
        return [
            self.gateway.download_output(self.info, dest, index=index, verify=verify)
            for index in range(len(self.info.outputs))
        ]

    def cancel(self) -> TaskInfo:
        """Cancel the task at the gateway."""
        self.info = self.gateway.cancel(self.id)
        return self.info
