"""Provider simulator, the server itself: its mount table, admin endpoints, lifecycle, and the
multipart/form-data parser the sync dialects use."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from image_gateway.providers.registry import PROVIDER_TYPES
from PIL import Image

from devstack.simulator import ProviderSimulator
from devstack.simulator.render import decode_data_url
from devstack.simulator.server import MOUNTS
from devstack.simulator.wire import FormFile, SimRequest, parse_form
from tests.devstack.support import (
    API_KEY,
    data_url,
    mountsea_create,
)

# ---------------------------------------------------------------- the mount table


def test_the_mount_table_has_a_row_for_every_provider_of_the_gateway() -> None:
    # Given the providers the gateway knows (registry names only: no adapter is imported)
    # When the simulator's mount table is read
    simulated = {mount.provider for mount in MOUNTS}
    # Then every one of them is simulated
    missing = sorted(set(PROVIDER_TYPES) - simulated)
    assert not missing, (
        f"no simulator for {missing}: add a row to MOUNTS in devstack/simulator/server.py "
        "(and the provider's simulator module next to it)"
    )


def test_each_mounted_provider_is_served_below_its_own_prefix(sim: ProviderSimulator) -> None:
    # Given a running simulator
    # When each provider's base URL is asked
    urls = {provider: sim.provider_base_url(provider) for provider in sim.providers}
    # Then it is the table's prefix on the simulator's base URL, one per table row
    assert urls == {m.provider: sim.base_url + m.prefix for m in MOUNTS}


# ---------------------------------------------------------------- admin endpoints and lifecycle


def test_provider_base_urls_sit_under_the_base_url(sim: ProviderSimulator) -> None:
    # Given a running simulator
    # When its provider base URLs are asked
    # Then each provider has its own prefix on the simulator's base URL
    assert sim.base_url.startswith("http://127.0.0.1:")
    assert sim.provider_base_url("apimart") == f"{sim.base_url}/apimart"
    assert sim.provider_base_url("mountsea-async") == f"{sim.base_url}/mountsea"


def test_health_answers_ok(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a running simulator
    # When its health is asked
    response = http.get(f"{sim.base_url}/_sim/health")
    # Then it is ok
    assert response.json() == {"ok": True}


def test_request_log_records_requests_without_secrets_or_huge_strings(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given an edit request with a large data URL
    marker = f"log-{uuid.uuid4().hex}"
    source = data_url(Image.effect_noise((128, 128), 64))
    mountsea_create(http, sim, prompt=marker, image=source)
    # When the request log is read
    log = http.get(f"{sim.base_url}/_sim/requests").json()
    [entry] = [e for e in log if e["body"] and e["body"].get("prompt") == marker]
    # Then the request is there with header names, no key, and the image cut short
    assert entry["provider"] == "mountsea-async"
    assert entry["method"] == "POST"
    assert entry["path"] == "/mountsea/openai/images"
    assert entry["status"] == 200
    assert "Authorization" in entry["headers"]
    assert API_KEY not in json.dumps(entry)
    assert len(entry["body"]["image"]) < 300 < len(source)


def test_reset_clears_the_logs(sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a logged request
    marker = f"reset-{uuid.uuid4().hex}"
    mountsea_create(http, sim, prompt=marker)
    # When the simulator is reset
    http.post(f"{sim.base_url}/_sim/reset")
    # Then the request log no longer has it
    log = http.get(f"{sim.base_url}/_sim/requests").json()
    assert not [e for e in log if e["body"] and e["body"].get("prompt") == marker]


def test_stop_closes_the_port(http: httpx.Client) -> None:
    # Given a started simulator
    simulator = ProviderSimulator(api_key=API_KEY)
    simulator.start()
    url = f"{simulator.base_url}/_sim/health"
    assert http.get(url).status_code == 200
    # When it is stopped
    simulator.stop()
    # Then nothing answers on its port any more
    with pytest.raises(httpx.TransportError):
        http.get(url)


# ---------------------------------------------------------------- multipart/form-data


def httpx_multipart(data: dict[str, str], files: list[Any]) -> tuple[str, bytes]:
    """(Content-Type, body) exactly as httpx sends `post(url, data=data, files=files)`."""
    request = httpx.Request("POST", "http://simulator.invalid/", data=data, files=files)
    return request.headers["Content-Type"], request.read()


def test_form_parses_httpx_fields_and_files_byte_for_byte() -> None:
    # Given an httpx multipart body whose file holds every byte value and boundary-like lines
    tricky = bytes(range(256)) + b"\r\n--\r\n--boundary\r\n\r\n" + bytes(range(256))
    content_type, body = httpx_multipart(
        {"prompt": "a fox", "size": "1024x1024"}, [("image", ("fox.png", tricky, "image/png"))]
    )
    # When it is parsed
    form = parse_form(content_type, body)
    # Then the fields and the file come back exactly
    assert form.fields == (("prompt", "a fox"), ("size", "1024x1024"))
    assert form.files == (FormFile("image", "fox.png", "image/png", tricky),)
    assert form.get("size") == "1024x1024"
    assert form.get("missing") is None


def test_form_keeps_repeated_parts_in_order() -> None:
    # Given images sent as repeated `image` and `image[]` parts, and a mask
    files = [
        ("image", ("a.png", b"A", "image/png")),
        ("image[]", ("b.png", b"B", "image/png")),
        ("image", ("c.png", b"C", "image/png")),
        ("mask", ("m.png", b"M", "image/png")),
    ]
    content_type, body = httpx_multipart({}, files)
    # When it is parsed
    form = parse_form(content_type, body)
    # Then the image parts come back in order under their own names
    assert [f.data for f in form.files_named("image", "image[]")] == [b"A", b"B", b"C"]
    assert [f.field for f in form.files_named("image", "image[]")] == ["image", "image[]", "image"]
    assert [f.field for f in form.files] == ["image", "image[]", "image", "mask"]


def test_form_decodes_utf8_and_keeps_empty_values() -> None:
    # Given a non-ASCII field value and file name, an empty field and an empty file
    content_type, body = httpx_multipart(
        {"prompt": "un renard rouge été ☃", "user": ""},
        [("image", ("rénard.png", b"", "image/png"))],
    )
    # When it is parsed
    form = parse_form(content_type, body)
    # Then text and name are decoded, and the empty parts kept
    assert form.get("prompt") == "un renard rouge été ☃"
    assert form.get("user") == ""
    assert (form.files[0].filename, form.files[0].data) == ("rénard.png", b"")


def test_form_file_becomes_a_data_url_of_its_bytes() -> None:
    # Given a parsed file part sent without a content type of its own
    content_type, body = httpx_multipart({}, [("image", ("x.bin", b"\x89PNG raw"))])
    [part] = parse_form(content_type, body).files
    # When it is turned into a data URL
    # Then the data URL decodes to the same bytes
    assert part.data_url().startswith(f"data:{part.content_type};base64,")
    assert decode_data_url(part.data_url()) == b"\x89PNG raw"


def test_sim_request_form_reads_its_content_type_header() -> None:
    # Given a request carrying an httpx multipart body
    content_type, body = httpx_multipart({"prompt": "x"}, [("image", ("a.png", b"A", "image/png"))])
    request = SimRequest("POST", "/", {}, {"content-type": content_type}, body)
    # When its form is read
    form = request.form()
    # Then it is the parsed body
    assert request.media_type == "multipart/form-data"
    assert form.get("prompt") == "x"


@pytest.mark.parametrize(
    ("mangle", "complaint"),
    [
        (lambda ct, body: ("application/json", body), "multipart/form-data"),
        (lambda ct, body: ("multipart/form-data", body), "boundary"),
        (lambda ct, body: (ct, body[: len(body) // 2]), "closing boundary"),
        (lambda ct, body: (ct, body.replace(b"form-data; ", b"attachment; ")), "form-data"),
        (lambda ct, body: (ct + "x", body), "boundary"),
    ],
    ids=["not-multipart", "no-boundary", "truncated", "not-form-data", "other-boundary"],
)
def test_form_rejects_malformed_bodies(
    mangle: Callable[[str, bytes], tuple[str, bytes]], complaint: str
) -> None:
    # Given a well-formed httpx multipart body, then mangled
    content_type, body = mangle(
        *httpx_multipart({"prompt": "x"}, [("image", ("a.png", b"A", "image/png"))])
    )
    # When it is parsed
    # Then the parser says what is wrong
    with pytest.raises(ValueError, match=complaint):
        parse_form(content_type, body)
