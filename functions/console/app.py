"""The console: ``GET /console`` (the page) and ``GET /console/{file}`` (its script and styles),
and ``GET /docs``: Swagger UI of the API's OpenAPI document (``/v1/openapi.json``), its files
served from here too.

Static files from this function's own folder, read once per execution environment. The page
calls the client API from the browser with a key the user pastes (kept in the tab's
sessionStorage only). This function reads no AWS and imports nothing from the layer, so it
starts in milliseconds and the API function's cold start stays what it was.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

STATIC = Path(__file__).parent / "static"
ASSETS = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "docs.js": "text/javascript; charset=utf-8",
    # Swagger UI 5.17.14, the npm package swagger-ui-dist's files as published (Apache-2.0:
    # static/swagger-ui-LICENSE, -NOTICE), served from here: /docs needs no CDN, no internet.
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}
# Images come from presigned S3 URLs (http://127.0.0.1 on devstack); the API is this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' https: data: blob: http://127.0.0.1:* http://localhost:*; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# The API reference: Swagger UI, the document and "try it out" calls, all from this origin
# (the browser test renders it under this policy with no violation reported).
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@cache
def _asset(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@cache
def _page(name: str = "index.html") -> str:
    """A page with its assets' version (their digest), so they can be cached for a year."""
    digest = hashlib.sha256("".join(_asset(n) for n in sorted(ASSETS)).encode()).hexdigest()
    return _asset(name).replace("{{version}}", digest[:12])


def _response(status: int, body: str, content_type: str, cache_control: str) -> dict[str, Any]:
    headers = {"content-type": content_type, "cache-control": cache_control, **SECURITY_HEADERS}
    return {"statusCode": status, "headers": headers, "body": body, "isBase64Encoded": False}


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """API Gateway HTTP API (payload 2.0): the console, one of its assets, the API docs, or 404."""
    if event.get("routeKey") == "GET /docs":
        docs = _response(200, _page("docs.html"), "text/html; charset=utf-8", "no-cache")
        docs["headers"]["content-security-policy"] = DOCS_CONTENT_SECURITY_POLICY
        return docs
    name = (event.get("pathParameters") or {}).get("file")
    if name is None:
        return _response(200, _page(), "text/html; charset=utf-8", "no-cache")
    if name in ASSETS:
        return _response(200, _asset(name), ASSETS[name], "public, max-age=31536000, immutable")
    return _response(404, "not found\n", "text/plain; charset=utf-8", "no-cache")
