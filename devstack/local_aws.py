"""Local AWS: moto in server mode on 127.0.0.1 (the real wire protocol), for every process.

The handlers' worker processes, the tests and the demo all reach it through
``AWS_ENDPOINT_URL``. Step Functions executes state machines (moto's opt-in), and every
DynamoDB request is answered one at a time: DynamoDB makes each request atomic (a conditional
write checks and writes as one step), moto does not when requests arrive concurrently.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import httpx

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AtomicDynamoDB:
    """WSGI middleware: one DynamoDB request at a time, everything else concurrently.

    SQS long polls and the rest must stay concurrent; DynamoDB requests are short.
    """

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Answer one request (DynamoDB's under the lock, its body read inside it)."""
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            return list(self._app(environ, start_response))


_TARGET_SERVICES = {
    "DynamoDB_20120810": "dynamodb",
    "AmazonSQS": "sqs",
    "AWSEvents": "events",
    "AWSStepFunctions": "states",
    "secretsmanager": "secretsmanager",
    "AmazonSSM": "ssm",
    "TrentService": "kms",
}


def request_name(environ: dict[str, Any]) -> str:
    """``service:Operation`` of one AWS request, as far as its headers and URL tell without
    reading its body (JSON protocols name it in ``X-Amz-Target``; S3 is ``s3:<METHOD>``)."""
    if "HTTP_X_BENCH_PROBE" in environ:  # bench/scale.py's pause probe
        return "bench:probe"
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        prefix, _, operation = target.partition(".")
        return f"{_TARGET_SERVICES.get(prefix, prefix)}:{operation}"
    action = parse_qs(str(environ.get("QUERY_STRING", ""))).get("Action")
    if action:
        return f"query:{action[0]}"
    if str(environ.get("PATH_INFO", "")).startswith("/moto-api"):
        return "moto-api"
    return f"s3:{environ.get('REQUEST_METHOD', '?')}"


def access_key(environ: dict[str, Any]) -> str:
    """The access key id that signed a request (SigV4's ``Credential=`` in its Authorization
    header, or a presigned URL's ``X-Amz-Credential``); ``-`` when unsigned. With IAM on, each
    function signs with its own role's key, so this says which function made the request."""
    header = str(environ.get("HTTP_AUTHORIZATION", ""))
    _, found, rest = header.partition("Credential=")
    if found:
        return rest.split("/", 1)[0]
    presigned = parse_qs(str(environ.get("QUERY_STRING", ""))).get("X-Amz-Credential")
    return presigned[0].split("/", 1)[0] if presigned else "-"


class RequestCounter:
    """WSGI middleware: how many requests of each ``service:Operation`` moto answered, by the
    access key that signed them (the bench's calls per task at volume, and whose); a dict
    increment under a lock per request."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Count the request, then answer it."""
        key = (access_key(environ), request_name(environ))
        with self._lock:
            self._counts[key] += 1
        return self._app(environ, start_response)

    def snapshot(self) -> Counter[str]:
        """The counts so far by ``service:Operation`` (a copy: subtract two snapshots for a
        span of work)."""
        with self._lock:
            out: Counter[str] = Counter()
            for (_, name), n in self._counts.items():
                out[name] += n
            return out

    def snapshot_by_key(self) -> Counter[tuple[str, str]]:
        """The counts so far by (access key id, ``service:Operation``), a copy."""
        with self._lock:
            return Counter(self._counts)


class LocalAws:
    """moto's server on a free port of 127.0.0.1, and the variables that point clients at it."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.port = free_port()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.requests: RequestCounter | None = None
        """Requests answered, by ``service:Operation`` (set by :meth:`start`)."""

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def environment(self) -> dict[str, str]:
        """What boto3 needs to use this moto (fake credentials, region, endpoint)."""
        return {
            "AWS_ACCESS_KEY_ID": "devstack",
            "AWS_SECRET_ACCESS_KEY": "devstack",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.url,
        }

    def start(self) -> None:
        """Serve moto in a daemon thread and turn on Step Functions' execution of states."""
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from devstack import moto_patches

        moto_patches.apply()  # transactions that cost the same whatever the table holds
        moto_patches.apply_server()  # a request's service found once per host, not each time
        app = RequestCounter(AtomicDynamoDB(DomainDispatcherApplication(create_backend_app)))
        self.requests = app
        self._server = make_server(
            "127.0.0.1", self.port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="moto-server", daemon=True
        )
        self._thread.start()
        httpx.post(
            f"{self.url}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
        ).raise_for_status()

    def stop(self) -> None:
        """Forget every resource (moto's backends live as long as the process: a later stack in
        the same process, like each of ``make bench``'s figures, starts empty), stop serving."""
        if self._server is not None:
            # IAM enforcement is moto's process-wide setting: a later stack provisions unchecked
            httpx.post(f"{self.url}/moto-api/reset-auth", content=b"inf", timeout=30)
            httpx.post(f"{self.url}/moto-api/reset", timeout=30).raise_for_status()
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
