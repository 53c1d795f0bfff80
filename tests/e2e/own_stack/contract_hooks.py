"""schemathesis hooks of tests/e2e/test_contract.py (loaded through ``SCHEMATHESIS_HOOKS``).

A data URL's base64 must be a real PNG, JPEG or WebP (the document says so in words; no JSON
Schema keyword makes a generator draw an image), so in positive cases each data URL schemathesis
drew becomes one small real PNG: every other field stays as drawn, and 400 ``invalid_image``
stays a failure of the positive check for any input the gateway should have taken.

A positive ``POST /v1/batches`` keeps at most ``MAX_BATCH_LINES`` of the lines drawn (up to
1,000 is valid): each line of an accepted batch is stored and may become a real task, so the
batch fuzz stays small and quick while every other field stays as drawn.
"""

from __future__ import annotations

import base64
import io
import re
from typing import Any

import schemathesis
from PIL import Image

_DATA_URL = re.compile(r"^\s*data:image/", re.IGNORECASE)


def _png_data_url() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "teal").save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


PNG = _png_data_url()
MAX_BATCH_LINES = 3


def _real(value: Any) -> Any:
    return PNG if isinstance(value, str) and _DATA_URL.match(value) else value


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    """Positive bodies of ``POST /v1/images``: real images in place of drawn data URLs; of
    ``POST /v1/batches``: at most ``MAX_BATCH_LINES`` lines."""
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    body = case.body
    lines = body.get("requests") if isinstance(body, dict) else None
    if positive and case.operation.label == "POST /v1/batches" and isinstance(lines, list):
        body["requests"] = lines[:MAX_BATCH_LINES]
    if positive and case.operation.label == "POST /v1/images" and isinstance(body, dict):
        if isinstance(body.get("images"), list):
            body["images"] = [_real(v) for v in body["images"]]
        if "mask" in body:
            body["mask"] = _real(body["mask"])
    return case
