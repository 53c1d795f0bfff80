"""SafePoster: POSTs to callers' webhook URLs under the rules of every fetch (SafeFetcher's):
the URL checked, the connection pinned to the checked address, redirects never followed."""

from __future__ import annotations

import httpx

from image_gateway.errors import DownloadFailed
from image_gateway.fetch import SafeFetcher, _parse_url, _redact


class SafePoster(SafeFetcher):
    """A SafeFetcher that also POSTs (``webhooks.ports.WebhookTransport``)."""

    def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> int:
        """POST ``body`` to ``url`` (checked, pinned to the checked address, no redirects).

        Returns the HTTP status (a 3xx is returned, never followed); the answer's body is not
        read. Raises UnsafeUrl, or DownloadFailed for a timeout or a network error.
        """
        target = _parse_url(url)
        client = self._http()
        last_error: httpx.TransportError | None = None
        for request in self._pinned_requests(target, method="POST", content=body, headers=headers):
            request.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
            try:
                response = client.send(request, stream=True)  # the answer's body is never read
            except httpx.ConnectError as error:
                last_error = error  # try the next address
                continue
            except httpx.TimeoutException:
                raise DownloadFailed(
                    f"POST to {_redact(target)} timed out", retryable=True
                ) from None
            except httpx.TransportError as error:
                raise DownloadFailed(
                    f"POST to {_redact(target)} failed: {type(error).__name__}", retryable=True
                ) from None
            response.close()
            return response.status_code
        raise DownloadFailed(
            f"could not connect to {_redact(target)}: {type(last_error).__name__}", retryable=True
        )
