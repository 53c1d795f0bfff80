"""SafeFetcher: downloads public images and refuses anything that could reach a private network.

A real HTTP server on 127.0.0.1 stands in for a provider's CDN (allowlisted, as devstack's
simulator is); name resolution for public names is faked so that no test leaves the machine.
"""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest
from image_gateway.errors import DownloadFailed, PayloadTooLarge, UnsafeUrl
from image_gateway.fetch import SafeFetcher
from PIL import Image


def png_bytes() -> bytes:
    """A real 64x64 PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "purple").save(buffer, "PNG")
    return buffer.getvalue()


PNG = png_bytes()


class ImageServer(BaseHTTPRequestHandler):
    """Serves a PNG, errors and redirects, like a provider's file host could."""

    routes: ClassVar[dict[str, Callable[[ImageServer], None]]] = {}

    def do_GET(self) -> None:
        """Dispatch on the path, query string ignored."""
        path = self.path.split("?", 1)[0]
        self.routes.get(path, ImageServer.not_found)(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""

    def send_body(self, status: int, body: bytes, *, with_length: bool = True) -> None:
        """Send a status and a body (without Content-Length when asked: read until close)."""
        self.send_response(status)
        self.send_header("Content-Type", "image/png")
        if with_length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str) -> None:
        """Send a 302 to location."""
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def server_port(self) -> int:
        """The port this server listens on."""
        assert isinstance(self.server, ThreadingHTTPServer)
        return self.server.server_port

    def not_found(self) -> None:
        """404."""
        self.send_body(404, b"no such image")


ImageServer.routes = {
    "/image.png": lambda h: h.send_body(200, PNG),
    "/image-no-length.png": lambda h: h.send_body(200, PNG, with_length=False),
    "/unavailable": lambda h: h.send_body(503, b"try later"),
    "/rate-limited": lambda h: h.send_body(429, b"slow down"),
    "/redirect-to-image": lambda h: h.redirect("/image.png"),
    "/redirect-to-metadata": lambda h: h.redirect("https://169.254.169.254/latest/meta-data/"),
    "/redirect-to-localhost": lambda h: h.redirect(f"http://localhost:{h.server_port()}/image.png"),
    "/redirect-loop": lambda h: h.redirect("/redirect-loop"),
}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """Base URL of a real HTTP server on 127.0.0.1 (random port)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ImageServer)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def fetcher(server: str) -> Iterator[SafeFetcher]:
    """A fetcher that allows exactly the local server's host:port."""
    with SafeFetcher(frozenset({server.removeprefix("http://")})) as safe_fetcher:
        yield safe_fetcher


def download(fetcher: SafeFetcher, url: str) -> bytes:
    """The whole body of url."""
    with fetcher.stream(url) as chunks:
        return b"".join(chunks)


class RecordingTransport(httpx.BaseTransport):
    """Records requests and answers each with the response a handler builds."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler or (lambda request: httpx.Response(200, content=PNG))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Record, then answer."""
        self.requests.append(request)
        return self.handler(request)


def fake_dns(monkeypatch: pytest.MonkeyPatch, *answers: list[str]) -> list[str]:
    """Make getaddrinfo answer each call with the next list of addresses; returns names asked."""
    asked: list[str] = []
    remaining = list(answers)

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        addresses = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://images.example.com/a.png", "only https"),
        ("ftp://images.example.com/a.png", "only https"),
        ("file:///etc/passwd", "only https"),
        ("https://user:secret@images.example.com/a.png", "credentials"),
        ("https://127.0.0.1/a.png", "loopback"),
        ("https://127.8.9.10/a.png", "loopback"),
        ("https://10.0.0.5/a.png", "private"),
        ("https://172.16.0.1/a.png", "private"),
        ("https://172.31.255.254/a.png", "private"),
        ("https://192.168.1.20/a.png", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[fd00:ec2::254]/latest/meta-data/", "private"),
        ("https://[::1]/a.png", "loopback"),
        ("https://[::ffff:127.0.0.1]/a.png", "IPv4-mapped loopback"),
        ("https://[::ffff:a9fe:a9fe]/a.png", "IPv4-mapped link-local"),
        ("https://[2002:7f00:1::]/a.png", "6to4 loopback"),
        ("https://[64:ff9b::a00:1]/a.png", "NAT64 private"),
        ("https://[fe80::1]/a.png", "link-local"),
        ("https://0.0.0.0/a.png", "unspecified"),
        ("https://224.0.0.1/a.png", "multicast"),
        ("https://100.64.0.1/a.png", "non-public"),
        ("https://localhost/a.png", "loopback"),
    ],
)
def test_unsafe_urls_are_refused_before_any_request(url: str, reason: str) -> None:
    """Given an unsafe URL, when streamed, then UnsafeUrl says why and nothing is sent."""
    transport = RecordingTransport()
    fetcher = SafeFetcher(transport=transport)

    with pytest.raises(UnsafeUrl, match=reason), fetcher.stream(url):
        pass

    assert transport.requests == []


def test_a_name_with_one_private_address_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a name resolving to a public and a private address, then it is refused."""
    fake_dns(monkeypatch, ["93.184.216.34", "10.1.2.3"])
    transport = RecordingTransport()

    with (
        pytest.raises(UnsafeUrl, match=r"10\.1\.2\.3"),
        SafeFetcher(transport=transport).stream("https://images.example.com/a.png"),
    ):
        pass

    assert transport.requests == []


def test_the_request_is_pinned_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given DNS that answers public then loopback (rebinding), then the checked IP is used,
    with the original Host header and the TLS server name of the host."""
    asked = fake_dns(monkeypatch, ["93.184.216.34"], ["127.0.0.1"])
    transport = RecordingTransport()

    body = download(SafeFetcher(transport=transport), "https://images.example.com/a.png?sig=1")

    (request,) = transport.requests
    assert body == PNG
    assert asked == ["images.example.com"]
    assert str(request.url) == "https://93.184.216.34/a.png?sig=1"
    assert request.headers["host"] == "images.example.com"
    assert request.extensions["sni_hostname"] == "images.example.com"


def test_the_next_checked_address_is_tried_when_one_does_not_connect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given two public addresses and the first refusing connections, then the second is used."""
    fake_dns(monkeypatch, ["2606:4700::1111", "93.184.216.34"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "2606:4700::1111":
            raise httpx.ConnectError("unreachable", request=request)
        return httpx.Response(200, content=PNG)

    transport = RecordingTransport(handler)

    assert download(SafeFetcher(transport=transport), "https://cdn.example.com/a.png") == PNG
    assert [r.url.host for r in transport.requests] == ["2606:4700::1111", "93.184.216.34"]


def test_allowlisted_loopback_server_serves_a_real_png(fetcher: SafeFetcher, server: str) -> None:
    """Given the local server's host:port allowlisted, when fetched over http, then it works."""
    assert download(fetcher, f"{server}/image.png") == PNG


def test_allowlisting_one_port_does_not_allow_another(server: str) -> None:
    """Given 127.0.0.1:1 allowlisted, when the server's own port is fetched, then it is refused."""
    with (
        pytest.raises(UnsafeUrl),
        SafeFetcher(frozenset({"127.0.0.1:1"})).stream(f"{server}/image.png"),
    ):
        pass


def test_redirects_are_followed(fetcher: SafeFetcher, server: str) -> None:
    """Given a redirect to the image on the same allowed host, then the image arrives."""
    assert download(fetcher, f"{server}/redirect-to-image") == PNG


def test_redirect_to_the_metadata_service_is_refused(fetcher: SafeFetcher, server: str) -> None:
    """Given an allowed host redirecting to 169.254.169.254, then UnsafeUrl refuses the hop."""
    with (
        pytest.raises(UnsafeUrl, match="link-local"),
        fetcher.stream(f"{server}/redirect-to-metadata"),
    ):
        pass


def test_redirect_to_a_name_that_is_not_allowlisted_is_refused(
    fetcher: SafeFetcher, server: str
) -> None:
    """Given a redirect from the allowed 127.0.0.1 to http://localhost, then it is refused."""
    with (
        pytest.raises(UnsafeUrl, match="only https"),
        fetcher.stream(f"{server}/redirect-to-localhost"),
    ):
        pass


def test_redirect_loops_stop_after_max_redirects(fetcher: SafeFetcher, server: str) -> None:
    """Given a URL that redirects to itself, then UnsafeUrl after max_redirects hops."""
    with (
        pytest.raises(UnsafeUrl, match="more than 3 redirects"),
        fetcher.stream(f"{server}/redirect-loop"),
    ):
        pass


def test_not_found_is_a_permanent_download_failure(fetcher: SafeFetcher, server: str) -> None:
    """Given a 404, when fetched, then DownloadFailed is not retryable."""
    with (
        pytest.raises(DownloadFailed, match="HTTP 404") as failure,
        fetcher.stream(f"{server}/missing.png"),
    ):
        pass

    assert failure.value.retryable is False


@pytest.mark.parametrize("path", ["/unavailable", "/rate-limited"])
def test_unavailable_and_rate_limited_are_retryable(
    fetcher: SafeFetcher, server: str, path: str
) -> None:
    """Given a 503 or a 429, when fetched, then DownloadFailed is retryable."""
    with pytest.raises(DownloadFailed) as failure, fetcher.stream(f"{server}{path}"):
        pass

    assert failure.value.retryable is True


@pytest.mark.parametrize(
    "error", [httpx.ConnectTimeout("slow"), httpx.ReadTimeout("slow"), httpx.ReadError("reset")]
)
def test_timeouts_and_network_errors_are_retryable(error: httpx.TransportError) -> None:
    """Given a timeout or a network error, when fetched, then DownloadFailed is retryable."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    fetcher = SafeFetcher(frozenset({"files.internal"}), transport=RecordingTransport(handler))

    with pytest.raises(DownloadFailed) as failure, fetcher.stream("http://files.internal/a.png"):
        pass

    assert failure.value.retryable is True


def test_declared_length_over_max_bytes_is_refused(server: str) -> None:
    """Given a Content-Length over max_bytes, when fetched, then PayloadTooLarge at once."""
    fetcher = SafeFetcher(frozenset({server.removeprefix("http://")}), max_bytes=len(PNG) - 1)

    with pytest.raises(PayloadTooLarge), fetcher.stream(f"{server}/image.png"):
        pass


def test_counted_length_over_max_bytes_is_refused(server: str) -> None:
    """Given a body without Content-Length over max_bytes, when read, then PayloadTooLarge."""
    fetcher = SafeFetcher(frozenset({server.removeprefix("http://")}), max_bytes=len(PNG) - 1)

    with pytest.raises(PayloadTooLarge):
        download(fetcher, f"{server}/image-no-length.png")


def test_body_of_exactly_max_bytes_is_accepted(server: str) -> None:
    """Given a body of exactly max_bytes without Content-Length, when read, then it arrives."""
    fetcher = SafeFetcher(frozenset({server.removeprefix("http://")}), max_bytes=len(PNG))

    assert download(fetcher, f"{server}/image-no-length.png") == PNG


def test_errors_never_carry_the_query_string(fetcher: SafeFetcher, server: str) -> None:
    """Given a presigned-style URL that fails, then neither message nor body shows the signature."""
    with (
        pytest.raises(DownloadFailed) as failure,
        fetcher.stream(f"{server}/missing.png?X-Amz-Signature=s3cr3t&X-Amz-Credential=AKIA"),
    ):
        pass

    assert "/missing.png" in failure.value.message
    assert "s3cr3t" not in str(failure.value.to_body())


def test_every_http_client_of_the_process_shares_one_tls_context() -> None:
    # Given two fetchers and the provider clients' HTTP client, as one finaliser builds them
    from image_gateway.adapters.aws import AwsDependencies
    from image_gateway.config import Settings
    from image_gateway.fetch import tls_context

    settings = Settings.from_env(
        {
            "TABLE_NAME": "t",
            "BUCKET_NAME": "b",
            "EVENT_BUS_NAME": "bus",
            "WEBHOOK_SECRET_ARN": "arn:webhook",
            "PROVIDER_KEYS_SECRET_ARN": "arn:keys",
        }
    )
    deps = AwsDependencies(settings)
    clients = [SafeFetcher()._http(), SafeFetcher()._http(), deps.providers._http]
    # When their TLS contexts are compared
    contexts = {id(c._transport._pool._ssl_context) for c in clients}  # type: ignore[attr-defined]
    # Then the CA bundle was loaded once, into the shared context
    assert contexts == {id(tls_context())}
