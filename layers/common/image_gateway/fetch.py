"""Download caller-supplied URLs without letting them reach private networks (SSRF).

Every hop (the URL and each redirect) is checked the same way: https only, no credentials in
the URL, and every address the host resolves to must be public. The request then goes to the
checked address itself, with the original ``Host`` header and TLS server name, so a DNS answer
that changes between the check and the connection (DNS rebinding) cannot redirect it.
Errors and messages never carry a URL's query string: presigned URLs keep their signature there.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from types import TracebackType
from typing import Self

import httpx

from image_gateway.errors import DownloadFailed, PayloadTooLarge, UnsafeUrl
from image_gateway.tls_roots import context_for

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CHUNK_SIZE = 1 << 20
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUSES = frozenset({408, 425, 429})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# DNS64 gateways (IPv6-only subnets) map IPv4 addresses into this prefix: judge the IPv4 inside.
_NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


@cache
def tls_context() -> ssl.SSLContext:
    """The TLS context every HTTP client of the process shares: certifi's roots, as httpx
    trusts by default, without the environment's SSL_CERT_FILE, as the fetcher always had.

    httpx builds one per client, loading the bundle each time, and a finaliser's first event
    has two clients (the provider's and the download's); a function sending webhooks, a third.
    On the built layer the roots are read lazily (:mod:`image_gateway.tls_roots`).
    """
    return context_for()


class SafeFetcher:
    """Streams the body of a public http(s) resource, refusing anything that could be SSRF.

    Args:
        allow_private_hosts: hosts (``"name"`` or ``"name:port"``, exact, case-insensitive)
            that may be private and may use plain http: local simulators, never user input.
        timeout: seconds allowed to connect, and between two reads of the body.
        max_bytes: the largest body accepted.
        max_redirects: how many redirects are followed (each hop is checked again).
        transport: an httpx transport (tests); the default is a real network connection.
    """

    def __init__(
        self,
        allow_private_hosts: frozenset[str] = frozenset(),
        *,
        timeout: float = 30.0,
        max_bytes: int = 50 * 1024 * 1024,
        max_redirects: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._allowed_hosts = frozenset(host.lower() for host in allow_private_hosts)
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._transport = transport
        self._client: httpx.Client | None = None

    @contextmanager
    def stream(self, url: str) -> Iterator[Iterator[bytes]]:
        """Open ``url`` (following checked redirects) and yield an iterator over its body.

        Use as ``with fetcher.stream(url) as chunks: store.store(chunks, ...)``; the connection
        is closed when the block ends.

        Raises:
            UnsafeUrl: the URL or a redirect is refused (scheme, credentials, private address,
                too many redirects).
            DownloadFailed: network error, timeout or non-2xx status; ``retryable`` is True for
                5xx, 408, 425, 429, timeouts and connection errors.
            PayloadTooLarge: the body is over ``max_bytes`` (announced or counted).
        """
        response, final_url = self._open(url)
        try:
            yield self._iter_body(response, final_url)
        finally:
            response.close()

    def close(self) -> None:
        """Close the underlying HTTP client and its connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _http(self) -> httpx.Client:
        if self._client is None:
            # trust_env=False: an environment proxy would connect to names, not checked IPs.
            self._client = httpx.Client(
                transport=self._transport,
                verify=tls_context(),
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    def _open(self, url: str) -> tuple[httpx.Response, httpx.URL]:
        """The 2xx response at the end of the checked redirect chain, and its URL."""
        current = _parse_url(url)
        for _ in range(self._max_redirects + 1):
            response = self._request(current)
            status = response.status_code
            if status in _REDIRECT_STATUSES:
                location = response.headers.get("location")
                response.close()
                if not location:
                    raise DownloadFailed(
                        f"download of {_redact(current)} failed: HTTP {status} without Location",
                        http_status=status,
                    )
                try:
                    current = current.join(location)
                except httpx.InvalidURL:
                    raise UnsafeUrl(
                        f"{_redact(current)} redirects to an invalid URL", reason="invalid_url"
                    ) from None
                continue
            if not 200 <= status < 300:
                response.close()
                raise DownloadFailed(
                    f"download of {_redact(current)} failed: HTTP {status}",
                    retryable=status >= 500 or status in _RETRYABLE_STATUSES,
                    http_status=status,
                )
            declared = _content_length(response)
            if declared is not None and declared > self._max_bytes:
                response.close()
                raise self._too_large(current)
            return response, current
        raise UnsafeUrl(
            f"{_redact(current)}: more than {self._max_redirects} redirects",
            reason="too_many_redirects",
        )

    def _request(self, url: httpx.URL) -> httpx.Response:
        """Send a GET for one checked hop, to each checked address in turn until one connects."""
        client = self._http()
        last_error: httpx.TransportError | None = None
        for request in self._pinned_requests(url):
            try:
                return client.send(request, stream=True)
            except httpx.ConnectError as error:
                last_error = error  # try the next address
            except httpx.TimeoutException:
                raise DownloadFailed(
                    f"download of {_redact(url)} timed out", retryable=True
                ) from None
            except httpx.TransportError as error:
                raise DownloadFailed(
                    f"download of {_redact(url)} failed: {type(error).__name__}", retryable=True
                ) from None
        raise DownloadFailed(
            f"could not connect to {_redact(url)}: {type(last_error).__name__}", retryable=True
        )

    def check_url(self, url: str) -> None:
        """Refuse (UnsafeUrl) a URL no request may go to: the same rules as every fetch.

        Resolves the host (DownloadFailed when it cannot be resolved; ``retryable`` when the
        resolver only failed for now).
        """
        self._check(_parse_url(url))

    def _pinned_requests(
        self,
        url: httpx.URL,
        *,
        method: str = "GET",
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[httpx.Request]:
        client = self._http()
        addresses = self._check(url)
        if addresses is None:  # an allowlisted host: connect by name
            yield client.build_request(method, url, content=content, headers=headers)
            return
        host_header = url.netloc.decode("ascii")
        extensions = {}
        if url.scheme == "https" and not _is_ip_literal(url.host):
            # TLS must still present and verify the name, although we connect to an IP.
            extensions["sni_hostname"] = url.raw_host.decode("ascii")
        for address in addresses:
            yield client.build_request(
                method,
                url.copy_with(host=address),
                content=content,
                headers={**(headers or {}), "Host": host_header},
                extensions=extensions,
            )

    def _check(self, url: httpx.URL) -> list[str] | None:
        """Refuse an unsafe URL; return the addresses to connect to (None: allowlisted host)."""
        shown = _redact(url)
        if url.scheme not in _DEFAULT_PORTS:
            raise UnsafeUrl(f"{shown}: only https URLs can be fetched", reason="scheme")
        if url.userinfo:
            raise UnsafeUrl(f"{shown}: URLs with credentials are refused", reason="userinfo")
        host = url.host.lower()
        if not host:
            raise UnsafeUrl(f"{shown}: the URL has no host", reason="invalid_url")
        port = url.port or _DEFAULT_PORTS[url.scheme]
        host_port = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if host in self._allowed_hosts or host_port in self._allowed_hosts:
            return None
        if url.scheme != "https":
            raise UnsafeUrl(f"{shown}: only https URLs can be fetched", reason="scheme")
        addresses = _resolve(url, port)
        for address in addresses:
            why = _forbidden_reason(ipaddress.ip_address(address))
            if why is not None:
                where = "" if address == host else f"{host} resolves to {address}; "
                raise UnsafeUrl(
                    f"{shown}: {where}{why} addresses are refused",
                    reason="private_address",
                )
        return addresses

    def _iter_body(self, response: httpx.Response, url: httpx.URL) -> Iterator[bytes]:
        shown = _redact(url)
        received = 0
        try:
            for chunk in response.iter_bytes(_CHUNK_SIZE):
                received += len(chunk)
                if received > self._max_bytes:
                    raise self._too_large(url)
                yield chunk
        except httpx.TimeoutException:
            raise DownloadFailed(f"download of {shown} timed out", retryable=True) from None
        except httpx.TransportError as error:
            raise DownloadFailed(
                f"download of {shown} failed: {type(error).__name__}", retryable=True
            ) from None
        except httpx.DecodingError:
            raise DownloadFailed(f"download of {shown} failed: undecodable body") from None

    def _too_large(self, url: httpx.URL) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"{_redact(url)} is larger than the {self._max_bytes}-byte limit",
            limit_bytes=self._max_bytes,
        )


def _parse_url(url: str) -> httpx.URL:
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise UnsafeUrl("not a valid URL", reason="invalid_url") from None


def _resolve(url: httpx.URL, port: int) -> list[str]:
    """Every address the URL's host resolves to, in resolver order, without duplicates."""
    host = url.host
    if _is_ip_literal(host):
        return [host]
    try:
        infos = socket.getaddrinfo(url.raw_host.decode("ascii"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise DownloadFailed(
            f"could not resolve {host}: {error.strerror}",
            retryable=error.errno == socket.EAI_AGAIN,
        ) from None
    except UnicodeError:
        raise UnsafeUrl(f"{host}: not a valid host name", reason="invalid_url") from None
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone ("fe80::1%eth0")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise DownloadFailed(f"could not resolve {host}: no addresses", retryable=False)
    return addresses


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _forbidden_reason(address: IPAddress) -> str | None:
    """Why an address must not be fetched from (None when it is a public unicast address)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            inner = _forbidden_reason(address.ipv4_mapped)
            return f"IPv4-mapped {inner}" if inner else None
        if address in _NAT64_PREFIX:
            inner = _forbidden_reason(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
            return f"NAT64 {inner}" if inner else None
        if address.sixtofour is not None:
            inner = _forbidden_reason(address.sixtofour)
            if inner:
                return f"6to4 {inner}"
        if address.teredo is not None:
            for embedded in address.teredo:
                inner = _forbidden_reason(embedded)
                if inner:
                    return f"Teredo {inner}"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-public", not address.is_global),
    )
    for reason, applies in checks:
        if applies:
            return reason
    return None


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _redact(url: httpx.URL) -> str:
    """The URL without credentials, query or fragment: safe for messages and logs."""
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}{url.path}"
