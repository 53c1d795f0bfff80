"""HTTP request and response values passed between the simulator's server and its providers."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

BASE64_SLOT: Final = "__simulator_base64__"
"""Placeholder string value that `json_with_base64` replaces with the base64 of the image."""

MULTIPART_FORM: Final = "multipart/form-data"

_PARAM: Final = re.compile(r';\s*([A-Za-z0-9_.*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))')
_BACKSLASH_ESCAPE: Final = re.compile(r"\\(.)")


@dataclass(frozen=True)
class FormFile:
    """One file part of a multipart/form-data body."""

    field: str
    """The form field name (`image`, `image[]`, `mask`, ...)."""
    filename: str
    content_type: str
    data: bytes

    def data_url(self) -> str:
        """The file as a base64 data URL, the form image references take in a RenderSpec."""
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode()}"


@dataclass(frozen=True)
class FormData:
    """A parsed multipart/form-data body: its text fields and its file parts, in order."""

    fields: tuple[tuple[str, str], ...] = ()
    files: tuple[FormFile, ...] = ()

    def get(self, name: str) -> str | None:
        """The first text field called `name`, or None."""
        return next((value for field, value in self.fields if field == name), None)

    def files_named(self, *names: str) -> list[FormFile]:
        """The file parts whose field name is one of `names`, in order."""
        return [part for part in self.files if part.field in names]


@dataclass(frozen=True)
class SimRequest:
    """One HTTP request as a provider simulator sees it.

    `path` is relative to the provider's prefix (`/v1/tasks/x`, not `/apimart/v1/tasks/x`).
    `headers` maps lower-case header names to values.
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    @property
    def media_type(self) -> str:
        """The Content-Type without its parameters, lower-cased (`""` when absent)."""
        return media_type(self.headers.get("content-type", ""))

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not JSON."""
        return json.loads(self.body)

    def form(self) -> FormData:
        """The body parsed as multipart/form-data; raises ValueError when it is not that."""
        return parse_form(self.headers.get("content-type", ""), self.body)

    def bearer_token(self) -> str | None:
        """The token of an `Authorization: Bearer <token>` header, or None."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


@dataclass(frozen=True)
class SimResponse:
    """One HTTP response; the body is a sequence of chunks so large bodies are never joined."""

    status: int
    chunks: tuple[bytes, ...]
    content_type: str = "application/json"

    @property
    def content_length(self) -> int:
        """Total body length in bytes."""
        return sum(len(chunk) for chunk in self.chunks)

    def truncated(self) -> SimResponse:
        """The same response with only the first half of its body (broken JSON)."""
        keep = self.content_length // 2
        chunks: list[bytes] = []
        for chunk in self.chunks:
            if keep <= 0:
                break
            chunks.append(chunk[:keep])
            keep -= len(chunks[-1])
        return SimResponse(self.status, tuple(chunks), self.content_type)


def json_response(status: int, payload: Any) -> SimResponse:
    """A JSON response with the given HTTP status."""
    return SimResponse(status, (json.dumps(payload).encode(),))


def json_with_base64(status: int, payload: Any, data: bytes) -> SimResponse:
    """A JSON response whose one `BASE64_SLOT` string is replaced by the base64 of `data`.

    The base64 goes out as its own chunk: no JSON-escaped copy of a large image is ever made.
    """
    head, tail = json.dumps(payload).split(json.dumps(BASE64_SLOT))
    return SimResponse(status, (head.encode() + b'"', base64.b64encode(data), b'"' + tail.encode()))


def raw_response(status: int, body: bytes, content_type: str) -> SimResponse:
    """A response with a body that is sent exactly as given."""
    return SimResponse(status, (body,), content_type)


def media_type(content_type: str) -> str:
    """A Content-Type header's media type, lower-cased, without parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def header_params(value: str) -> dict[str, str]:
    """The `; name=value` parameters of a header (quoted values unescaped), names lower-cased."""
    params: dict[str, str] = {}
    for match in _PARAM.finditer(value):
        quoted, bare = match.group(2), match.group(3)
        raw = _BACKSLASH_ESCAPE.sub(r"\1", quoted) if quoted is not None else bare.strip()
        params.setdefault(match.group(1).lower(), raw)
    return params


def parse_form(content_type: str, body: bytes) -> FormData:
    """Parse a multipart/form-data body (RFC 7578); raises ValueError saying what is wrong.

    A part with a `filename` in its Content-Disposition is a file, any other part a text field
    (decoded as UTF-8).
    """
    if media_type(content_type) != MULTIPART_FORM:
        raise ValueError(f"Content-Type must be {MULTIPART_FORM}")
    boundary = header_params(content_type).get("boundary")
    if not boundary:
        raise ValueError("multipart/form-data Content-Type has no boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    position = body.find(delimiter)
    if position < 0 or (position > 0 and body[position - 2 : position] != b"\r\n"):
        raise ValueError("multipart body does not contain its boundary")
    fields: list[tuple[str, str]] = []
    files: list[FormFile] = []
    position += len(delimiter)
    while not body.startswith(b"--", position):
        line_end = body.find(b"\r\n", position)  # Skips transport padding after the boundary.
        end = body.find(b"\r\n" + delimiter, line_end)
        if line_end < 0 or end < 0:
            raise ValueError("multipart body ends before its closing boundary")
        _add_part(body[line_end + 2 : end], fields, files)
        position = end + 2 + len(delimiter)
    return FormData(tuple(fields), tuple(files))


def _add_part(part: bytes, fields: list[tuple[str, str]], files: list[FormFile]) -> None:
    """Parse one part (headers, blank line, content) into a field or a file."""
    if part.startswith(b"\r\n"):
        head, content = b"", part[2:]
    else:
        head, separator, content = part.partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("multipart part has no blank line after its headers")
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", errors="replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"malformed multipart part header: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    params = header_params(disposition)
    if media_type(disposition) != "form-data" or "name" not in params:
        raise ValueError("multipart part needs Content-Disposition: form-data; name=...")
    name = params["name"]
    if "filename" in params:
        content_type = media_type(headers.get("content-type", "")) or "application/octet-stream"
        files.append(FormFile(name, params["filename"], content_type, content))
        return
    try:
        fields.append((name, content.decode("utf-8")))
    except UnicodeDecodeError as exc:
        raise ValueError(f"form field {name!r} is not UTF-8 text") from exc
