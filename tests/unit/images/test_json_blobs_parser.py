"""parse_json_with_blobs: streams JSON, diverting long strings into Blobs, exact for the rest."""

from __future__ import annotations

import base64
import itertools
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from image_gateway.images.json_blobs import Blob, parse_json_with_blobs

ALPHABETS = [
    "abcxyz0189",
    ' /\\"',  # characters json.dumps escapes, and the slash it does not
    "\n\t\r\b\f\x00\x1f\x7f",  # control characters
    "éßØ漢字\u2028\u2029\ufeff",  # BMP, incl. characters some encoders escape
    "😀𝄞🇫🇷",  # astral: surrogate pairs when escaped
]


def random_string(rng: random.Random, max_length: int) -> str:
    """A string mixing plain, escaped, control, BMP and astral characters."""
    return "".join(rng.choice(rng.choice(ALPHABETS)) for _ in range(rng.randint(0, max_length)))


def random_document(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON-compatible document: nested objects and arrays of every scalar kind."""
    roll = rng.random()
    if depth >= 4 or roll < 0.35:
        return rng.choice(
            [
                random_string(rng, 40),
                rng.randint(-(10**30), 10**30),
                rng.uniform(-1e6, 1e6),
                rng.choice([0.0, -0.0, 1e-300, 1.5e300, 3.14]),
                True,
                False,
                None,
            ]
        )
    if roll < 0.65:
        return [random_document(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    return {
        random_string(rng, 10): random_document(rng, depth + 1) for _ in range(rng.randint(0, 5))
    }


def random_serialisation(rng: random.Random, document: Any) -> bytes:
    """The document as UTF-8 JSON, in one of several encoder styles."""
    text = json.dumps(
        document,
        ensure_ascii=rng.random() < 0.5,
        indent=rng.choice([None, 0, 2, "\t"]),
        separators=rng.choice([None, (",", ":"), (" , ", " : ")]),
    )
    if rng.random() < 0.3:
        text = text.replace("/", "\\/")  # PHP-style escaped slashes (only inside strings)
    return text.encode("utf-8")


def random_split(rng: random.Random, data: bytes) -> list[bytes]:
    """Data cut at up to 12 random places (empty chunks included)."""
    cuts = sorted(rng.choices(range(len(data) + 1), k=rng.randint(0, 12)))
    bounds = [0, *cuts, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


def materialise(value: Any) -> Any:
    """The document with every Blob replaced by its text."""
    if isinstance(value, Blob):
        return b"".join(value.iter_chunks(7)).decode("utf-8")
    if isinstance(value, list):
        return [materialise(item) for item in value]
    if isinstance(value, dict):
        return {key: materialise(item) for key, item in value.items()}
    return value


def parse(chunks: list[bytes], **options: int) -> tuple[Any, list[Blob]]:
    """parse_json_with_blobs over a list of chunks."""
    return parse_json_with_blobs(iter(chunks), **options)


def same_json(left: Any, right: Any) -> bool:
    """Equality that also tells -0.0 from 0.0 and 1 from 1.0 and True."""
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


def test_documents_without_long_strings_round_trip_exactly() -> None:
    """Given 600 random documents in random chunks, then the result equals json.loads."""
    rng = random.Random(1120)
    for _ in range(600):
        data = random_serialisation(rng, random_document(rng))

        document, blobs = parse(random_split(rng, data))

        assert blobs == []
        assert same_json(document, json.loads(data))


def test_long_strings_become_blobs_holding_the_decoded_text() -> None:
    """Given 600 random documents and a tiny threshold, then blobs hold exactly the strings."""
    rng = random.Random(2011)
    for _ in range(600):
        data = random_serialisation(rng, random_document(rng))
        expected = json.loads(data)

        document, blobs = parse(random_split(rng, data), min_blob_chars=rng.randint(0, 12))

        assert same_json(materialise(document), expected)
        for blob in blobs:
            blob.close()


@pytest.mark.parametrize("min_blob_chars", [0, 5, 65536])
def test_small_document_split_at_every_position(min_blob_chars: int) -> None:
    """Given a document with every escape kind cut in two at each byte, then parsing is exact."""
    data = (
        '{"a\\"b": ["x\\/y\\\\z\\n", "\\ud83d\\ude00 \\u00e9 é 😀", -1.5e3, true, null],'
        ' "nested": {"k": [[], {}, "", "\\"\\\\\\/\\b\\f\\n\\r\\t"]}, "n": 0}'
    ).encode()
    expected = json.loads(data)

    for cut in range(len(data) + 1):
        document, blobs = parse([data[:cut], data[cut:]], min_blob_chars=min_blob_chars)

        assert same_json(materialise(document), expected), f"cut at {cut}"
        for blob in blobs:
            blob.close()


def test_document_fed_one_byte_at_a_time() -> None:
    """Given a document with a long escaped string fed byte by byte, then parsing is exact."""
    text = "é😀\\/\u2028" * 50
    data = json.dumps({"s": text, "t": [text[:3]]}, ensure_ascii=True).encode("ascii")

    document, blobs = parse([data[i : i + 1] for i in range(len(data))], min_blob_chars=20)

    assert materialise(document) == json.loads(data)
    assert len(blobs) == 1
    blobs[0].close()


def provider_response(b64: str) -> bytes:
    """An OpenAI-style task response carrying one image as base64, slashes escaped."""
    body = {"status": "completed", "result": {"data": [{"b64_json": b64, "seed": 42}]}}
    return json.dumps(body).replace("/", "\\/").encode("ascii")


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    """Data in chunks of ``size`` bytes."""
    return (data[i : i + size] for i in range(0, len(data), size))


def test_provider_response_with_4_mb_of_base64_yields_one_blob() -> None:
    """Given a 4 MB base64 image in a response fed in 1000-byte chunks, then it is one Blob."""
    payload = random.Random(4).randbytes(3_000_000)
    b64 = base64.b64encode(payload).decode("ascii")

    document, blobs = parse_json_with_blobs(chunked(provider_response(b64), 1000))

    with blobs[0] as blob:
        item = document["result"]["data"][0]
        assert item["b64_json"] is blob
        assert blob.length == len(b64)
        assert b"".join(blob.iter_chunks()) == b64.encode("ascii")
    assert len(blobs) == 1


def test_provider_response_keeps_short_fields_as_plain_values() -> None:
    """Given the same response, then status and seed stay ordinary JSON values."""
    b64 = base64.b64encode(bytes(100_000)).decode("ascii")

    document, blobs = parse_json_with_blobs(chunked(provider_response(b64), 4096))

    assert document["status"] == "completed"
    assert document["result"]["data"][0]["seed"] == 42
    for blob in blobs:
        blob.close()


def test_blob_read_prefix_and_small_chunks() -> None:
    """Given a blob, when read by prefix and in small chunks, then both see the same text."""
    text = "data:image/png;base64," + "A" * 200
    (document, blobs) = parse([json.dumps([text]).encode()], min_blob_chars=10)

    with document[0] as blob:
        assert blob.read_prefix(22) == b"data:image/png;base64,"
        assert [len(chunk) for chunk in blob.iter_chunks(100)] == [100, 100, 22]
    assert len(blobs) == 1


def test_string_exactly_at_the_threshold_stays_a_string() -> None:
    """Given strings of 10 and 11 characters and a threshold of 10, then only the 11 is a blob."""
    document, blobs = parse([b'["0123456789", "0123456789a"]'], min_blob_chars=10)

    assert document[0] == "0123456789"
    assert isinstance(document[1], Blob)
    assert len(blobs) == 1
    blobs[0].close()


def test_object_keys_are_never_diverted() -> None:
    """Given a long object key and a tiny threshold, then the key stays an ordinary string."""
    key = "k" * 500

    document, blobs = parse([json.dumps({key: "v" * 500}).encode()], min_blob_chars=10)

    assert list(document) == [key]
    assert isinstance(document[key], Blob)
    blobs[0].close()


def test_top_level_long_string_is_a_blob() -> None:
    """Given a document that is one long string, then the document is the Blob itself."""
    document, blobs = parse([b'"', b"x" * 300, b'"'], min_blob_chars=10)

    assert blobs == [document]
    assert document.length == 300
    document.close()


def test_lone_surrogate_in_a_short_string_behaves_like_json_loads() -> None:
    """Given a short string with a lone surrogate escape, then it is kept as json.loads keeps it."""
    document, _ = parse([b'["\\ud800"]'])

    assert document == ["\ud800"]


def test_lone_surrogate_in_a_long_string_is_refused() -> None:
    """Given a long string with a lone surrogate escape, then ValueError explains the limit."""
    with pytest.raises(ValueError, match="lone surrogate"):
        parse([b'["' + b"a" * 50 + b'\\ud800"]'], min_blob_chars=10)


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b"", "Expecting value"),
        (b'{"a": 1', "Expecting ',' delimiter"),
        (b'{"a" 1}', "Expecting ':' delimiter"),
        (b"[1, 2,]", "Expecting value|trailing comma"),  # Python 3.13 words it differently
        (b'{"a": tru}', "Expecting value"),
        (b'{"a": "unterminated', "unterminated string"),
        (b'["bad \\x escape"]', "Invalid \\\\escape"),
        (b'["raw \x01 control"]', "control character"),
        (b'["\xff\xfe not utf-8"]', "UTF-8"),
        (b"[1] [2]", "Extra data"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
    ids=[
        "empty",
        "unclosed-object",
        "missing-colon",
        "trailing-comma",
        "bad-literal",
        "unterminated-string",
        "bad-escape",
        "control-char",
        "not-utf8",
        "two-documents",
        "too-deep",
    ],
)
def test_malformed_json_raises_value_error(data: bytes, complaint: str) -> None:
    """Given malformed JSON, when parsed, then ValueError says what is wrong."""
    with pytest.raises(ValueError, match=complaint):
        parse([data])


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b'{"image": "' + b"A" * 100 + b'\\q"}', "Invalid \\\\escape"),
        (b'{"image": "' + b"A" * 100 + b'\x00"}', "control character"),
        (b'{"image": "' + b"A" * 100 + b'\xc3("}', "UTF-8"),
        (b'{"image": "' + b"A" * 100 + b'"', "Expecting ',' delimiter"),
        (b'{"image": "' + b"A" * 100, "unterminated string"),
    ],
    ids=["bad-escape", "control-char", "not-utf8", "unclosed-object", "unterminated"],
)
def test_malformed_json_around_a_blob_raises_value_error(data: bytes, complaint: str) -> None:
    """Given malformed JSON in or after a long string, when parsed, then ValueError says what."""
    with pytest.raises(ValueError, match=complaint):
        parse(list(chunked(data, 7)), min_blob_chars=10)


def test_closed_blob_cannot_be_read() -> None:
    """Given a blob used as a context manager, when the block ends, then its file is gone."""
    _, blobs = parse([b'["' + b"z" * 100 + b'"]'], min_blob_chars=10)
    with blobs[0]:
        pass

    with pytest.raises(ValueError):
        blobs[0].read_prefix(1)
