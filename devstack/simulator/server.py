"""The simulator's HTTP server: routes to the provider simulators, plus the `/_sim` admin API."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol, cast
from urllib.parse import parse_qsl, urlsplit

import httpx

from devstack.simulator import apimart, apimodels, mountsea, openai_compat, pmock
from devstack.simulator.callbacks import CallbackScheduler, WebhookSender
from devstack.simulator.faults import ACTIVE_PROFILES, Profile, RuntimeProfiles
from devstack.simulator.render import ImageDownloader
from devstack.simulator.tasks import TaskStore
from devstack.simulator.wire import (
    MULTIPART_FORM,
    FormData,
    SimRequest,
    SimResponse,
    json_response,
    media_type,
    parse_form,
)

MAX_REQUEST_BYTES: Final = 256 * 1024 * 1024
"""Largest request body accepted (16 base64 input images fit)."""

LOGGED_STRING_CHARS: Final = 200
"""Strings in logged request bodies are cut to this length (data URLs are huge)."""

_log = logging.getLogger(__name__)


class ProviderHandler(Protocol):
    """What a provider simulator offers the server."""

    def handle(self, request: SimRequest) -> SimResponse:
        """Answer one request whose path is relative to the provider's prefix."""
        ...


@dataclass(frozen=True)
class SimulatorParts:
    """What the provider simulators share: one task store, one callback sender, the settings."""

    store: TaskStore
    scheduler: CallbackScheduler
    sender: WebhookSender
    api_key: str
    time_scale: float
    stop: threading.Event
    base_url: Callable[[str], Callable[[], str]]
    """Provider name -> a function giving that provider's base URL once the server runs."""


@dataclass(frozen=True)
class Mount:
    """Where one provider's dialect is served, and how its simulator is built."""

    provider: str
    prefix: str
    """The provider's base URL path; the handler sees request paths relative to it."""
    build: Callable[[SimulatorParts], ProviderHandler]
    scope: str = ""
    """The part of the paths below `prefix` this mount answers ("" = all of them)."""

    @property
    def root(self) -> str:
        """The path this mount answers at and below."""
        return self.prefix + self.scope

    def answers(self, path: str) -> bool:
        """True for a path at or below `prefix + scope`."""
        return path == self.root or path.startswith(self.root + "/")


def _openai_dialect(provider: str, api_root: str) -> Callable[[SimulatorParts], ProviderHandler]:
    """The builder of a mount of the sync OpenAI Images dialect under ``api_root``."""

    def build(parts: SimulatorParts) -> ProviderHandler:
        return openai_compat.OpenAICompatSimulator(
            provider=provider,
            api_root=api_root,
            store=parts.store,
            api_key=parts.api_key,
            time_scale=parts.time_scale,
            stop=parts.stop,
        )

    return build


MOUNTS: Final[tuple[Mount, ...]] = (
    Mount(
        apimart.PROVIDER,
        apimart.PREFIX,
        lambda parts: apimart.ApimartSimulator(
            store=parts.store,
            scheduler=parts.scheduler,
            sender=parts.sender,
            base_url=parts.base_url(apimart.PROVIDER),
            api_key=parts.api_key,
            time_scale=parts.time_scale,
            stop=parts.stop,
        ),
    ),
    Mount(
        mountsea.PROVIDER,
        mountsea.PREFIX,
        lambda parts: mountsea.MountseaAsyncSimulator(
            store=parts.store, api_key=parts.api_key, time_scale=parts.time_scale, stop=parts.stop
        ),
    ),
    Mount(
        openai_compat.MOUNTSEA_COMPAT,
        mountsea.PREFIX,
        _openai_dialect(openai_compat.MOUNTSEA_COMPAT, openai_compat.MOUNTSEA_COMPAT_API_ROOT),
        scope=openai_compat.MOUNTSEA_COMPAT_API_ROOT,
    ),
    Mount(
        pmock.PROVIDER,
        pmock.PREFIX,
        lambda parts: pmock.PmockSimulator(
            store=parts.store, api_key=parts.api_key, time_scale=parts.time_scale, stop=parts.stop
        ),
    ),
    Mount(
        apimodels.PROVIDER,
        apimodels.PREFIX,
        lambda parts: apimodels.ApimodelsSimulator(
            store=parts.store,
            scheduler=parts.scheduler,
            sender=parts.sender,
            base_url=parts.base_url(apimodels.PROVIDER),
            api_key=parts.api_key,
            time_scale=parts.time_scale,
            stop=parts.stop,
        ),
    ),
    Mount(
        openai_compat.OPENAI,
        openai_compat.OPENAI_PREFIX,
        _openai_dialect(openai_compat.OPENAI, openai_compat.OPENAI_API_ROOT),
    ),
)
"""Every simulated provider: one row each. A new provider is a module and a row here."""


class ProviderSimulator:
    """Fake image providers behind one local HTTP server, each speaking its own dialect.

    Providers and their base URLs (`provider_base_url`): `apimart` (`/apimart`, async + webhook),
    `mountsea-async` (`/mountsea`, async), `mountsea-compat` (`/mountsea` too, the sync OpenAI
    clone below `/mountsea/openai/v1`), `pmock` (`/pmock`, async, code/message envelope),
    `apimodels` (`/apimodels`, sync or async + callback) and `openai` (`/openai`, sync).

    `time_scale` multiplies every simulated latency (1.0 = the documented real-world latency;
    0.02 finishes a task in about a second); a synchronous endpoint holds its request that
    long. Every provider request needs `Authorization: Bearer <api_key>` (result files aside).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        api_key: str = "sim-key",
        *,
        max_tasks: int = 5000,
        max_image_bytes: int = 1 << 30,
        max_logged_requests: int = 10_000,
    ) -> None:
        if time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        self.host = host
        self.time_scale = time_scale
        self.api_key = api_key
        self._requested_port = port
        self._stop = threading.Event()
        self._journal = _Journal(max_logged_requests)
        self.profiles = RuntimeProfiles()
        """Runtime profiles per provider (``/_sim/profile``): latency and failure rate."""
        self._client = httpx.Client(trust_env=False)
        self._store = TaskStore(ImageDownloader(self._client), max_tasks, max_image_bytes)
        self._scheduler = CallbackScheduler()
        sender = WebhookSender(
            self._client,
            self._scheduler,
            self._journal.record_callback,
            retry_delay_s=max(0.05, 1.0 * time_scale),
        )
        parts = SimulatorParts(
            store=self._store,
            scheduler=self._scheduler,
            sender=sender,
            api_key=api_key,
            time_scale=time_scale,
            stop=self._stop,
            base_url=lambda provider: lambda: self.provider_base_url(provider),
        )
        self._mounts = {mount.provider: mount for mount in MOUNTS}
        self._handlers = {mount.provider: mount.build(parts) for mount in MOUNTS}
        # The most specific mount answers first (mountsea-compat before mountsea-async).
        self._routes = sorted(MOUNTS, key=lambda mount: -len(mount.root))
        self._server: _SimHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port served on (the one picked when constructed with port=0)."""
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """`http://<host>:<port>` of the running simulator."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    @property
    def providers(self) -> tuple[str, ...]:
        """The names of the simulated providers."""
        return tuple(self._mounts)

    def provider_base_url(self, provider: str) -> str:
        """Base URL of one provider (see the class docstring for the names and their paths)."""
        if provider not in self._mounts:
            raise ValueError(f"unknown provider {provider!r}; known: {sorted(self._mounts)}")
        return self.base_url + self._mounts[provider].prefix

    def render_ahead(self, task_id: str) -> bool:
        """Render now the result of a done task (any provider's task id): see
        :meth:`TaskStore.render_ahead`."""
        return self._store.render_ahead(task_id)

    def start(self) -> None:
        """Serve in a daemon thread."""
        if self._server is not None or self._stop.is_set():
            raise RuntimeError("a simulator can be started only once")
        self._server = _SimHTTPServer((self.host, self._requested_port), self)
        self._scheduler.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="provider-simulator",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, drop open connections and pending callbacks."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_open_connections()
            self._server.server_close()
        self._scheduler.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._client.close()

    def __enter__(self) -> ProviderSimulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def stopped(self) -> bool:
        """True once stop() has been called."""
        return self._stop.is_set()

    def respond(
        self, method: str, path: str, query_string: str, headers: Mapping[str, str], body: bytes
    ) -> SimResponse:
        """Answer one HTTP request (headers keyed by their original names)."""
        if path.startswith("/_sim/"):
            return self._admin(method, path, body)
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        lowered = {name.lower(): value for name, value in headers.items()}
        mount = self._route(path)
        entry: dict[str, Any] = {
            "time": time.time(),
            "provider": mount.provider if mount else None,
            "method": method,
            "path": path,
            "query": query,
            "headers": list(headers),
            "body": _loggable_body(lowered.get("content-type", ""), body),
            "status": None,
        }
        self._journal.record_request(entry)
        if mount is None:
            response = json_response(404, {"error": f"no such path: {path}"})
        else:
            request = SimRequest(method, path[len(mount.prefix) :] or "/", query, lowered, body)
            active = ACTIVE_PROFILES.set(self.profiles)  # this simulator's runtime profiles
            try:
                response = self._handlers[mount.provider].handle(request)
            except Exception:  # A simulator bug must answer 500, not drop the connection.
                _log.exception("simulator failed on %s %s", method, path)
                response = json_response(500, {"error": "simulator internal error"})
            finally:
                ACTIVE_PROFILES.reset(active)
        entry["status"] = response.status
        return response

    def _route(self, path: str) -> Mount | None:
        return next((mount for mount in self._routes if mount.answers(path)), None)

    def _admin(self, method: str, path: str, body: bytes = b"") -> SimResponse:
        if path == "/_sim/profile":
            return self._profile(method, body)
        if method == "GET" and path == "/_sim/health":
            return json_response(200, {"ok": True})
        if method == "GET" and path == "/_sim/requests":
            return json_response(200, self._journal.requests())
        if method == "GET" and path == "/_sim/callbacks":
            return json_response(200, self._journal.callbacks())
        if method == "POST" and path == "/_sim/reset":
            self._journal.reset()
            return json_response(200, {"ok": True})
        return json_response(404, {"error": f"no such admin endpoint: {method} {path}"})

    def _profile(self, method: str, body: bytes) -> SimResponse:
        """``/_sim/profile``: POST sets one provider's, DELETE resets all, GET shows them."""
        if method == "GET":
            return json_response(200, self.profiles.show())
        if method == "DELETE":
            self.profiles.reset()
            return json_response(200, self.profiles.show())
        if method != "POST":
            return json_response(405, {"error": "GET, POST or DELETE /_sim/profile"})
        try:
            provider, profile = Profile.parse(json.loads(body or b"null"))
            self.provider_base_url(provider)  # ValueError for an unknown provider
        except ValueError as exc:
            return json_response(400, {"error": str(exc)})
        self.profiles.set(provider, profile)
        return json_response(200, self.profiles.show())


class _Journal:
    """The requests received and the callbacks attempted, for `/_sim/requests|callbacks`."""

    def __init__(self, max_entries: int) -> None:
        self._requests: deque[dict[str, Any]] = deque(maxlen=max_entries)
        self._callbacks: deque[dict[str, Any]] = deque(maxlen=max_entries)
        self._lock = threading.Lock()

    def record_request(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(entry)

    def record_callback(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._callbacks.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._requests]

    def callbacks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._callbacks]

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._callbacks.clear()


def _loggable_body(content_type: str, body: bytes) -> Any:
    """The body for the request log: JSON or a form summary, long strings cut; else None."""
    if not body:
        return None
    if media_type(content_type) == MULTIPART_FORM:
        try:
            return _form_summary(parse_form(content_type, body))
        except ValueError:
            return None
    try:
        return _shorten(json.loads(body))
    except ValueError:
        return None


def _form_summary(form: FormData) -> dict[str, Any]:
    """A multipart body as {name: value}: text fields cut short, files as name + size only.

    A name sent more than once (`image[]`) maps to the list of its values.
    """
    summary: dict[str, list[Any]] = {}
    for name, value in form.fields:
        summary.setdefault(name, []).append(_shorten(value))
    for part in form.files:
        described = {"filename": part.filename, "content_type": part.content_type}
        summary.setdefault(part.field, []).append({**described, "bytes": len(part.data)})
    return {name: values[0] if len(values) == 1 else values for name, values in summary.items()}


def _shorten(value: Any) -> Any:
    if isinstance(value, str) and len(value) > LOGGED_STRING_CHARS:
        return f"{value[:LOGGED_STRING_CHARS]}...[{len(value)} chars]"
    if isinstance(value, list):
        return [_shorten(item) for item in value]
    if isinstance(value, dict):
        return {key: _shorten(item) for key, item in value.items()}
    return value


class _BadRequestBody(Exception):
    """The request body is malformed or too large."""


class _SimHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its simulator and its open connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulator: ProviderSimulator) -> None:
        self.simulator = simulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def track(self, connection: socket.socket, is_open: bool) -> None:
        """Remember (or forget) a client connection so stop() can cut it."""
        with self._connections_lock:
            if is_open:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_open_connections(self) -> None:
        """Cut keep-alive connections, so no request is served after stop()."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # Already closed by the client.
                connection.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    """Reads a request, hands it to the simulator, writes the response."""

    protocol_version = "HTTP/1.1"
    server_version = "ProviderSimulator/1.0"
    timeout = 120  # An idle keep-alive connection releases its thread eventually.

    @property
    def _sim_server(self) -> _SimHTTPServer:
        return cast(_SimHTTPServer, self.server)

    def setup(self) -> None:
        super().setup()
        self._sim_server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._sim_server.track(self.connection, False)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s - " + format, self.address_string(), *args)

    def _dispatch(self) -> None:
        simulator = self._sim_server.simulator
        if simulator.stopped:
            self.close_connection = True
            return
        try:
            body = self._read_body()
        except _BadRequestBody as exc:
            self.close_connection = True
            self._write(json_response(400, {"error": str(exc)}))
            return
        parts = urlsplit(self.path)
        headers = dict(self.headers.items())
        response = simulator.respond(self.command, parts.path, parts.query, headers, body)
        if simulator.stopped:
            self.close_connection = True
            return
        self._write(response)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            raise _BadRequestBody("invalid Content-Length") from exc
        if length < 0 or length > MAX_REQUEST_BYTES:
            raise _BadRequestBody(f"request body must be 0-{MAX_REQUEST_BYTES} bytes")
        return self.rfile.read(length)

    def _read_chunked_body(self) -> bytes:
        body = bytearray()
        while True:
            try:
                size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
            except ValueError as exc:
                raise _BadRequestBody("invalid chunked body") from exc
            if size == 0:
                while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                    pass  # Skip trailers.
                return bytes(body)
            if len(body) + size > MAX_REQUEST_BYTES:
                raise _BadRequestBody(f"request body must be at most {MAX_REQUEST_BYTES} bytes")
            body += self.rfile.read(size)
            self.rfile.readline(1024)

    def _write(self, response: SimResponse) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(response.content_length))
            self.end_headers()
            for chunk in response.chunks:
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
