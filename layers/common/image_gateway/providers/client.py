"""ProviderClient: the HTTP side of an adapter, with one error classification for all.

Network failures, timeouts, 429 and 5xx are retryable ``ProviderUnavailable``; a body that is
not JSON is ``ProviderBadResponse``; everything else is the adapter's to judge. Status answers
are streamed: base64 images inside them are spooled to temporary files, never held whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack, closing
from typing import Any

import httpx

from image_gateway.errors import ProviderBadResponse, ProviderError, ProviderUnavailable
from image_gateway.images.json_blobs import parse_json_with_blobs
from image_gateway.models.request import ImageRequest
from image_gateway.providers.base import (
    HttpCall,
    InputFile,
    InputOpener,
    Provider,
    ProviderInputs,
    ProviderStatus,
)

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
        sync_timeout: float | None = None,
    ) -> None:
        self.provider = provider
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._http = http
        self._timeout = timeout
        self._sync_timeout = sync_timeout or timeout

    def create(
        self, request: ImageRequest, inputs: ProviderInputs, callback_url: str | None
    ) -> str:
        """Create the provider task; returns its id or raises a classified ProviderError.

        The request is checked against the provider's capabilities first: nothing is sent
        (nothing is spent) for a request the provider cannot honour.
        """
        self.provider.check(request)
        call = self.provider.create_call(request, inputs, callback_url)
        with closing(self._send(call, self._timeout)) as response:
            status_code = response.status_code
            self._raise_unavailable(status_code)
            body = self._read_small_json(response)
        return self.provider.parse_create(status_code, body)

    def status(self, provider_task_id: str) -> ProviderStatus:
        """The task's canonical status; large base64 strings arrive as spooled blobs."""
        call = self.provider.status_call(provider_task_id)
        return self._streamed(call, self._timeout, self.provider.parse_status, "status")

    def batch_status(self, provider_task_ids: list[str]) -> dict[str, ProviderStatus]:
        """Several tasks in one call (providers with ``batch_poll``); missing ids left out."""
        call = self.provider.batch_status_call(provider_task_ids)
        with closing(self._send(call, self._timeout)) as response:
            status_code = response.status_code
            self._raise_unavailable(status_code)
            try:
                body, blobs = parse_json_with_blobs(response.iter_bytes())
            except ValueError as exc:
                raise self._bad(f"a batch body that is not JSON ({exc})") from None
            except httpx.HTTPError as exc:
                raise self._unavailable(f"batch read failed: {type(exc).__name__}") from None
        try:
            found = self.provider.parse_batch_status(status_code, body)
        except Exception:
            for blob in blobs:
                blob.close()
            raise
        if found:  # URL results only (apimart); any spooled blob goes with the first status
            next(iter(found.values())).blobs = blobs
        return found

    def run_sync(
        self, request: ImageRequest, inputs: ProviderInputs, open_input: InputOpener
    ) -> ProviderStatus:
        """Make the one long call of a sync provider; the image(s) of its answer, streamed.

        Multipart file parts are streamed from ``open_input`` (S3 or the source URL), never
        held whole in memory. Raises a classified ProviderError.
        """
        self.provider.check(request)
        call = self.provider.sync_call(request, inputs)
        with ExitStack() as stack:
            files = [(part, stack.enter_context(open_input(ref))) for part, ref in call.files]
            return self._streamed(
                call, self._sync_timeout, self.provider.parse_sync, "sync", files=files
            )

    def _streamed(
        self,
        call: HttpCall,
        timeout: float,
        parse: Callable[[int, Any], ProviderStatus],
        what: str,
        files: list[tuple[str, InputFile]] | None = None,
    ) -> ProviderStatus:
        with closing(self._send(call, timeout, files)) as response:
            status_code = response.status_code
            self._raise_unavailable(status_code)
            try:
                body, blobs = parse_json_with_blobs(response.iter_bytes())
            except ValueError as exc:
                raise self._bad(f"a {what} body that is not JSON ({exc})") from None
            except httpx.TimeoutException:
                raise self._unavailable(f"{what} answer stalled past {timeout:.0f} s") from None
            except httpx.HTTPError as exc:
                raise self._unavailable(f"{what} read failed: {type(exc).__name__}") from None
        try:
            status = parse(status_code, body)
        except Exception:
            for blob in blobs:
                blob.close()
            raise
        status.blobs = blobs
        return status

    def _send(
        self,
        call: HttpCall,
        timeout: float,
        files: list[tuple[str, InputFile]] | None = None,
    ) -> httpx.Response:
        try:
            request = self._http.build_request(
                call.method,
                self._base_url + call.path,
                json=call.json,
                params=call.params,
                data=call.form,
                files=files or None,
                headers=self._headers,
                timeout=timeout,
            )
            return self._http.send(request, stream=True)
        except httpx.TimeoutException:
            raise self._unavailable(f"no answer within {timeout:.0f} s") from None
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
