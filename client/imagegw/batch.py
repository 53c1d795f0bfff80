"""Batches: many images in one call (``POST /v1/batches``), waited on as one, saved by custom_id.

    requests = read_requests("catalogue.jsonl")   # {"custom_id", "body"} lines
    batch = gw.batch(requests)            # 202: the lines become tasks at the gateway
    batch.wait(on_update=print)           # one look every few seconds, whatever the size
    batch.download("out/")                # out/<custom_id>.png, sha256 checked; again: skipped

The gateway keeps the batch's counts (it never reads every task to answer), so waiting on
50,000 images costs one small ``GET`` per look. Once the batch has ended, its results file
(``results_url``, JSONL) lists every line with its task, status, images and error;
:meth:`Batch.download` reads it and saves each image as ``<custom_id>.<ext>`` (``-1``, ``-2``
after the first when a line asked for several). A file already there with the right sha256 is
kept, so running the download again fetches only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from imagegw.errors import (
    ApiError,
    ConnectionFailed,
    ImagegwError,
    InputError,
)
from imagegw.files import VerifiedWriter

if TYPE_CHECKING:
    from imagegw.client import Gateway

FINISHED = frozenset({"completed", "cancelled", "expired", "failed"})
MAX_INLINE_REQUESTS = 1_000
"""The most requests ``POST /v1/batches`` takes inline; more go as an uploaded file."""
BATCH_FILE_TYPE = "application/x-ndjson"
"""Batch statuses after which nothing changes (the results file exists)."""
LOOK_EVERY = 2.0
"""Seconds between two looks at a batch (one small GET each, whatever the batch's size)."""


@dataclass(frozen=True)
class BatchCounts:
    """How many of a batch's lines are where (``counts`` of the batch view)."""

    total: int
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    expired: int
    invalid: int

    @property
    def done(self) -> int:
        """Lines that have ended, one way or another."""
        return self.succeeded + self.failed + self.cancelled + self.expired + self.invalid

    @property
    def unsuccessful(self) -> int:
        """Lines that ended without images."""
        return self.failed + self.cancelled + self.expired + self.invalid


@dataclass(frozen=True)
class BatchInfo:
    """A snapshot of a batch (``GET /v1/batches/{id}``)."""

    batch_id: str
    status: str
    counts: BatchCounts
    estimated_cost_usd: float
    final_cost_usd: float
    created_at: datetime | None
    completed_at: datetime | None
    results_url: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def finished(self) -> bool:
        """True once the batch has ended (completed, cancelled, expired, or failed: its input
        file was refused, see ``raw["error"]``)."""
        return self.status in FINISHED

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> BatchInfo:
        """From the gateway's JSON."""
        counts = doc["counts"]
        return cls(
            batch_id=doc["batch_id"],
            status=doc["status"],
            counts=BatchCounts(**{name: int(counts.get(name, 0)) for name in _COUNT_NAMES}),
            estimated_cost_usd=float(doc.get("estimated_cost_usd") or 0.0),
            final_cost_usd=float(doc.get("final_cost_usd") or 0.0),
            created_at=_moment(doc.get("created_at")),
            completed_at=_moment(doc.get("completed_at")),
            results_url=doc.get("results_url"),
            raw=doc,
        )


_COUNT_NAMES = (
    "total",
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "expired",
    "invalid",
)


@dataclass(frozen=True)
class ResultOutput:
    """One image of a results line: where it is and what it must be."""

    bucket: str
    key: str
    bytes: int
    sha256: str
    url: str

    @property
    def extension(self) -> str:
        """The file extension of the stored image (``png``, ``jpeg``, ``webp``)."""
        suffix = Path(self.key).suffix.lstrip(".")
        return suffix or "png"


@dataclass(frozen=True)
class ResultLine:
    """One line of the results file: a request of the batch and what became of it."""

    custom_id: str
    task_id: str | None
    status: str
    outputs: list[ResultOutput]
    error: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> ResultLine:
        """From one JSON line of ``results.jsonl``."""
        return cls(
            custom_id=str(doc["custom_id"]),
            task_id=doc.get("task_id"),
            status=str(doc["status"]),
            outputs=[_result_output(o) for o in doc.get("outputs") or []],
            error=doc.get("error"),
            raw=doc,
        )

    def file_names(self) -> list[str]:
        """``<custom_id>.<ext>``, then ``<custom_id>-1.<ext>``... for each image."""
        return [
            f"{self.custom_id}{'' if i == 0 else f'-{i}'}.{output.extension}"
            for i, output in enumerate(self.outputs)
        ]


@dataclass
class DownloadSummary:
    """What :meth:`Batch.download` did."""

    saved: list[Path] = field(default_factory=list)
    """Images downloaded (sha256 checked) by this call."""
    kept: list[Path] = field(default_factory=list)
    """Images already there with the right sha256 (an earlier run saved them)."""
    without_image: list[ResultLine] = field(default_factory=list)
    """Lines that ended without an image (failed, cancelled, expired, invalid)."""
    lines: list[ResultLine] = field(default_factory=list)
    """Every line of the results file."""


def read_requests(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The lines of a JSONL file of ``{"custom_id", "body"}`` objects (blank lines skipped).

    Raises :class:`InputError` naming the line for a file that is not such JSONL; the bodies
    themselves are checked by the gateway (a bad one becomes an error row, not a refusal).
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: cannot read it ({exc})") from None
    found: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}, line {number}: not JSON ({exc.msg})") from None
        if not isinstance(item, dict) or "custom_id" not in item or "body" not in item:
            raise InputError(
                f'{source}, line {number}: each line is {{"custom_id": "...", "body": {{...}}}}'
            )
        found.append(item)
    if not found:
        raise InputError(f"{source}: no request in it")
    return found


def requests_digest(requests: Iterable[dict[str, Any]]) -> str:
    """A SHA-256 of the requests as sent: the same file gives the same batch (resume)."""
    digest = hashlib.sha256()
    for item in requests:
        digest.update(json.dumps(item, sort_keys=True, separators=(",", ":")).encode())
        digest.update(b"\n")
    return digest.hexdigest()


class Batch:
    """A handle on a batch of the caller's: refresh, wait, read its results, save its images."""

    def __init__(self, gateway: Gateway, info: BatchInfo) -> None:
        self.gateway = gateway
        self.info = info

    def __repr__(self) -> str:
        return f"Batch({self.info.batch_id!r}, {self.info.status!r})"

    @property
    def id(self) -> str:
        """The batch id."""
        return self.info.batch_id

    def refresh(self) -> BatchInfo:
        """Read the batch again."""
        self.info = self.gateway.get_batch(self.id)
        return self.info

    def wait(
        self,
        timeout: float | None = None,
        *,
        on_update: Callable[[BatchInfo], None] | None = None,
        every: float = LOOK_EVERY,
    ) -> BatchInfo:
        """Look every ``every`` seconds until the batch has ended; its last snapshot.

        ``on_update`` gets the first snapshot and each one whose counts or status changed.
        Transient errors (no answer, 429, 5xx) are ridden out like :meth:`Task.wait` does;
        raises :class:`WaitTimeout` (``.batch`` holds the last snapshot) after ``timeout``.
        """
        gateway = self.gateway
        deadline = None if timeout is None else gateway.clock() + timeout
        errors = 0
        if on_update is not None:
            on_update(self.info)
        while not self.info.finished:
            delay = every
            if deadline is not None:
                left = deadline - gateway.clock()
                if left <= 0:
                    raise BatchWaitTimeout(self.info, timeout or 0)
                delay = min(delay, left)
            gateway.sleep(delay)
            before = self.info
            try:
                self.refresh()
                errors = 0
            except (ConnectionFailed, ApiError) as exc:
                if isinstance(exc, ApiError) and not exc.retryable:
                    raise
                errors += 1
                if errors >= gateway.backoff.max_errors:
                    raise
                continue
            changed = (before.status, before.counts) != (self.info.status, self.info.counts)
            if on_update is not None and changed:
                on_update(self.info)
        return self.info

    def cancel(self) -> BatchInfo:
        """``POST /v1/batches/{id}/cancel``: queued lines are cancelled, running ones finish."""
        self.info = self.gateway.cancel_batch(self.id)
        return self.info

    def results(self) -> list[ResultLine]:
        """The results file's lines (once the batch has ended); a fresh URL if it expired."""
        for attempt in range(2):
            if not self.info.finished or not self.info.results_url:
                self.refresh()
            url = self.info.results_url
            if not self.info.finished or url is None:
                raise ImagegwError(
                    f"batch {self.id} is {self.info.status}: its results file is written when "
                    "its last line ends (wait for it first)",
                    code="batch_not_finished",
                )
            try:
                answer = self.gateway.storage.get(url)
            except httpx.TransportError as exc:
                raise ConnectionFailed(f"results of batch {self.id}: {exc!r}") from None
            if answer.status_code == 403 and attempt == 0:  # the presigned URL expired
                self.info = self.gateway.get_batch(self.id)
                continue
            if not answer.is_success:
                raise ApiError(
                    answer.status_code, "download_failed", f"results of batch {self.id}: HTTP "
                    f"{answer.status_code}",
                )  # fmt: skip
            return [ResultLine.parse(json.loads(line)) for line in answer.text.splitlines() if line]
        raise AssertionError("unreachable")  # pragma: no cover

    def download(
        self,
        folder: str | os.PathLike[str],
        *,
        on_file: Callable[[Path, bool], None] | None = None,
    ) -> DownloadSummary:
        """Save every image of the batch into ``folder`` as ``<custom_id>.<ext>``.

        A file already there whose sha256 matches is kept (``on_file(path, False)``), so a
        second run downloads only what is missing; each download is checked against its
        sha256 and size before it takes its name (``on_file(path, True)``).
        """
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        summary = DownloadSummary(lines=self.results())
        for line in summary.lines:
            if not line.outputs:
                summary.without_image.append(line)
                continue
            for name, output in zip(line.file_names(), line.outputs, strict=True):
                path = target / _safe_name(name)
                if path.is_file() and _sha256(path) == output.sha256:
                    summary.kept.append(path)
                    if on_file is not None:
                        on_file(path, False)
                    continue
                self._fetch(output, path, line)
                summary.saved.append(path)
                if on_file is not None:
                    on_file(path, True)
        return summary

    def _fetch(self, output: ResultOutput, path: Path, line: ResultLine) -> None:
        writer = VerifiedWriter(path, output)
        try:
            with self.gateway.storage.stream("GET", output.url) as answer:
                if not answer.is_success:
                    raise ApiError(
                        answer.status_code, "download_failed",
                        f"{line.custom_id} ({output.key}): HTTP {answer.status_code}",
                    )  # fmt: skip
                for chunk in answer.iter_bytes():
                    writer.write(chunk)
        except httpx.TransportError as exc:
            writer.discard()
            raise ConnectionFailed(f"download of {output.key}: {exc!r}") from None
        except BaseException:
            writer.discard()
            raise
        writer.commit()


class BatchWaitTimeout(ImagegwError):
    """``Batch.wait`` gave up after its timeout (the batch goes on); ``.batch`` is the last
    snapshot."""

    code = "wait_timeout"

    def __init__(self, batch: BatchInfo, timeout: float) -> None:
        super().__init__(
            f"batch {batch.batch_id} still {batch.status} after {timeout:g} s "
            f"({batch.counts.done} of {batch.counts.total} lines done)"
        )
        self.batch = batch


def _result_output(doc: dict[str, Any]) -> ResultOutput:
    return ResultOutput(
        bucket=doc["bucket"],
        key=doc["key"],
        bytes=int(doc["size"]),
        sha256=doc["sha256"],
        url=doc["url"],
    )


def _safe_name(name: str) -> str:
    """A custom_id is ``[A-Za-z0-9._:-]``; ``:`` is not welcome in every file system."""
    cleaned = name.replace(":", "_")
    if cleaned.startswith("."):  # never a hidden file, never ``..``
        cleaned = "_" + cleaned[1:]
    return cleaned


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None
