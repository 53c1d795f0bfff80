"""Base64StreamDecoder and iter_base64_decoded: streaming, strict base64 decoding."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator

import pytest
from image_gateway.errors import InvalidImage
from image_gateway.images.base64_stream import Base64StreamDecoder, iter_base64_decoded


def random_chunks(text: str, rng: random.Random, *, as_str: bool) -> Iterator[bytes | str]:
    """Split text at random places; each chunk is str or bytes at random when not as_str."""
    position = 0
    while position < len(text):
        size = rng.choice([1, 2, 3, 4, 5, 7, 64, 1000])
        piece = text[position : position + size]
        position += size
        yield piece if as_str or rng.random() < 0.5 else piece.encode("ascii")


def decode_all(chunks: Iterator[bytes | str] | list[bytes | str] | list[str]) -> bytes:
    """Feed every chunk to a fresh decoder and finish it."""
    decoder = Base64StreamDecoder()
    out = b"".join(decoder.feed(chunk) for chunk in chunks)
    return out + decoder.finish()


def test_random_chunkings_match_b64decode() -> None:
    """Given random bytes encoded and split at random, when decoded, then b64decode agrees."""
    rng = random.Random(20251120)
    for _ in range(400):
        payload = rng.randbytes(rng.randint(0, 300))
        text = base64.b64encode(payload).decode("ascii")

        decoded = decode_all(random_chunks(text, rng, as_str=False))

        assert decoded == base64.b64decode(text, validate=True)


def test_whitespace_and_line_breaks_are_skipped() -> None:
    """Given MIME-style base64 wrapped at 76 columns with CRLF, when decoded, then it matches."""
    payload = random.Random(7).randbytes(1000)
    text = base64.encodebytes(payload).decode("ascii").replace("\n", "\r\n")

    assert decode_all(random_chunks(" " + text + "\t", random.Random(1), as_str=True)) == payload


@pytest.mark.parametrize("split", range(1, 16))
def test_json_escaped_slashes_split_anywhere_decode(split: int) -> None:
    """Given base64 with JSON "\\/" escapes split at any position, then the slashes count."""
    payload = b"\xff\xff\xff\xfb\xef\xbe"  # encodes to "////++++"
    escaped = base64.b64encode(payload).decode("ascii").replace("/", "\\/")

    assert decode_all([escaped[:split], escaped[split:]]) == payload


def test_large_input_decodes_chunk_by_chunk() -> None:
    """Given 1 MB of base64 fed in 64 KiB chunks, then each feed returns its share at once."""
    payload = random.Random(3).randbytes(1_000_000)
    text = base64.b64encode(payload)
    decoder = Base64StreamDecoder()

    outputs = [decoder.feed(text[i : i + 65536]) for i in range(0, len(text), 65536)]

    assert all(len(out) >= 49_149 for out in outputs[:-1])
    assert b"".join(outputs) + decoder.finish() == payload


@pytest.mark.parametrize(
    "text",
    [
        "QUJD!",  # outside the alphabet
        "QU JD-_8=",  # base64url characters
        "QUJ",  # missing padding
        "QQ=",  # incomplete padding
        "=QUJ",  # leading padding
        "QQ==QUJD",  # data after padding
        "QQ=Q",  # discontinuous padding
        "Q===",  # one character then padding
        "QU\\nJD\\x",  # an escape that is not JSON whitespace or a slash
        "QU\\\\JD",  # an escaped backslash
        "QUJDé",  # non-ASCII
    ],
)
def test_invalid_base64_is_refused(text: str) -> None:
    """Given text that is not strict base64, when decoded, then InvalidImage says so."""
    with pytest.raises(InvalidImage, match="not valid base64"):
        decode_all([text])


def test_data_after_padding_in_a_later_chunk_is_refused() -> None:
    """Given padding that ends one chunk and more data in the next, then InvalidImage."""
    decoder = Base64StreamDecoder()
    decoder.feed("QQ==")

    with pytest.raises(InvalidImage, match="after the padding"):
        decoder.feed("QUJD")


def test_whitespace_after_padding_is_accepted() -> None:
    """Given padding followed by a trailing newline, when decoded, then the bytes come out."""
    assert decode_all(["QQ==", "\n"]) == b"A"


@pytest.mark.parametrize("split", range(0, 34))
def test_data_url_prefix_split_anywhere_is_stripped(split: int) -> None:
    """Given a data URL split at any position, when decoded, then only the payload comes out."""
    payload = bytes(range(40))
    url = "data:image/png;base64," + base64.b64encode(payload).decode("ascii")

    decoded = b"".join(iter_base64_decoded([url[:split], url[split:]]))

    assert decoded == payload


def test_data_url_fed_one_character_at_a_time() -> None:
    """Given a data URL with a JSON-escaped slash, fed one character at a time, then it decodes."""
    url = "data:image\\/webp;base64," + base64.b64encode(b"RIFF1234WEBP").decode("ascii")

    assert b"".join(iter_base64_decoded(list(url))) == b"RIFF1234WEBP"


def test_raw_base64_without_prefix_decodes() -> None:
    """Given plain base64 chunks, when decoded with iter_base64_decoded, then it matches."""
    payload = random.Random(5).randbytes(5000)
    text = base64.b64encode(payload).decode("ascii")

    assert b"".join(iter_base64_decoded(random_chunks(text, random.Random(2), as_str=False))) == (
        payload
    )


def test_short_raw_base64_that_starts_like_data_decodes() -> None:
    """Given the base64 text "dat=" (a prefix of "data:"), when decoded, then it is base64."""
    assert b"".join(iter_base64_decoded(["da", "t="])) == base64.b64decode("dat=")


def test_empty_input_decodes_to_nothing() -> None:
    """Given no chunks at all, when decoded, then no bytes come out (the sniffer refuses later)."""
    assert b"".join(iter_base64_decoded([])) == b""


def test_data_url_that_is_not_base64_is_refused() -> None:
    """Given a percent-encoded data URL, when decoded, then InvalidImage names ';base64'."""
    with pytest.raises(InvalidImage, match=";base64"):
        list(iter_base64_decoded(["data:image/png,%89PNG"]))


def test_data_url_without_comma_is_refused() -> None:
    """Given "data:" and then a long header with no comma, when decoded, then InvalidImage."""
    with pytest.raises(InvalidImage, match="no ','"):
        list(iter_base64_decoded(["data:image/png;base64", "A" * 1000]))
