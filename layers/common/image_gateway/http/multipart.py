"""multipart/form-data bodies (RFC 7578), read whole and strictly: fields and files.

The OpenAI-compatible edit route takes the SDK's multipart upload. Every way a body can be
wrong (no boundary, no closing delimiter, a part without a name, too many parts, a text field
that is not UTF-8) is a 400 ``invalid_multipart`` naming the problem, never a 500. The body is
already bounded by the caller (6 MB: one Lambda invocation), so it is parsed in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

from image_gateway.errors import InvalidRequest
from image_gateway.http.json_body import parse_media_type

MAX_PARTS = 64
"""Most parts a body may have (16 images, a mask and the fields need about 40)."""


@dataclass(frozen=True)
class Part:
    """One part: its form name, its file name (files only), its media type and its bytes."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes

    def text(self) -> str:
        """The part as UTF-8 text (a form field); 400 ``invalid_multipart`` when it is not."""
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid(f"form field {self.name!r} is not UTF-8 text") from None


def boundary_of(content_type: str | None) -> str | None:
    """The boundary of a ``multipart/form-data`` media type, or None for another type."""
    if not content_type:
        return None
    media = parse_media_type(content_type)
    if media.essence != "multipart/form-data":
        return None
    boundary = media.parameters.get("boundary", "")
    if not 1 <= len(boundary) <= 70:
        raise _invalid("multipart/form-data needs a boundary parameter of 1-70 characters")
    return boundary


def parse_multipart(body: bytes, boundary: str) -> list[Part]:
    """The parts of ``body``, in order.

    Raises:
        InvalidRequest: ``invalid_multipart``, saying what is wrong.
    """
    try:
        delimiter = b"--" + boundary.encode("latin-1")
    except UnicodeEncodeError:
        raise _invalid("the multipart boundary is not ASCII") from None
    start = body.find(delimiter)
    if start < 0:
        raise _invalid("the body has no part delimited by the boundary of its Content-Type")
    pieces = body[start + len(delimiter) :].split(b"\r\n" + delimiter)
    if len(pieces) < 2 or not pieces[-1].startswith(b"--"):
        raise _invalid("the body ends before its closing boundary")
    if len(pieces) - 1 > MAX_PARTS:
        raise _invalid(f"the body has more than {MAX_PARTS} parts")
    return [_part(piece) for piece in pieces[:-1]]


def _part(piece: bytes) -> Part:
    if not piece.startswith(b"\r\n"):
        raise _invalid("a boundary line is not followed by a line break")
    head, separator, data = piece[2:].partition(b"\r\n\r\n")
    if not separator:
        raise _invalid("a part has no blank line after its headers")
    headers = Message()
    for line in head.decode("latin-1").split("\r\n"):
        header, colon, value = line.partition(":")
        if not colon:
            raise _invalid("a part header line has no colon")
        headers[header.strip()] = value.strip()
    if headers.get_content_disposition() != "form-data":
        raise _invalid("each part needs Content-Disposition: form-data")
    param = headers.get_param("name", header="content-disposition")
    if not isinstance(param, str) or not param:
        raise _invalid("a part has no name in its Content-Disposition")
    name = param
    filename = headers.get_filename()
    content_type = headers.get("content-type")
    return Part(name=name, filename=filename, content_type=content_type, data=data)


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_multipart")
