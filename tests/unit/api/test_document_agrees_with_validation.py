"""The OpenAPI document's request schemas say what validation accepts: a body the document
calls valid is accepted by the models, and one it calls invalid is refused (the fuzzer's
positive and negative checks, tests/e2e/own_stack/test_contract.py, rely on both)."""

from __future__ import annotations

import itertools
from typing import Any

import jsonschema
import pytest
from image_gateway.errors import InvalidRequest
from image_gateway.http.contract import request_schemas
from image_gateway.idempotency import KEY_PATTERN, check_key
from image_gateway.models.request import ImageRequest
from pydantic import ValidationError

ABSENT = object()
URL = "https://images.example.com/cat.png"

# Groups of fields a rule ties together; every combination of each group's values is tried.
GROUPS: dict[str, dict[str, list[Any]]] = {
    "prompt": {"prompt": ["a fox", "", " ", "\t x \n", "x" * 32_001, "\x85", "\x1c", "\ufeff"]},
    "size": {
        "size": [
            ABSENT,
            "auto",
            "1024x1536",
            "63x64",
            "3840x3841",
            "1024x",
            " 64x64 ",
            "big",
            "\x85auto",
            "\x1cauto",
            "\u3000auto\u2029",
        ],
        "aspect_ratio": [ABSENT, None, "16:9"],
        "resolution": [ABSENT, None, "2K"],
    },
    "inputs": {
        "images": [
            ABSENT,
            [],
            [URL],
            ["ftp://x/y.png"],
            ["s3://bucket/inputs/c/0.png"],
            ["s3://b.c/ \u2000"],
            ["data:image/png;base64, "],
            ["data:image/png;base64,iVBO\n"],
        ],
        "mask": [ABSENT, None, URL, "https://"],
        "input_fidelity": [ABSENT, None, "low"],
    },
    "callbacks": {
        "callback_url": [
            ABSENT,
            None,
            "https://hooks.example.com/h",
            "ftp://x",
            " http://a/ ",
            "http://",
        ],
        "callback_events": [ABSENT, None, ["completed"]],
    },
    "format": {
        "output_format": [ABSENT, "png", "jpeg", "webp"],
        "output_compression": [ABSENT, None, 0, 100],
    },
    "providers": {
        "provider": [ABSENT, None, "apimart", "nobody"],
        "providers": [ABSENT, None, ["apimart", "openai"], ["apimart", "apimart"], ["nobody"]],
    },
    "metadata": {
        "metadata": [
            ABSENT,
            {},
            {"k": "v"},
            {"": "v"},
            {" ": "v"},
            {"k" * 65: "v"},
            {"k": "v" * 257},
        ],
    },
}


def _bodies(group: dict[str, list[Any]]) -> list[dict[str, Any]]:
    names = list(group)
    return [
        {"prompt": "a fox"} | {n: v for n, v in zip(names, values, strict=True) if v is not ABSENT}
        for values in itertools.product(*(group[n] for n in names))
    ]


def _document_accepts(body: dict[str, Any]) -> bool:
    schemas = request_schemas()
    schema = {**schemas["ImageRequest"], "$defs": schemas}
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return validator.is_valid(body)


def _models_accept(body: dict[str, Any]) -> bool:
    try:
        request = ImageRequest.model_validate(body)
    except ValidationError:
        return False
    # unknown names pass the model's syntax check and are refused at submit (unknown_provider)
    names = [request.provider] if request.provider else request.providers or []
    return all(name in {"apimart", "openai"} for name in names)


@pytest.mark.parametrize("group", list(GROUPS))
def test_the_document_and_the_models_agree_on_every_combination(group: str) -> None:
    # GIVEN every combination of the group's values WHEN the document's schema and the models
    # judge each body THEN they give the same verdict
    disagreements = [
        body for body in _bodies(GROUPS[group]) if _document_accepts(body) != _models_accept(body)
    ]

    assert disagreements == []


@pytest.mark.parametrize(
    "key", ["k", "a" * 128, "a" * 129, "", " k", "k ", "k k", "ключ", "k\tk", "~!"]
)
def test_the_idempotency_key_pattern_is_the_check(key: str) -> None:
    # GIVEN a key WHEN the documented pattern and the check judge it THEN the same verdict
    documented = jsonschema.Draft202012Validator(
        {"type": "string", "minLength": 1, "maxLength": 128, "pattern": KEY_PATTERN}
    ).is_valid(key)
    try:
        check_key(key)
        checked = True
    except InvalidRequest:
        checked = False

    assert documented == checked
