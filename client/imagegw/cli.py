"""``imagegw``: make, edit, watch and fetch images through the Image Task Gateway.

    imagegw generate "a lighthouse at dawn" --aspect 16:9 --resolution 2K -o lighthouse.png
    imagegw edit photo.png --ref style.png --mask mask.png "add a moon" --size 1024x1024
    imagegw show|wait|cancel TASK      imagegw list      imagegw providers
    imagegw batch catalogue.jsonl -o out/   (again: resumes)   imagegw batches|batch-cancel
    imagegw admin keys|limits|providers ...   (the operator's, with AWS credentials)

Progress goes to stderr (a live line on a terminal, plain lines otherwise); stdout gets the
saved file's path, or with ``--json`` one JSON document. Exit codes: 0 done; 1 the task ended
without an image (failed, cancelled, expired); 2 bad input (usage, a local file, or a 4xx from
the gateway, whose code is printed); 3 the gateway or the storage could not be reached, failed
(5xx), or sent a file that fails its sha256; 4 ``--timeout`` passed with the task still open;
130 interrupted (Ctrl-C, after offering to cancel the task).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from imagegw.batch import (
    MAX_INLINE_REQUESTS,
    Batch,
    BatchWaitTimeout,
    read_requests,
    requests_digest,
)
from imagegw.client import Gateway, Task
from imagegw.errors import (
    ApiError,
    ConfigError,
    Conflict,
    ConnectionFailed,
    ImagegwError,
    InputError,
    IntegrityError,
    NotFound,
    ServerError,
    WaitTimeout,
)
from imagegw.models import TaskInfo
from imagegw.progress import BatchProgress, Progress, seconds, stamp

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_CONNECTION = 3
EXIT_TIMEOUT = 4
EXIT_INTERRUPTED = 130
STATE_FILE = ".imagegw-batch.json"
"""In a batch's output folder: the batch id and the digest of the file it was sent from."""


def _image_options(parser: argparse.ArgumentParser) -> None:
    size = parser.add_argument_group("size (one of)")
    size.add_argument("--size", help="auto or WIDTHxHEIGHT, e.g. 1024x1536")
    size.add_argument("--aspect", metavar="W:H", help="aspect ratio, e.g. 16:9 (with --resolution)")
    size.add_argument("--resolution", choices=["1K", "2K", "4K"], help="with --aspect")
    parser.add_argument("--size-policy", choices=["exact", "nearest"])
    parser.add_argument("--quality", choices=["auto", "low", "medium", "high"])
    parser.add_argument("--background", choices=["auto", "transparent", "opaque"])
    parser.add_argument("--format", dest="output_format", choices=["png", "jpeg", "webp"])
    parser.add_argument("--compression", dest="output_compression", type=int, metavar="0-100")
    parser.add_argument(
        "--provider", action="append", metavar="NAME",
        help="pin a provider; repeat for an ordered fallback list",
    )  # fmt: skip
    parser.add_argument(
        "-n", type=int, metavar="1-10", help="how many images (one provider call each)"
    )
    parser.add_argument("--metadata", action="append", metavar="KEY=VALUE", default=[])
    parser.add_argument("--idempotency-key", metavar="KEY")
    _wait_options(parser)
    parser.add_argument("--no-wait", action="store_true", help="print the task and return")


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", default=".", metavar="PATH",
        help="file, or folder for TASK_ID.EXT (default: the current folder)",
    )  # fmt: skip
    parser.add_argument("--no-download", action="store_true", help="wait, but save nothing")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="give up waiting after")


def _global_flags(parser: argparse.ArgumentParser, default: Any) -> argparse.ArgumentParser:
    off = default if default is argparse.SUPPRESS else False
    parser.add_argument(
        "--url", default=default, help="gateway URL (else IMAGEGW_URL, else devstack's)"
    )
    parser.add_argument(
        "--key", default=default, help="API key (else IMAGEGW_KEY, else devstack's)"
    )
    parser.add_argument("--json", action="store_true", default=off, help="print one JSON document")
    parser.add_argument("--quiet", action="store_true", default=off, help="no progress output")
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    # The global flags work before and after the command; the command's copy must not reset
    # what was given before it, hence SUPPRESS as its defaults.
    common = _global_flags(argparse.ArgumentParser(add_help=False), argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="imagegw",
        description="Make and edit images through the Image Task Gateway.",
        epilog="exit codes: 0 done, 1 task failed/cancelled/expired, 2 bad input, "
        "3 connection or gateway error, 4 timeout, 130 interrupted",
    )
    _global_flags(parser, None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    generate = commands.add_parser("generate", parents=[common], help="make an image")
    generate.add_argument("prompt")
    _image_options(generate)
    edit = commands.add_parser("edit", parents=[common], help="edit an image")
    edit.add_argument("image", help="the image to edit: a file, or an https:// or s3:// URL")
    edit.add_argument("prompt")
    edit.add_argument("--ref", action="append", default=[], metavar="IMAGE",
                      help="another reference image (repeatable, 16 images in all)")  # fmt: skip
    edit.add_argument("--mask", metavar="PNG", help="transparent where to repaint")
    _image_options(edit)
    for name, text in (("show", "print a task"), ("cancel", "cancel a task")):
        commands.add_parser(name, parents=[common], help=text).add_argument("task_id")
    wait = commands.add_parser("wait", parents=[common], help="wait for a task and save it")
    wait.add_argument("task_id")
    _wait_options(wait)
    listing = commands.add_parser("list", parents=[common], help="your tasks, newest first")
    listing.add_argument("--limit", type=int, default=20, help="rows (default 20)")
    listing.add_argument("--all", action="store_true", help="every task, all pages")
    commands.add_parser("providers", parents=[common], help="providers and what they can do")
    batch = commands.add_parser(
        "batch", parents=[common], help="send a JSONL file of requests as one batch, save all",
        description="Send FILE (one {\"custom_id\", \"body\"} object per line) as one batch, "
        "show its progress and save every image into the output folder as CUSTOM_ID.EXT. "
        "Run it again to resume: the same file picks up the same batch and skips saved images.",
    )  # fmt: skip
    batch.add_argument("file", help="JSONL: one request per line")
    batch.add_argument(
        "-o", "--output", default=".", metavar="DIR",
        help="folder for the images, results.jsonl and the resume state (default: .)",
    )  # fmt: skip
    batch.add_argument("--metadata", action="append", metavar="KEY=VALUE", default=[])
    batch.add_argument("--callback-url", metavar="URL", help="signed batch.completed webhook")
    batch.add_argument("--timeout", type=float, metavar="SECONDS", help="give up waiting after")
    batch.add_argument("--no-wait", action="store_true", help="send it, print its id, return")
    batch.add_argument("--no-download", action="store_true", help="wait, but save nothing")
    batches = commands.add_parser("batches", parents=[common], help="your batches, newest first")
    batches.add_argument("--limit", type=int, default=20, help="rows (default 20)")
    commands.add_parser(
        "batch-cancel", parents=[common], help="cancel a batch's queued lines"
    ).add_argument("batch_id")
    from imagegw import admin  # the operator's commands (they need boto3 only when run)

    admin.add_parser(commands, common)
    return parser


class Cli:
    """One run of the command: streams, the gateway, and how results are shown."""

    def __init__(self, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> None:
        self.args = args
        self.out = stdout
        self.err = stderr
        self.gateway: Gateway | None = None

    def say(self, text: str) -> None:
        """A line for people (stderr), unless --quiet."""
        if not self.args.quiet:
            self.err.write(text + "\n")
            self.err.flush()

    def emit(self, document: Any, human: str) -> None:
        """The result: JSON with --json, else the human text (stdout)."""
        text = json.dumps(document, indent=2, default=str) if self.args.json else human
        if text:
            self.out.write(text + "\n")
            self.out.flush()

    # -- commands ------------------------------------------------------------------------------
    def run(self) -> int:
        """Dispatch to the command."""
        if self.args.command == "admin":  # AWS credentials, not the gateway's API
            from imagegw import admin

            return admin.main(self.args, self.out, self.err)
        self.gateway = Gateway(self.args.url, self.args.key)
        with self.gateway:
            name = self.args.command.replace("-", "_")
            handler: Callable[[Gateway], int] = getattr(self, f"cmd_{name}")
            return handler(self.gateway)

    def cmd_generate(self, gateway: Gateway) -> int:
        """``imagegw generate PROMPT``."""
        return self._submitted(
            gateway.generate(
                self.args.prompt, idempotency_key=self.args.idempotency_key, **self._options()
            )
        )

    def cmd_edit(self, gateway: Gateway) -> int:
        """``imagegw edit IMAGE PROMPT``."""
        images = [self.args.image, *self.args.ref]
        task = gateway.edit(
            self.args.prompt,
            images,
            self.args.mask,
            idempotency_key=self.args.idempotency_key,
            **self._options(),
        )
        return self._submitted(task)

    def cmd_wait(self, gateway: Gateway) -> int:
        """``imagegw wait TASK``."""
        return self._wait(gateway.task(self.args.task_id))

    def cmd_show(self, gateway: Gateway) -> int:
        """``imagegw show TASK``."""
        info = gateway.get_task(self.args.task_id)
        self.emit(info.raw, describe(info))
        return EXIT_OK

    def cmd_cancel(self, gateway: Gateway) -> int:
        """``imagegw cancel TASK``."""
        info = gateway.cancel(self.args.task_id)
        self.emit(info.raw, f"{info.task_id} {info.status}")
        return EXIT_OK

    def cmd_list(self, gateway: Gateway) -> int:
        """``imagegw list``."""
        rows = list(gateway.tasks(limit=None if self.args.all else self.args.limit))
        lines = [
            [
                r.task_id,
                r.status,
                r.operation,
                r.provider,
                f"{r.size_requested or 'auto'} -> {r.size_produced or '-'}",
                "-" if r.cost_estimate_usd is None else f"${r.cost_estimate_usd:.3f}",
                seconds(r.duration_ms / 1000) if r.duration_ms is not None else "-",
                stamp(r.created_at) if r.created_at else "-",
                r.error.code if r.error else "",
            ]
            for r in rows
        ]
        header = ["task", "status", "op", "provider", "size asked -> made", "cost", "took",
                  "created", "error"]  # fmt: skip
        self.emit([r.raw for r in rows], table(header, lines) if rows else "no tasks yet")
        return EXIT_OK

    def cmd_providers(self, gateway: Gateway) -> int:
        """``imagegw providers``."""
        found = gateway.providers()
        lines = []
        for p in found:
            caps = p.capabilities
            lines.append(
                [
                    p.name,
                    "yes" if p.enabled else "no",
                    str(p.default_rank or "-"),
                    ",".join(caps.get("modes", [])) or "-",
                    "yes" if caps.get("callback") else "no",
                    str(caps.get("max_images", "-")),
                    "yes" if caps.get("mask") else "no",
                    "yes" if p.price else "-",
                    p.breaker,
                ]
            )
        header = ["provider", "enabled", "rank", "modes", "callback", "inputs", "mask", "prices",
                  "breaker"]  # fmt: skip
        self.emit([p.__dict__ for p in found], table(header, lines))
        return EXIT_OK

    # -- batches -----------------------------------------------------------------------------
    def cmd_batch(self, gateway: Gateway) -> int:
        """``imagegw batch FILE -o DIR``: send (or resume), wait, save every image."""
        requests = read_requests(self.args.file)
        digest = requests_digest(requests)
        folder = Path(self.args.output)
        state = folder / STATE_FILE
        batch = self._resumed(gateway, state, digest)
        if batch is None:
            folder.mkdir(parents=True, exist_ok=True)
            source: dict[str, Any] = {"requests": requests}
            if len(requests) > MAX_INLINE_REQUESTS:  # too many inline: uploaded, then named
                ref = _saved(state, digest).get("input_file") or gateway.upload_batch_file(requests)
                _write_state(state, {"requests_sha256": digest, "input_file": ref})
                source = {"input_file": ref}
            batch = gateway.batch(
                **source,
                metadata=_key_values(self.args.metadata),
                callback_url=self.args.callback_url,
                idempotency_key=f"imagegw-batch-{digest[:48]}",
            )
            _write_state(
                state, {**_saved(state, digest), "batch_id": batch.id, "requests_sha256": digest}
            )
            how = "uploaded as a file" if "input_file" in source else "sent"
            self.say(f"batch {batch.id}: {len(requests):,} requests {how} ({batch.info.status})")
        if self.args.no_wait:
            self.emit(batch.info.raw, batch.id)
            return EXIT_OK
        progress = BatchProgress(self.err, live=self.err.isatty() and not self.args.quiet)
        update = (lambda info: None) if self.args.quiet else progress.update
        try:
            info = batch.wait(self.args.timeout, on_update=update)
        except KeyboardInterrupt:
            progress.close()
            self.say(f"stopped waiting; batch {batch.id} goes on: run the same command to resume")
            return EXIT_INTERRUPTED
        except BatchWaitTimeout as exc:
            progress.close()
            self.say(f"{exc.message}: run the same command again to resume")
            self.emit(exc.batch.raw, batch.id)
            return EXIT_TIMEOUT
        progress.close()
        if info.status == "failed":  # its file was refused: nothing ran, nothing was spent
            error = info.raw.get("error") or {}
            self.say(f"batch {info.batch_id} failed: {error.get('code')}: {error.get('message')}")
            self.emit(info.raw, batch.id)
            return EXIT_TASK_FAILED
        document: dict[str, Any] = {"batch": info.raw, "saved": [], "kept": [], "failed": []}
        failed = []
        if self.args.no_download:
            failed = [line for line in batch.results() if not line.outputs]
        else:
            summary = batch.download(folder)
            (folder / "results.jsonl").write_text(
                "".join(json.dumps(line.raw) + "\n" for line in summary.lines),
                encoding="utf-8",
            )
            failed = summary.without_image
            document["saved"] = [str(p) for p in summary.saved]
            document["kept"] = [str(p) for p in summary.kept]
            self.say(
                f"saved {len(summary.saved):,} images into {folder}/, kept {len(summary.kept):,} "
                f"already there; results.jsonl beside them"
            )
        document["failed"] = [line.raw for line in failed]
        for line in failed[:10]:
            error = line.error or {}
            self.say(f"  {line.custom_id}: {line.status} {error.get('code', '')}".rstrip())
        if len(failed) > 10:
            self.say(f"  ... and {len(failed) - 10:,} more (results.jsonl)")
        cost = f"${info.final_cost_usd:.3f}" if info.final_cost_usd else "no price"
        self.say(
            f"batch {info.batch_id} {info.status}: {info.counts.succeeded:,} of "
            f"{info.counts.total:,} succeeded, {len(failed):,} without an image, cost {cost}"
        )
        images = [*document["saved"], *document["kept"]]
        self.emit(document, "\n".join(sorted(images)) or str(folder))
        return EXIT_OK if not failed and info.status == "completed" else EXIT_TASK_FAILED

    def _resumed(self, gateway: Gateway, state: Path, digest: str) -> Batch | None:
        """The batch an earlier run of the same file sent into this folder, if any."""
        saved = _saved(state, digest)
        if "batch_id" not in saved:
            return None
        try:
            info = gateway.get_batch(str(saved["batch_id"]))
        except NotFound:
            return None
        self.say(f"resuming batch {info.batch_id} ({info.status}, {info.counts.done:,} of "
                 f"{info.counts.total:,} done)")  # fmt: skip
        return Batch(gateway, info)

    def cmd_batches(self, gateway: Gateway) -> int:
        """``imagegw batches``."""
        rows = list(gateway.batches(limit=self.args.limit))
        lines = [
            [
                b.batch_id,
                b.status,
                f"{b.counts.done:,}/{b.counts.total:,}",
                f"{b.counts.succeeded:,}",
                f"{b.counts.unsuccessful:,}",
                f"${b.final_cost_usd or b.estimated_cost_usd:.3f}",
                stamp(b.created_at) if b.created_at else "-",
            ]
            for b in rows
        ]
        header = ["batch", "status", "done", "succeeded", "without image", "cost", "created"]
        self.emit([b.raw for b in rows], table(header, lines) if rows else "no batches yet")
        return EXIT_OK

    def cmd_batch_cancel(self, gateway: Gateway) -> int:
        """``imagegw batch-cancel BATCH``."""
        info = gateway.cancel_batch(self.args.batch_id)
        self.emit(info.raw, f"{info.batch_id} {info.status}")
        return EXIT_OK

    # -- waiting ------------------------------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        a = self.args
        options: dict[str, Any] = {
            "size": a.size,
            "aspect_ratio": a.aspect,
            "resolution": a.resolution,
            "size_policy": a.size_policy,
            "quality": a.quality,
            "background": a.background,
            "output_format": a.output_format,
            "output_compression": a.output_compression,
            "n": a.n,
        }
        if a.provider and len(a.provider) == 1:
            options["provider"] = a.provider[0]
        elif a.provider:
            options["providers"] = a.provider
        metadata = _key_values(a.metadata)
        if metadata:
            options["metadata"] = metadata
        return {k: v for k, v in options.items() if v is not None}

    def _submitted(self, task: Task) -> int:
        if self.args.no_wait:
            self.say(f"submitted {task.id} ({task.status}); imagegw wait {task.id}")
            self.emit(task.info.raw, task.id)
            return EXIT_OK
        return self._wait(task)

    def _wait(self, task: Task) -> int:
        progress = Progress(self.err, live=self.err.isatty() and not self.args.quiet)
        update = (lambda info: None) if self.args.quiet else progress.update
        try:
            with _ticking(progress):
                info = task.wait(self.args.timeout, on_update=update, raise_on_failure=False)
        except KeyboardInterrupt:
            progress.close()
            return self._interrupted(task)
        except WaitTimeout as exc:
            progress.close()
            self.say(
                f"still {exc.task.status} after {self.args.timeout:g} s: imagegw wait {task.id}"
            )
            self.emit(exc.task.raw, task.id)
            return EXIT_TIMEOUT
        progress.close()
        if not info.succeeded:
            error = info.error
            reason = f"{error.code}: {error.message}" if error else info.status
            self.say(f"{info.task_id} {info.status}: {reason}")
            self.emit(info.raw, "")
            return EXIT_TASK_FAILED
        files: list[str] = []
        if not self.args.no_download:
            for path, output in zip(task.download_all(self.args.output), info.outputs, strict=True):
                self.say(
                    f"saved {path}  {output.width}x{output.height} {output.content_type}, "
                    f"{output.bytes / 1e6:.2f} MB, sha256 ok"
                )
                files.append(str(path))
        if info.error is not None:  # succeeded with fewer images than asked for (n)
            self.say(f"{info.error.code}: {info.error.message}")
        self.emit({**info.raw, "files": files}, "\n".join(files) or info.task_id)
        return EXIT_OK

    def _interrupted(self, task: Task) -> int:
        assert self.gateway is not None
        if sys.stdin is not None and sys.stdin.isatty():
            self.err.write(f"Cancel task {task.id} at the gateway? [y/N] ")
            self.err.flush()
            try:
                answer = sys.stdin.readline().strip().lower()
            except KeyboardInterrupt:
                answer = ""
            if answer in ("y", "yes"):
                try:
                    info = self.gateway.cancel(task.id)
                    self.err.write(f"{info.task_id} {info.status}\n")
                    self.emit(info.raw, "")
                except Conflict as exc:  # it finished meanwhile
                    self.err.write(f"not cancelled: {exc}\n")
                return EXIT_INTERRUPTED
        self.err.write(f"stopped waiting; the task goes on: imagegw wait {task.id}\n")
        return EXIT_INTERRUPTED


def _key_values(items: list[str]) -> dict[str, str]:
    """``--metadata KEY=VALUE`` flags as a dict."""
    found = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"--metadata wants KEY=VALUE, got {item!r}")
        found[name] = value
    return found


@contextmanager
def _ticking(progress: Progress, every: float = 0.1) -> Iterator[None]:
    """Redraw the live line (or print heartbeats) from a thread while the wait sleeps."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            progress.tick()

    thread = threading.Thread(target=run, name="imagegw-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1)


def table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell."""
    widths = [max(len(c) for c in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]  # fmt: skip
    return "\n".join(lines)


def describe(info: TaskInfo) -> str:
    """``imagegw show``: the task, its history and its attempts, for people."""
    cost = "no price" if info.cost_estimate_usd is None else f"${info.cost_estimate_usd:.3f}"
    took = seconds(info.duration_ms / 1000) if info.duration_ms is not None else "still open"
    ended = f", finished by {info.finished_by}" if info.finished_by else ""
    inputs = f", {info.input_images} input image(s)" if info.input_images else ""
    lines = [
        f"task      {info.task_id}",
        f"status    {info.status}",
        f"prompt    {info.prompt}",
        f"operation {info.operation}{inputs}",
        f"asked     quality {info.quality or '-'}, format {info.output_format or '-'}",
        f"provider  {info.provider} ({info.path or 'not yet submitted'}{ended})",
        f"size      asked {info.size_requested or 'auto'}, sent {info.size_sent or '-'}, "
        f"made {info.size_produced or '-'}",
        f"cost      {cost}",
        f"took      {took}"
        + (f" (typically {seconds(info.expected_seconds)})" if info.expected_seconds else ""),
    ]
    if info.error:
        lines.append(f"error     {info.error.code}: {info.error.message}")
    for output in info.outputs:
        lines.append(f"image     {output.width}x{output.height} {output.content_type} "
                     f"{output.bytes} bytes sha256 {output.sha256}")  # fmt: skip
        lines.append(f"          {output.url}")
    lines.append("history")
    lines += [f"  {stamp(c.at)}  {c.status:<10} {c.by}" for c in info.history]
    if info.attempts:
        lines.append("attempts")
        for a in info.attempts:
            error = f"  {a.error.code}: {a.error.message}" if a.error else ""
            when = stamp(a.at) if a.at else "-"
            until = f" until {stamp(a.finished_at)}" if a.finished_at else ""
            lines.append(f"  {when}  {a.provider:<16} {a.outcome:<10}"
                         f"{a.provider_task_id or ''}{until}{error}")  # fmt: skip
    return "\n".join(lines)


def exit_code(error: ImagegwError) -> int:
    """The exit code of an error that stopped the command."""
    if isinstance(error, ServerError | ConnectionFailed | IntegrityError):
        return EXIT_CONNECTION
    if isinstance(error, ApiError | InputError | ConfigError):
        return EXIT_BAD_INPUT
    return EXIT_CONNECTION


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``imagegw`` command."""
    args = build_parser().parse_args(argv)  # usage errors exit 2
    cli = Cli(args, sys.stdout, sys.stderr)
    try:
        return cli.run()
    except ImagegwError as error:
        code = exit_code(error)
        sys.stderr.write(f"imagegw: {error}\n")
        source = cli.gateway.source if cli.gateway is not None else ""
        if isinstance(error, ConnectionFailed) and source.endswith("stack.json"):
            sys.stderr.write(f"imagegw: the gateway came from {source}: is devstack running?\n")
        if args.json:
            body: dict[str, Any] = {"code": error.code, "message": error.message}
            if isinstance(error, ApiError):  # the gateway's details, then its HTTP status
                body = {**error.details, **body, "http_status": error.status}
            sys.stdout.write(json.dumps({"error": body, "exit_code": code}, indent=2) + "\n")
        return code
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())


def _saved(state: Path, digest: str) -> dict[str, Any]:
    """What an earlier run of the same file wrote into the folder's state file (or nothing)."""
    try:
        saved = json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(saved, dict) or saved.get("requests_sha256") != digest:
        return {}
    return saved


def _write_state(state: Path, saved: dict[str, Any]) -> None:
    state.write_text(json.dumps(saved) + "\n", encoding="utf-8")
