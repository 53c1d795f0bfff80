"""A local HTTP API: turns real HTTP requests into API Gateway HTTP API (payload 2.0) events.

Routes come from the ``HttpApi`` events of template.yaml; each request is one invocation through
the function runtime, and requests are served concurrently. Unknown routes answer 404 and a
failed invocation 500, like API Gateway does.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devstack.runtime import FunctionError, FunctionRuntime

MAX_BODY = 10 * 1024 * 1024  # API Gateway HTTP API payload limit
_log = logging.getLogger("devstack")


@dataclass(frozen=True)
class Route:
    """``METHOD /path/{param}`` -> function."""

    method: str
    path: str
    function: str

    @property
    def pattern(self) -> re.Pattern[str]:
        """The path as a regex with one named group per parameter."""
        regex = re.sub(r"\{([A-Za-z0-9_]+)\}", r"(?P<\1>[^/]+)", self.path)
        return re.compile(f"^{regex}$")


class _Server(ThreadingHTTPServer):
    """One thread per request; a listen backlog for bursts (socketserver's default is 5)."""

    daemon_threads = True
    request_queue_size = 128


class LocalHttpApi:
    """Serves the stack's routes on 127.0.0.1."""

    max_body = MAX_BODY

    def __init__(self, runtime: FunctionRuntime, routes: list[Route], port: int = 0) -> None:
        self.runtime = runtime
        self._routes = list(routes)
        self._server = _Server(("127.0.0.1", port), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which must be running
            self._server.shutdown()
        self._server.server_close()

    def set_routes(self, routes: list[Route]) -> None:
        """Serve these routes (they are known once the functions are provisioned)."""
        self._routes = list(routes)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for a request and its path parameters."""
        for route in self._routes:
            if route.method != method:
                continue
            found = route.pattern.match(path)
            if found:
                return route, found.groupdict()
        return None

    def to_event(
        self,
        method: str,
        raw_url: str,
        headers: dict[str, str],
        body: bytes,
        route: Route,
        params: dict[str, str],
        host: str,
    ) -> dict[str, Any]:
        """The API Gateway v2 event for this request."""
        parts = urlsplit(raw_url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        text_body: str | None
        is_b64 = False
        if not body:
            text_body = None
        else:
            try:
                text_body = body.decode("utf-8")
            except UnicodeDecodeError:
                text_body, is_b64 = base64.b64encode(body).decode(), True
        now = time.time()
        return {
            "version": "2.0",
            "routeKey": f"{route.method} {route.path}",
            "rawPath": parts.path,
            "rawQueryString": parts.query,
            "headers": headers,
            "queryStringParameters": query or None,
            "pathParameters": params or None,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "devstack",
                "domainName": host,
                "domainPrefix": host.split(".")[0],
                "http": {
                    "method": method,
                    "path": parts.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": f"{route.method} {route.path}",
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "body": text_body,
            "isBase64Encoded": is_b64,
        }

    def arriving_size(self, length: int, content_type: str) -> int:
        """How large a body of ``length`` bytes is when it reaches the function."""
        return length

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the demo prints what matters."""

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if api.arriving_size(length, self.headers.get("content-type", "")) > api.max_body:
                    self._reply(413, {"message": "Request Entity Too Large"})
                    return
                body = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path
                found = api.match(self.command, path)
                if found is None:
                    self._reply(404, {"message": "Not Found"})
                    return
                route, params = found
                headers = {k.lower(): v for k, v in self.headers.items()}
                host = headers.get("host", "127.0.0.1")
                event = api.to_event(self.command, self.path, headers, body, route, params, host)
                try:
                    result = api.runtime.invoke(route.function, event)
                except FunctionError as error:  # the worker logged the handler's traceback
                    # the route, never the path: a provider callback's path carries its token
                    _log.warning("%s %s: %s", self.command, route.path, error)
                    self._reply(500, {"message": "Internal Server Error"})
                    return
                except Exception:
                    self._reply(500, {"message": "Internal Server Error"})
                    raise
                try:
                    self._reply_lambda(result)
                except (BrokenPipeError, ConnectionResetError):  # its caller gave up waiting
                    _log.warning(
                        "%s %s: the caller hung up before the answer", self.command, route.path
                    )

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _reply_lambda(self, result: dict[str, Any]) -> None:
                body = result.get("body") or ""
                data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
                self.send_response(int(result.get("statusCode", 200)))
                for key, value in (result.get("headers") or {}).items():
                    if key.lower() != "content-length":
                        self.send_header(key, str(value))
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def __getattr__(self, name: str) -> Any:
                # Any method (TRACE, QUERY...) is matched against the routes: one no route
                # takes gets API Gateway's 404, as on AWS, not http.server's 501.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        return Handler


_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024  # what one synchronous invocation takes


class LocalFunctionUrl(LocalHttpApi):
    """A Lambda function URL on its own port: every method and path goes to one function.

    Events are payload 2.0 with the ``$default`` route, and bodies of non-text media types
    (multipart included) are base64-encoded, as Lambda sends them. A body over Lambda's 6 MB
    invocation limit once encoded gets Lambda's own 413 (multipart: about 4.5 MiB sent).
    """

    max_body = LAMBDA_PAYLOAD_LIMIT

    def __init__(self, runtime: FunctionRuntime, function: str, port: int = 0) -> None:
        super().__init__(runtime, routes=[Route("ANY", "$default", function)], port=port)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """Every request is the function's."""
        return self._routes[0], {}

    def arriving_size(self, length: int, content_type: str) -> int:
        """A body Lambda base64-encodes (any but text) grows by a third on the way: a 4.5 MB
        multipart upload is already over the 6 MB limit."""
        textual = content_type.lower().startswith(_TEXT_TYPES)
        return length if textual else 4 * math.ceil(length / 3)

    def to_event(
        self,
        method: str,
        raw_url: str,
        headers: dict[str, str],
        body: bytes,
        route: Route,
        params: dict[str, str],
        host: str,
    ) -> dict[str, Any]:
        """A function URL event: ``$default`` route, binary bodies base64-encoded."""
        event = super().to_event(method, raw_url, headers, body, route, params, host)
        event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
        event["pathParameters"] = None
        textual = headers.get("content-type", "").lower().startswith(_TEXT_TYPES)
        if body and not textual and not event["isBase64Encoded"]:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        return event
