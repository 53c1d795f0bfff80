"""Decode base64 incrementally, chunk by chunk, so a 25 MB base64 image is never held whole.

The decoder is strict about the alphabet and the padding (what ``base64.b64decode(...,
validate=True)`` accepts, plus whitespace), because a provider that sends anything else is
sending something we cannot trust to be the image it claims.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable, Iterator

from image_gateway.errors import InvalidImage

_WHITESPACE = b" \t\r\n\f\v"
# Inside JSON text base64 may carry "\/" (escaped slash) and "\n"-style line breaks.
_JSON_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_JSON_ESCAPE_VALUES = {b"/": b"/", b"n": b"", b"r": b"", b"t": b""}
# "data:" + media type + parameters + ";base64" is short; anything longer is not a data URL.
_MAX_DATA_URL_HEADER = 256


def _invalid(reason: str) -> InvalidImage:
    return InvalidImage(f"image data is not valid base64: {reason}")


def _to_bytes(chunk: bytes | str) -> bytes:
    if isinstance(chunk, str):
        try:
            return chunk.encode("ascii")
        except UnicodeEncodeError:
            raise _invalid("non-ASCII character") from None
    return bytes(chunk)


class Base64StreamDecoder:
    """Incremental, strict base64 decoder.

    Feed text in chunks of any size; each call returns the bytes decoded so far. Whitespace and
    the backslashes of JSON escapes (``\\/``, ``\\n``...) are skipped; any other character
    outside the base64 alphabet, misplaced or missing padding, or data after the padding raises
    :class:`InvalidImage`.
    """

    def __init__(self) -> None:
        self._remainder = b""  # fewer than 4 characters waiting for the rest of their quantum
        self._pending_backslash = False  # a chunk ended in the middle of a JSON escape
        self._padded = False  # padding seen: only whitespace may follow
        self._finished = False

    def feed(self, chunk: bytes | str) -> bytes:
        """Decode the next chunk of base64 text and return the bytes it completes."""
        if self._finished:
            raise RuntimeError("Base64StreamDecoder.feed() called after finish()")
        data = self._clean(_to_bytes(chunk))
        if not data:
            return b""
        if self._padded:
            raise _invalid("data after the padding")
        data = self._remainder + data
        usable = len(data) - len(data) % 4
        block, self._remainder = data[:usable], data[usable:]
        if not block:
            return b""
        try:
            decoded = binascii.a2b_base64(block, strict_mode=True)
        except binascii.Error as error:
            raise _invalid(str(error)) from None
        if block.endswith(b"="):
            self._padded = True
            if self._remainder:
                raise _invalid("data after the padding")
        return decoded

    def finish(self) -> bytes:
        """Check that the text ended on a whole base64 quantum; return any last bytes (none)."""
        self._finished = True
        if self._pending_backslash:
            raise _invalid("text ends with a lone backslash")
        if self._remainder:
            raise _invalid(
                f"length is not a multiple of 4 ({len(self._remainder)} characters left over)"
            )
        return b""

    def _clean(self, data: bytes) -> bytes:
        if self._pending_backslash:
            data = b"\\" + data
            self._pending_backslash = False
        if b"\\" in data:
            trailing = len(data) - len(data.rstrip(b"\\"))
            if trailing % 2:  # the escape's second character is in the next chunk
                data = data[:-1]
                self._pending_backslash = True
            data = _JSON_ESCAPE.sub(_unescape, data)
        return data.translate(None, _WHITESPACE)


def _unescape(match: re.Match[bytes]) -> bytes:
    value = _JSON_ESCAPE_VALUES.get(match.group(1))
    if value is None:
        raise _invalid(f"unexpected escape {match.group(0)!r}")
    return value


def iter_base64_decoded(chunks: Iterable[bytes | str]) -> Iterator[bytes]:
    """Decode a stream of base64 text, raw or as a ``data:<type>;base64,`` URL, into bytes.

    The data URL prefix may be split across chunks. Its declared media type is not trusted
    (the decoded bytes are sniffed later), but it must say ``;base64``.

    Raises:
        InvalidImage: the text is not valid base64, or is a data URL that is not base64.
    """
    decoder = Base64StreamDecoder()
    head = b""  # text held back until we know whether it starts with "data:"
    deciding = True
    for chunk in chunks:
        data = _to_bytes(chunk)
        if deciding:
            head += data
            decided = _split_data_url(head, final=False)
            if decided is None:
                continue
            data, head, deciding = decided, b"", False
        decoded = decoder.feed(data)
        if decoded:
            yield decoded
    if deciding:
        decided = _split_data_url(head, final=True)
        assert decided is not None  # final=True always decides
        decoded = decoder.feed(decided)
        if decoded:
            yield decoded
    decoded = decoder.finish()
    if decoded:
        yield decoded


def _split_data_url(head: bytes, *, final: bool) -> bytes | None:
    """The base64 text after any data URL header, or None while the header may be incomplete."""
    text = head.lstrip(_WHITESPACE)
    scheme = text[:5].lower()
    if not final and (len(scheme) < 5 and b"data:".startswith(scheme)):
        return None
    if scheme != b"data:":
        return head
    comma = text.find(b",", 0, _MAX_DATA_URL_HEADER + 1)
    if comma < 0:
        if not final and len(text) <= _MAX_DATA_URL_HEADER:
            return None
        raise InvalidImage("image data URL has no ',' after its header")
    header = text[5:comma].replace(b"\\/", b"/")
    if not header.lower().endswith(b";base64"):
        raise InvalidImage("image data URL is not base64-encoded (';base64' missing)")
    return text[comma + 1 :]
