"""The console function: the page with its assets' version, the assets cached for good, 404s."""

from __future__ import annotations

import json
import re
from types import ModuleType
from typing import Any

import pytest

from devstack.template import ROOT
from tests.unit.handlers import load_file


@pytest.fixture(scope="module")
def console() -> ModuleType:
    return load_file("functions/console/app.py", "console_app")


def _get(console: ModuleType, file: str | None) -> dict[str, Any]:
    event = json.loads((ROOT / "events" / "console-asset.json").read_text())
    event["pathParameters"] = None if file is None else {"file": file}
    result: dict[str, Any] = console.lambda_handler(event, None)
    return result


def test_the_page_names_its_assets_by_their_digest_and_is_never_cached_stale(
    console: ModuleType,
) -> None:
    page = _get(console, None)

    assert page["statusCode"] == 200
    assert page["headers"]["content-type"].startswith("text/html")
    assert page["headers"]["cache-control"] == "no-cache"
    versions = set(re.findall(r"console/console\.(?:js|css)\?v=([0-9a-f]{12})", page["body"]))
    assert len(versions) == 1
    assert "{{version}}" not in page["body"]


@pytest.mark.parametrize(
    ("file", "kind"), [("console.js", "text/javascript"), ("console.css", "text/css")]
)
def test_an_asset_is_served_with_its_type_and_cached_for_a_year(
    console: ModuleType, file: str, kind: str
) -> None:
    asset = _get(console, file)

    assert asset["statusCode"] == 200
    assert asset["headers"]["content-type"].startswith(kind)
    assert "immutable" in asset["headers"]["cache-control"]


def test_anything_else_is_a_404(console: ModuleType) -> None:
    assert _get(console, "app.py")["statusCode"] == 404
    assert _get(console, "..%2Fapp.py")["statusCode"] == 404


def test_every_answer_forbids_framing_and_scripts_from_elsewhere(console: ModuleType) -> None:
    headers = _get(console, None)["headers"]

    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_the_api_docs_are_swagger_ui_of_the_openapi_document(console: ModuleType) -> None:
    # GIVEN the route GET /docs WHEN served
    event = json.loads((ROOT / "events" / "console-asset.json").read_text())
    event.update(routeKey="GET /docs", rawPath="/docs", pathParameters=None)
    page = console.lambda_handler(event, None)

    # THEN Swagger UI, served by this function (no CDN), reads the document; the policy allows
    # scripts from this origin only
    assert page["statusCode"] == 200
    assert page["headers"]["content-type"].startswith("text/html")
    assert re.search(r"console/swagger-ui-bundle\.js\?v=[0-9a-f]{12}", page["body"])
    assert re.search(r"console/docs\.js\?v=[0-9a-f]{12}", page["body"])
    assert "https:" not in page["body"].split("<body>")[0]
    policy = page["headers"]["content-security-policy"]
    assert "script-src 'self';" in policy and "https:" not in policy
    bundle = _get(console, "swagger-ui-bundle.js")
    assert bundle["statusCode"] == 200 and "SwaggerUIBundle" in bundle["body"]
    assert bundle["headers"]["cache-control"] == "public, max-age=31536000, immutable"
    assert '"v1/openapi.json"' in _get(console, "docs.js")["body"]
