"""SafePoster: webhook POSTs under SafeFetcher's rules, to a real receiver on 127.0.0.1
(allowlisted, as devstack's receivers are); redirects are answers, never followed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from image_gateway.errors import DownloadFailed, UnsafeUrl
from image_gateway.webhooks.transport import SafePoster


class Receiver(BaseHTTPRequestHandler):
    """Answers POSTs by path; keeps what it received."""

    received: ClassVar[list[tuple[str, bytes, dict[str, str]]]] = []

    def do_POST(self) -> None:
        """204 on /ok, 302 on /moved, 410 on /gone."""
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append((self.path, body, dict(self.headers)))
        status = {"/ok": 204, "/moved": 302, "/gone": 410}.get(self.path, 404)
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/ok")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    """A receiver on 127.0.0.1; its ``host:port``."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_post_reaches_an_allowlisted_receiver_with_body_and_headers(receiver: str) -> None:
    with SafePoster(frozenset({receiver}), max_redirects=0) as poster:
        status = poster.post(
            f"http://{receiver}/ok", b'{"a":1}', {"webhook-id": "msg_1"}, timeout=5
        )

    path, body, headers = Receiver.received[-1]
    assert (status, path, body, headers["webhook-id"]) == (204, "/ok", b'{"a":1}', "msg_1")


def test_a_redirect_is_returned_not_followed(receiver: str) -> None:
    Receiver.received.clear()
    with SafePoster(frozenset({receiver}), max_redirects=0) as poster:
        status = poster.post(f"http://{receiver}/moved", b"{}", {}, timeout=5)

    assert status == 302
    assert [path for path, _b, _h in Receiver.received] == ["/moved"]


def test_a_receiver_that_is_not_allowlisted_is_refused_before_connecting(receiver: str) -> None:
    Receiver.received.clear()
    with SafePoster() as poster, pytest.raises(UnsafeUrl):
        poster.post(f"http://{receiver}/ok", b"{}", {}, timeout=5)

    assert Receiver.received == []


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1/h", "https://169.254.169.254/latest", "https://[::1]/h"]
)
def test_private_addresses_are_refused_by_the_check(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        SafePoster().check_url(url)


def test_a_closed_port_is_a_retryable_failure() -> None:
    with SafePoster(frozenset({"127.0.0.1:9"})) as poster, pytest.raises(DownloadFailed) as err:
        poster.post("http://127.0.0.1:9/h", b"{}", {}, timeout=2)

    assert err.value.retryable
