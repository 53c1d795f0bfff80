"""JSON bodies: the media type check and the decoder that raises nothing but a GatewayError."""

from __future__ import annotations

import pytest
from image_gateway.errors import GatewayError, InvalidRequest, UnsupportedMediaType
from image_gateway.http.json_body import (
    MAX_DEPTH,
    MediaType,
    decode_json_object,
    parse_media_type,
    require_json,
)


# -- media types ---------------------------------------------------------------------------------
def test_a_media_type_is_parsed_in_lower_case_with_its_parameters() -> None:
    parsed = parse_media_type(' Application/JSON ; Charset="UTF-8"; q ')

    assert parsed == MediaType("application/json", {"charset": "UTF-8", "q": ""})


@pytest.mark.parametrize(
    "value",
    [
        "application/json",
        "APPLICATION/JSON",
        "application/json; charset=utf-8",
        "application/json;charset=UTF8",
    ],
)
def test_json_in_any_case_with_a_utf8_charset_is_accepted(value: str) -> None:
    require_json(value)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "no Content-Type"),
        ("  ", "no Content-Type"),
        ("multipart/form-data", "data:image/...;base64 URLs or s3:// references"),
        ("multipart/form-data; boundary=x", "not multipart/form-data"),
        ("text/plain", "'text/plain' is not supported"),
        ("application/jsonx", "'application/jsonx' is not supported"),
        ("application/json; charset=iso-8859-1", "charset 'iso-8859-1'"),
    ],
)
def test_anything_else_is_a_415_saying_what_to_send(value: str | None, says: str) -> None:
    with pytest.raises(UnsupportedMediaType) as refused:
        require_json(value)

    assert (refused.value.status_code, refused.value.code) == (415, "unsupported_media_type")
    assert says in refused.value.message


# -- decoding ------------------------------------------------------------------------------------
def test_a_json_object_is_decoded() -> None:
    assert decode_json_object('{"prompt": "a fox", "images": []}') == {
        "prompt": "a fox",
        "images": [],
    }


def test_nesting_up_to_the_limit_is_accepted() -> None:
    text = '{"a": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}"

    assert "a" in decode_json_object(text)


def test_non_ascii_text_is_kept() -> None:
    assert decode_json_object('{"prompt": "un phare \\u00e0 l\'aube 🌅"}') == {
        "prompt": "un phare à l'aube 🌅"
    }


BAD = {
    "empty": ("", "the body is empty"),
    "blank": ("\n\t ", "the body is empty"),
    "not-json": ("{not json", "not valid JSON: Expecting property name"),
    "trailing-garbage": ('{"a": 1} x', "Extra data (line 1, column 10)"),
    "100000-deep": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "one-level-too-deep": (
        '{"a": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}",
        f"at most {MAX_DEPTH} levels",
    ),
    "deep-inside-an-object": ('{"a": {"b": ' + '{"c": ' * 40 + "1" + "}" * 42, "nested too deeply"),
    "5000-digit-integer": ('{"n": ' + "9" * 5000 + "}", "too many digits"),
    "nan": ('{"x": NaN}', "NaN is not JSON"),
    "infinity": ('{"x": -Infinity}', "-Infinity is not JSON"),
    "unpaired-surrogate-value": ('{"prompt": "a\\ud800b"}', "unpaired surrogate"),
    "unpaired-surrogate-key": ('{"\\udfff": 1}', "unpaired surrogate"),
    "null": ("null", "not null"),
    "array": ("[1, 2]", "not an array"),
    "string": ('"hi"', "not a string"),
    "number": ("42", "not a number"),
    "boolean": ("true", "not a boolean"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_every_bad_body_is_a_400_invalid_json_saying_what_is_wrong(name: str) -> None:
    text, says = BAD[name]

    with pytest.raises(InvalidRequest) as refused:
        decode_json_object(text)

    assert (refused.value.status_code, refused.value.code) == (400, "invalid_json")
    assert says in refused.value.message


def test_only_gateway_errors_come_out_of_the_decoder() -> None:
    # GIVEN every bad body WHEN decoded THEN each raises a GatewayError (never ValueError,
    # RecursionError, UnicodeError...), so the API's one error handler answers it
    for text, _ in BAD.values():
        with pytest.raises(GatewayError):
            decode_json_object(text)
