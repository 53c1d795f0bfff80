"""ProviderClient: the HTTP side of an adapter, with one error classification for all.

Network failures, timeouts, 429 and 5xx are retryable ``ProviderUnavailable``; a body that is
not JSON is ``ProviderBadResponse``; everything else is the adapter's to judge. Status answers
are streamed: base64 images inside them are spooled to temporary files, never held whole.
"""

from __future__ import annotations

import json
from contextlib import closing
from typing import Any

import httpx

from image_gateway.errors import ProviderBadResponse, ProviderError, ProviderUnavailable
from image_gateway.images.json_blobs import parse_json_with_blobs
from image_gateway.models.request import ImageRequest
from image_gateway.providers.base import HttpCall, Provider, ProviderInputs, ProviderStatus

_MAX_ERROR_BODY = 64 * 1024


class ProviderClient:
    """Calls one provider with its key; owns no state beyond the shared httpx client."""

    def __init__(
        self,
        provider: Provider,
        *,
        base_url: str,
        api_key: str,
        http: httpx.Client,
        timeout: float,
    ) -> None:
        self.provider = provider
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._http = http
        self._timeout = timeout

    def create(
        self, request: ImageRequest, inputs: ProviderInputs, callback_url: str | None
    ) -> str:
        """Create the provider task; returns its id or raises a classified ProviderError."""
        call = self.provider.create_call(request, inputs, callback_url)
        with closing(self._send(call)) as response:
            status_code = response.status_code
            self._raise_unavailable(status_code)
            body = self._read_small_json(response)
        return self.provider.parse_create(status_code, body)

    def status(self, provider_task_id: str) -> ProviderStatus:
        """The task's canonical status; large base64 strings arrive as spooled blobs."""
        call = self.provider.status_call(provider_task_id)
        with closing(self._send(call)) as response:
            status_code = response.status_code
            self._raise_unavailable(status_code)
            try:
                body, blobs = parse_json_with_blobs(response.iter_bytes())
            except ValueError as exc:
                raise self._bad(f"a status body that is not JSON ({exc})") from None
            except httpx.HTTPError as exc:
                raise self._unavailable(f"status read failed: {type(exc).__name__}") from None
        try:
            status = self.provider.parse_status(status_code, body)
        except Exception:
            for blob in blobs:
                blob.close()
            raise
        status.blobs = blobs
        return status

    def _send(self, call: HttpCall) -> httpx.Response:
        try:
            request = self._http.build_request(
                call.method,
                self._base_url + call.path,
                json=call.json,
                params=call.params,
                headers=self._headers,
                timeout=self._timeout,
            )
            return self._http.send(request, stream=True)
        except httpx.TimeoutException:
            raise self._unavailable(f"no answer within {self._timeout:.0f} s") from None
        except httpx.HTTPError as exc:
            raise self._unavailable(f"connection failed: {type(exc).__name__}") from None

    def _raise_unavailable(self, status_code: int) -> None:
        if status_code == 429 or status_code >= 500:
            raise self._unavailable(f"HTTP {status_code}", provider_code=str(status_code))

    def _read_small_json(self, response: httpx.Response) -> Any:
        data = b""
        try:
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > _MAX_ERROR_BODY:
                    raise self._bad("an oversized body to a create call")
        except httpx.HTTPError as exc:
            raise self._unavailable(f"read failed: {type(exc).__name__}") from None
        try:
            return json.loads(data)
        except ValueError:
            raise self._bad(f"HTTP {response.status_code} with a body that is not JSON") from None

    def _unavailable(self, message: str, provider_code: str | None = None) -> ProviderError:
        return ProviderUnavailable(
            f"{self.provider.name}: {message}",
            provider=self.provider.name,
            provider_code=provider_code,
        )

    def _bad(self, what: str) -> ProviderError:
        return ProviderBadResponse(
            f"{self.provider.name} answered {what}", provider=self.provider.name
        )
