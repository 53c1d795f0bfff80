"""JSON request bodies: the media type, and a decoder that raises nothing but a GatewayError.

Whatever bytes a caller sends, reading them ends in a value or a 4xx with a stable code:
``unsupported_media_type`` (415) for anything but ``application/json`` (case-insensitive, with
an optional ``charset=utf-8``), ``invalid_json`` (400) for a body that is empty, not JSON, not
an object, nested deeper than :data:`MAX_DEPTH`, holding an integer over Python's digit limit
(``ValueError``) or a string with an unpaired surrogate escape, or using ``NaN``/``Infinity``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, NoReturn

from image_gateway.errors import InvalidRequest, UnsupportedMediaType

JSON_MEDIA_TYPE = "application/json"
MAX_DEPTH = 32
"""Deepest nesting of objects and arrays a body may have (requests need 3)."""

_TOO_DEEP = f"the JSON is nested too deeply: at most {MAX_DEPTH} levels of objects and arrays"
_TYPE_NAMES = {list: "an array", str: "a string", int: "a number", float: "a number"}
_TYPE_NAMES.update({bool: "a boolean", type(None): "null"})


@dataclass(frozen=True)
class MediaType:
    """A parsed ``Content-Type``: ``type/subtype`` and parameters, names in lower case."""

    essence: str
    parameters: dict[str, str] = field(default_factory=dict)


def parse_media_type(value: str) -> MediaType:
    """Parse ``type/subtype; name=value; ...`` (RFC 9110: names are case-insensitive)."""
    essence, *params = value.split(";")
    parameters: dict[str, str] = {}
    for param in params:
        name, _, raw = param.partition("=")
        if name.strip():
            parameters[name.strip().lower()] = raw.strip().strip('"')
    return MediaType("".join(essence.split()).lower(), parameters)


def require_json(content_type: str | None) -> None:
    """Accept ``application/json`` (any case, charset utf-8 or none); else 415 saying what to send.

    Raises:
        UnsupportedMediaType: ``unsupported_media_type``, naming what was sent.
    """
    if not content_type or not content_type.strip():
        _refuse("the body has no Content-Type: send it as JSON with Content-Type: application/json")
    media = parse_media_type(content_type)
    if media.essence == "multipart/form-data":
        _refuse(
            "this route takes JSON, not multipart/form-data: send Content-Type: application/json "
            "with images as data:image/...;base64 URLs or s3:// references in the JSON body"
        )
    if media.essence != JSON_MEDIA_TYPE:
        _refuse(f"Content-Type {media.essence!r} is not supported: send application/json")
    charset = media.parameters.get("charset", "utf-8").lower()
    if charset not in {"utf-8", "utf8"}:
        _refuse(f"JSON bodies are UTF-8: charset {charset!r} is not supported")


def require_content(text: str) -> None:
    """Refuse an empty (or all-whitespace) body: 400 ``invalid_json`` saying what to send."""
    if not text.strip():
        _invalid('the body is empty: send a JSON object such as {"prompt": "..."}')


def decode_json_object(text: str) -> dict[str, Any]:
    """The JSON object in ``text``; every way it can be wrong is a 400 ``invalid_json``.

    The API's router (``Request.json``) calls it, so the body is parsed once, here.

    Raises:
        InvalidRequest: ``invalid_json``, with a message saying what to fix.
    """
    require_content(text)
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        _invalid(f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    except RecursionError:
        _invalid(_TOO_DEEP)
    except _NonStandardConstant as exc:
        _invalid(f"{exc} is not JSON: numbers must be finite")
    except ValueError:  # int() of more digits than sys.get_int_max_str_digits()
        _invalid("a number in the JSON has too many digits: send long numbers as strings")
    if not isinstance(value, dict):
        kind = _TYPE_NAMES.get(type(value), "not an object")
        _invalid(f"the body must be a JSON object ({{...}}), not {kind}")
    _check_tree(value)
    return value


def _check_tree(root: dict[str, Any]) -> None:
    """Depth and strings, walked without recursion (the limit protects what runs after)."""
    pending: list[tuple[Any, int]] = [(root, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            items: list[Any] = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            items = value
        else:
            if isinstance(value, str):
                _check_string(value)
            continue
        if depth > MAX_DEPTH:
            _invalid(_TOO_DEEP)
        pending.extend((item, depth + 1) for item in items)


def _check_string(value: str) -> None:
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        _invalid("a string in the JSON has an unpaired surrogate escape (\\ud800-\\udfff)")


class _NonStandardConstant(Exception):
    """``NaN``, ``Infinity`` or ``-Infinity``: Python's json reads them, JSON has none."""


def _refuse_constant(name: str) -> NoReturn:
    raise _NonStandardConstant(name)


def _invalid(message: str) -> NoReturn:
    raise InvalidRequest(message, code="invalid_json")


def _refuse(message: str) -> NoReturn:
    raise UnsupportedMediaType(message)
