"""Read provider JSON that embeds huge base64 strings without holding those strings in memory.

``json.loads`` on a 25 MB response holds the text, the decoded string and (later) the decoded
image at once. :func:`parse_json_with_blobs` instead streams the document: every string value
longer than ``min_blob_chars`` goes, chunk by chunk, into a :class:`Blob` (a spooled temporary
file); everything else is copied into a small skeleton document that ``json.loads`` parses.
"""

from __future__ import annotations

import json
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, Self

# Keep up to 1 MiB of a blob in memory; beyond that it lives in /tmp.
_SPOOL_MEMORY = 1 << 20
_QUOTE = 0x22
_BACKSLASH = 0x5C
_U = 0x75
# Outside strings we only need to see where strings start and how containers nest.
_OUTSIDE_SPECIAL = re.compile(rb'["{}\[\],:]')
_CONTROL_CHARACTER = re.compile(rb"[\x00-\x1f]")
_HIGH_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}")


class Blob:
    """One long JSON string value, held in a spooled temporary file.

    The content is the string's text (JSON escapes decoded) encoded as UTF-8; for base64 this is
    exactly the string's characters. Close it when done (it is also a context manager).
    """

    def __init__(self) -> None:
        # The Blob owns the file and closes it in close() (the Blob is the context manager).
        self._file = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY)  # noqa: SIM115
        self._length = 0

    @property
    def length(self) -> int:
        """Size of the content in bytes (its number of characters when it is ASCII, as base64)."""
        return self._length

    def _append(self, data: bytes) -> None:
        if data:
            self._file.seek(0, 2)
            self._file.write(data)
            self._length += len(data)

    def iter_chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the content from the start in chunks of at most ``size`` bytes."""
        if size <= 0:
            raise ValueError("chunk size must be positive")
        offset = 0
        while offset < self._length:
            self._file.seek(offset)  # each iterator keeps its own position
            chunk = self._file.read(min(size, self._length - offset))
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    def read_prefix(self, n: int) -> bytes:
        """The first ``n`` bytes of the content (fewer if it is shorter)."""
        self._file.seek(0)
        return self._file.read(max(n, 0))

    def close(self) -> None:
        """Delete the temporary file."""
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Blob(length={self._length})"


def parse_json_with_blobs(
    chunks: Iterable[bytes], *, min_blob_chars: int = 65536
) -> tuple[Any, list[Blob]]:
    """Parse a UTF-8 JSON document given in chunks, diverting long string values into Blobs.

    A string value whose JSON text (between the quotes, escapes included) is longer than
    ``min_blob_chars`` bytes is replaced in the returned document by a :class:`Blob`; object
    keys are never diverted. All other values come out exactly as ``json.loads`` gives them.
    The caller owns the returned blobs and must close them.

    Raises:
        ValueError: the input is not well-formed UTF-8 JSON (blobs made so far are closed), or
            a long string holds a lone surrogate escape such as ``\\ud800``.
    """
    if min_blob_chars < 0:
        raise ValueError("min_blob_chars must not be negative")
    scanner = _Scanner(min_blob_chars)
    try:
        for chunk in chunks:
            scanner.feed(chunk if isinstance(chunk, bytes) else bytes(chunk))
        return scanner.finish()
    except BaseException:
        for blob in scanner.blobs:
            blob.close()
        raise


class _Scanner:
    """Splits a JSON byte stream into a skeleton document and blobs of long string values."""

    def __init__(self, min_blob_chars: int) -> None:
        self.blobs: list[Blob] = []
        self._min_blob_chars = min_blob_chars
        self._skeleton = bytearray()
        self._placeholders: dict[str, Blob] = {}
        self._nonce = secrets.token_hex(8)
        self._containers: list[int] = []  # stack of "{" and "[" bytes
        self._expect_key = False
        self._in_string = False
        self._string_is_key = False
        self._string_start = 0  # offset of the opening quote, for error messages
        self._raw = bytearray()  # the current short string's JSON text
        self._blob: Blob | None = None  # the current long string, once diverted
        self._carry = b""  # an incomplete escape or UTF-8 sequence from the previous chunk
        self._fed = 0

    def feed(self, chunk: bytes) -> None:
        base = self._fed - len(self._carry)  # input offset of data[0]
        self._fed += len(chunk)
        data = self._carry + chunk if self._carry else chunk
        self._carry = b""
        i, n = 0, len(data)
        while i < n:
            if self._in_string:
                i = self._scan_string(data, i)
                continue
            match = _OUTSIDE_SPECIAL.search(data, i)
            if match is None:
                self._skeleton += data[i:]
                break
            j = match.start()
            self._skeleton += data[i:j]
            i = j + 1
            byte = data[j]
            if byte == _QUOTE:
                self._in_string = True
                self._string_is_key = self._expect_key
                self._string_start = base + j
            else:
                self._skeleton.append(byte)
                self._track_structure(byte)

    def finish(self) -> tuple[Any, list[Blob]]:
        if self._in_string:
            raise ValueError(
                f"malformed JSON: unterminated string starting at byte {self._string_start}"
            )
        try:
            text = self._skeleton.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"malformed JSON: not valid UTF-8 ({error.reason})") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            where = f"line {error.lineno} column {error.colno}"
            if self._placeholders:
                where += " of the document with its long strings elided"
            raise ValueError(
                f"malformed JSON: {error.msg.removesuffix(' at')} at {where}"
            ) from None
        except RecursionError:
            raise ValueError("malformed JSON: nested too deeply") from None
        if self._placeholders:
            document = _substitute(document, self._placeholders)
        return document, self.blobs

    def _track_structure(self, byte: int) -> None:
        if byte in b"{[":
            self._containers.append(byte)
            self._expect_key = byte == ord("{")
        elif byte in b"}]":
            if self._containers:
                self._containers.pop()
            self._expect_key = False
        elif byte == ord(","):
            self._expect_key = bool(self._containers) and self._containers[-1] == ord("{")
        else:  # ":"
            self._expect_key = False

    def _scan_string(self, data: bytes, start: int) -> int:
        """Consume string text from ``data[start:]``; return where scanning resumes."""
        end = _find_closing_quote(data, start)
        if end < 0:
            cut = _safe_cut(data, start)
            self._carry = data[cut:]
            self._string_text(data[start:cut])
            return len(data)
        self._string_text(data[start:end])
        self._end_string()
        return end + 1

    def _string_text(self, piece: bytes) -> None:
        """Take the next piece of the current string (whole escapes and UTF-8 sequences)."""
        if self._blob is not None:
            self._blob._append(self._decode(piece))
            return
        self._raw += piece
        if not self._string_is_key and len(self._raw) > self._min_blob_chars:
            self._blob = Blob()
            self.blobs.append(self._blob)
            self._blob._append(self._decode(bytes(self._raw)))
            self._raw = bytearray()

    def _end_string(self) -> None:
        if self._blob is not None:
            placeholder = f"\x00image_gateway.blob:{self._nonce}:{len(self._placeholders)}"
            self._placeholders[placeholder] = self._blob
            self._skeleton += json.dumps(placeholder).encode("ascii")
            self._blob = None
        else:
            self._skeleton.append(_QUOTE)
            self._skeleton += self._raw
            self._skeleton.append(_QUOTE)
            self._raw = bytearray()
        self._in_string = False
        self._expect_key = False

    def _decode(self, piece: bytes) -> bytes:
        """Decode the JSON text of part of a string into its UTF-8 content."""
        try:
            return _decode_string_text(piece)
        except ValueError as error:
            raise ValueError(
                f"malformed JSON: {error} in the string starting at byte {self._string_start}"
            ) from None


def _find_closing_quote(data: bytes, start: int) -> int:
    """Index of the first unescaped quote at or after ``start`` (a clean boundary), or -1."""
    position = start
    while True:
        quote = data.find(b'"', position)
        if quote < 0:
            return -1
        run_start = quote
        while run_start > start and data[run_start - 1] == _BACKSLASH:
            run_start -= 1
        if (quote - run_start) % 2 == 0:
            return quote
        position = quote + 1


def _safe_cut(data: bytes, start: int) -> int:
    """End of the longest prefix of ``data[start:]`` made of whole escapes and UTF-8 sequences.

    What is left (at most 11 bytes) is carried over to the next chunk. A complete high-surrogate
    escape at the end is carried too, since its low half may follow in the next chunk.
    """
    end = len(data)
    last = data.rfind(b"\\", start)
    if last >= 0 and _starts_escape(data, start, last):
        complete = end > last + 1 and (data[last + 1] != _U or end >= last + 6)
        if not complete or (end == last + 6 and _HIGH_SURROGATE_ESCAPE.match(data, last)):
            end = last
            before = end - 6
            if (
                before >= start
                and _HIGH_SURROGATE_ESCAPE.match(data, before)
                and _starts_escape(data, start, before)
            ):
                end = before
            return end
    # Back up over an incomplete trailing UTF-8 sequence (at most 3 continuation bytes).
    lead = end - 1
    while lead >= start and end - lead <= 3 and 0x80 <= data[lead] < 0xC0:
        lead -= 1
    if lead >= start and data[lead] >= 0xC0:
        needed = 2 if data[lead] < 0xE0 else 3 if data[lead] < 0xF0 else 4
        if end - lead < needed:
            return lead
    return end


def _starts_escape(data: bytes, start: int, index: int) -> bool:
    """Whether the backslash at ``index`` begins an escape (an even run of them precedes it)."""
    run_start = index
    while run_start > start and data[run_start - 1] == _BACKSLASH:
        run_start -= 1
    return (index - run_start) % 2 == 0


def _decode_string_text(piece: bytes) -> bytes:
    if b"\\" in piece:
        unslashed = piece.replace(b"\\/", b"/")  # the only escape base64 ever carries
        if b"\\" in unslashed:
            return _decode_escaped(piece)
        piece = unslashed
    if not piece.isascii():
        try:
            piece.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"not valid UTF-8 ({error.reason})") from None
    if _CONTROL_CHARACTER.search(piece):
        raise ValueError("unescaped control character")
    return piece


def _decode_escaped(piece: bytes) -> bytes:
    try:
        text = piece.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not valid UTF-8 ({error.reason})") from None
    try:
        value: str = json.loads(f'"{text}"')
    except json.JSONDecodeError as error:
        raise ValueError(error.msg) from None
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("lone surrogate escape (not supported in a long string)") from None


def _substitute(document: Any, placeholders: dict[str, Blob]) -> Any:
    """Replace placeholder strings by their blobs, iteratively (no recursion limit)."""
    if isinstance(document, str):
        return placeholders.get(document, document)
    pending: list[Any] = [document]
    while pending:
        node = pending.pop()
        items = enumerate(node) if isinstance(node, list) else list(node.items())
        for key, value in items:
            if isinstance(value, str):
                blob = placeholders.get(value)
                if blob is not None:
                    node[key] = blob
            elif isinstance(value, list | dict):
                pending.append(value)
    return document
