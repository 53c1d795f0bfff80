"""Provider simulator, the sync OpenAI Images dialect, as `openai` and as `mountsea-compat`."""

from __future__ import annotations

import base64
import io
import time
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image, UnidentifiedImageError

from devstack.simulator import ProviderSimulator, openai_compat
from tests.devstack.support import (
    AUTH,
    GREEN,
    INSTANT,
    inline_image,
    left_half_mask,
    near,
    png_bytes,
    red_left_blue_right,
)

MODEL = "gpt-image-2"
ANSWER_FIELDS = {"created", "background", "output_format", "quality", "size", "data", "usage"}

Files = list[tuple[str, tuple[str, bytes, str]]]

# provider name -> the path of its `/images/...` endpoints below its base URL
API_ROOTS = {"openai": "/v1", "mountsea-compat": "/openai/v1"}


@pytest.fixture(params=sorted(API_ROOTS))
def provider(request: pytest.FixtureRequest) -> str:
    """Each test runs against both mounts of the dialect."""
    name: str = request.param
    return name


def images_url(sim: ProviderSimulator, provider: str, endpoint: str) -> str:
    return f"{sim.provider_base_url(provider)}{API_ROOTS[provider]}/images/{endpoint}"


def generate(
    http: httpx.Client, sim: ProviderSimulator, provider: str, **fields: Any
) -> httpx.Response:
    body = {"model": MODEL, "prompt": f"{INSTANT} a lighthouse", **fields}
    return http.post(images_url(sim, provider, "generations"), json=body, headers=AUTH)


def edit(
    http: httpx.Client, sim: ProviderSimulator, provider: str, files: Files, **fields: str
) -> httpx.Response:
    data = {"model": MODEL, "prompt": f"{INSTANT} at dusk", **fields}
    url = images_url(sim, provider, "edits")
    return http.post(url, data=data, files=files, headers=AUTH)


def png_file(field: str, picture: Image.Image) -> tuple[str, tuple[str, bytes, str]]:
    return (field, (f"{field}.png", png_bytes(picture), "image/png"))


def assert_invalid(response: httpx.Response, param: str | None, code: str | None) -> str:
    """Check an OpenAI-style 400 naming `param`; return its message."""
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    message: str = error["message"]
    return message


# ---------------------------------------------------------------- generations


@pytest.mark.parametrize(
    ("size", "output_format", "pixels", "pil_format"),
    [
        ("1024x1536", "png", (1024, 1536), "PNG"),
        ("1536x1024", "jpeg", (1536, 1024), "JPEG"),
        ("auto", "webp", (1024, 1024), "WEBP"),
    ],
)
def test_generation_answers_an_image_of_the_asked_size_and_format(
    size: str,
    output_format: str,
    pixels: tuple[int, int],
    pil_format: str,
    provider: str,
    sim: ProviderSimulator,
    http: httpx.Client,
) -> None:
    # Given a generation request for a size and format
    # When it is answered
    response = generate(
        http, sim, provider, size=size, output_format=output_format, output_compression=80
    )
    # Then the answer is OpenAI's, carrying a real image of that size and format
    body = response.json()
    assert set(body) == ANSWER_FIELDS
    assert body["size"] == f"{pixels[0]}x{pixels[1]}"
    assert body["output_format"] == output_format
    picture = inline_image(response)
    assert (picture.format, picture.size) == (pil_format, pixels)


def test_auto_background_and_quality_are_reported_as_drawn(
    provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a request leaving background and quality to auto
    # When it is answered
    body = generate(http, sim, provider).json()
    # Then the answer says what was drawn, with a usage block
    assert (body["background"], body["quality"]) == ("opaque", "medium")
    assert body["usage"]["output_tokens"] > 0
    assert body["usage"]["input_tokens_details"]["image_tokens"] == 0


def test_transparent_background_has_transparent_pixels(
    provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a PNG request with a transparent background
    response = generate(http, sim, provider, background="transparent")
    # When the image is decoded
    picture = inline_image(response)
    # Then it has fully transparent pixels
    assert response.json()["background"] == "transparent"
    assert picture.mode == "RGBA"
    assert picture.getchannel("A").getextrema()[0] == 0


def test_request_is_held_for_the_quality_latency(
    provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a high quality request (45 s x 0.01) without a latency marker
    started = time.monotonic()
    # When it is answered
    response = generate(http, sim, provider, prompt="a lighthouse", quality="high")
    # Then it was held for the quality's latency
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.45


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"response_format": "b64_json"}, "response_format", "unknown_parameter"),
        ({"input_fidelity": "high"}, "input_fidelity", "unknown_parameter"),
        ({"model": "dall-e-3"}, "model", "invalid_value"),
        ({"prompt": ""}, "prompt", "invalid_value"),
        ({"n": 2}, "n", "invalid_value"),
        ({"size": "512x512"}, "size", "invalid_value"),
        ({"quality": "standard"}, "quality", "invalid_value"),
        ({"output_format": "gif"}, "output_format", "invalid_value"),
        ({"output_compression": 101}, "output_compression", "invalid_value"),
        ({"moderation": "high"}, "moderation", "invalid_value"),
        ({"user": 7}, "user", "invalid_value"),
        ({"background": "transparent", "output_format": "jpeg"}, "background", "invalid_value"),
    ],
)
def test_invalid_generation_is_a_400_naming_the_param(
    fields: dict[str, Any],
    param: str,
    code: str,
    provider: str,
    sim: ProviderSimulator,
    http: httpx.Client,
) -> None:
    # Given a request with one invalid or unknown field
    # When it is submitted
    response = generate(http, sim, provider, **fields)
    # Then it is refused, naming the param
    assert param in assert_invalid(response, param, code)


def test_missing_model_is_a_400(provider: str, sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a request without a model
    url = images_url(sim, provider, "generations")
    # When it is submitted
    response = http.post(url, json={"prompt": "x"}, headers=AUTH)
    # Then it is refused as missing the model
    assert_invalid(response, "model", "missing_required_parameter")


# ---------------------------------------------------------------- edits


def test_edit_with_two_images_starts_from_the_first(
    provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a red-left/blue-right image and a green one, as `image[]` parts (the SDK's way)
    files = [
        png_file("image[]", red_left_blue_right()),
        png_file("image[]", Image.new("RGB", (64, 64), GREEN)),
    ]
    # When they are edited
    response = edit(http, sim, provider, files, size="1024x1024")
    picture = inline_image(response).convert("RGB")
    # Then the output is the first image, edited, with the second one shown
    left, right = picture.getpixel((256, 512)), picture.getpixel((768, 512))
    assert isinstance(left, tuple)
    assert isinstance(right, tuple)
    assert left[0] > 150 > left[2]
    assert right[2] > 150 > right[0]
    samples = [picture.getpixel((x, y)) for x in range(0, 1024, 16) for y in range(0, 1024, 16)]
    assert sum(near(p, GREEN, 10) for p in samples) >= 10
    assert response.json()["usage"]["input_tokens_details"]["image_tokens"] == 2 * 323


def test_edit_accepts_repeated_image_parts(
    provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given two images sent as repeated `image` parts, and edit-only fields
    files = [png_file("image", red_left_blue_right()), png_file("image", red_left_blue_right())]
    # When they are edited
    response = edit(
        http, sim, provider, files, input_fidelity="high", size="1536x1024", n="1", quality="low"
    )
    # Then the edit is answered at the asked size
    assert inline_image(response).size == (1536, 1024)


def test_masked_edit_repaints_only_the_transparent_part(
    provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a green image and a PNG mask transparent on its left half
    files = [
        png_file("image", Image.new("RGB", (256, 256), GREEN)),
        png_file("mask", left_half_mask()),
    ]
    # When they are edited
    picture = inline_image(edit(http, sim, provider, files)).convert("RGB")
    # Then the right half is the input untouched and the left half is repainted
    grid = range(16, 1024, 64)
    assert all(near(picture.getpixel((x, y)), GREEN, 2) for x in range(600, 1024, 64) for y in grid)
    assert not any(
        near(picture.getpixel((x, y)), GREEN, 60) for x in range(0, 420, 64) for y in grid
    )


@pytest.mark.parametrize(
    ("mask", "complaint"),
    [
        (("mask.png", png_bytes(Image.new("RGB", (64, 64))), "image/png"), "alpha"),
        (("mask.jpg", png_bytes(Image.new("RGB", (64, 64)), "JPEG"), "image/jpeg"), "PNG"),
        (("mask.png", b"not an image", "image/png"), "decodable"),
    ],
    ids=["no-alpha", "jpeg", "junk"],
)
def test_a_mask_must_be_a_png_with_alpha(
    mask: tuple[str, bytes, str],
    complaint: str,
    provider: str,
    sim: ProviderSimulator,
    http: httpx.Client,
) -> None:
    # Given an edit whose mask is not a PNG with an alpha channel
    files = [png_file("image", Image.new("RGB", (64, 64), GREEN)), ("mask", mask)]
    # When it is submitted
    response = edit(http, sim, provider, files)
    # Then the mask is refused
    assert complaint in assert_invalid(response, "mask", "invalid_image")


def test_an_undecodable_image_is_refused(
    provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given an image part whose bytes are not an image
    files = [("image", ("junk.png", b"definitely not a png", "image/png"))]
    # When it is edited
    response = edit(http, sim, provider, files)
    # Then the image is refused, saying why
    assert "not a decodable image" in assert_invalid(response, "image", "invalid_image")


@pytest.mark.parametrize(
    ("files", "fields", "param", "code"),
    [
        ([png_file("mask", left_half_mask())], {}, "image", "missing_required_parameter"),
        ([png_file("image", Image.new("RGB", (8, 8)))] * 17, {}, "image", "invalid_value"),
        ([png_file("image", Image.new("RGB", (8, 8)))], {"style": "vivid"}, "style", None),
        ([png_file("picture", Image.new("RGB", (8, 8)))], {}, "picture", "unknown_parameter"),
        ([png_file("image", Image.new("RGB", (8, 8)))], {"size": "256x256"}, "size", None),
        ([png_file("image", Image.new("RGB", (8, 8)))], {"n": "2"}, "n", "invalid_value"),
    ],
    ids=["only-a-mask", "17-images", "unknown-field", "unknown-file", "size", "n"],
)
def test_invalid_edit_is_a_400_naming_the_param(
    files: Files,
    fields: dict[str, str],
    param: str,
    code: str | None,
    provider: str,
    sim: ProviderSimulator,
    http: httpx.Client,
) -> None:
    # Given an edit with one invalid part
    # When it is submitted
    response = edit(http, sim, provider, files, **fields)
    # Then it is refused, naming the param
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code


# ---------------------------------------------------------------- errors and fault markers


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["none", "wrong"])
def test_requires_the_bearer_key(
    headers: dict[str, str], provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a request without the right key
    url = images_url(sim, provider, "generations")
    # When it is submitted
    response = http.post(url, json={"model": MODEL, "prompt": "x"}, headers=headers)
    # Then it is OpenAI's invalid key error
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_api_key",
        None,
    )


def test_moderation_is_a_400_image_generation_user_error(
    provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a prompt with the moderation marker
    # When it is submitted
    response = generate(http, sim, provider, prompt="[sim:moderation] x")
    # Then it is refused as moderated
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("image_generation_user_error", "moderation_blocked")


def test_fail_marker_is_a_500(provider: str, sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given a request with the fail marker
    # When it is answered
    response = generate(http, sim, provider, prompt=f"{INSTANT} [sim:fail]")
    # Then it is a server error
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "message": "generation failed (simulated)",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }


def test_create_503_marker_is_a_503(
    provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a prompt with the create-503 marker scoped to this provider
    # When it is submitted
    response = generate(http, sim, provider, prompt=f"[sim:create-503={provider}] x")
    # Then the provider is unavailable
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "server_error"


def test_create_503_scoped_to_mountsea_async_leaves_the_compat_api_up(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a create-503 marker scoped to mountsea-async
    # When the compat API gets it
    response = generate(
        http, sim, "mountsea-compat", prompt=f"{INSTANT} [sim:create-503=mountsea-async]"
    )
    # Then it works normally
    assert response.status_code == 200


def test_create_garbage_marker_answers_200_html(
    provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a prompt with the create-garbage marker
    # When it is submitted
    response = generate(http, sim, provider, prompt="[sim:create-garbage] x")
    # Then the answer is 200 but not JSON
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html"


@pytest.mark.parametrize("marker", ["create-timeout", "never"])
def test_hold_markers_outlast_the_client_timeout(
    marker: str, provider: str, sim: ProviderSimulator
) -> None:
    # Given a client that waits 0.3 s and a prompt with a hold marker
    # When it is submitted
    # Then no answer comes in time
    with httpx.Client(timeout=0.3, trust_env=False) as impatient, pytest.raises(httpx.ReadTimeout):
        generate(impatient, sim, provider, prompt=f"{INSTANT} [sim:{marker}]")


def test_never_marker_answers_504_once_the_hold_ends(
    provider: str, sim: ProviderSimulator, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a hold shortened to 0.1 s
    monkeypatch.setattr(openai_compat, "CREATE_TIMEOUT_S", 0.1)
    # When a request that never finishes is submitted
    response = generate(http, sim, provider, prompt="[sim:never] x")
    # Then it times out as a 504
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "server_error"


def test_bad_image_marker_answers_base64_of_no_image(
    provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a request with the bad-image marker
    # When it is answered
    response = generate(http, sim, provider, prompt=f"{INSTANT} [sim:bad-image]")
    # Then it is a 200 whose bytes are no image
    with pytest.raises(UnidentifiedImageError):
        inline_image(response)


def test_noise_marker_makes_an_incompressible_png(
    provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a request with the noise marker
    response = generate(http, sim, provider, prompt=f"{INSTANT} [sim:noise]")
    # When its image is decoded
    data = base64.b64decode(response.json()["data"][0]["b64_json"])
    # Then it is a PNG at least as large as its raw pixels
    assert Image.open(io.BytesIO(data)).size == (1024, 1024)
    assert len(data) >= 1024 * 1024 * 3


# ---------------------------------------------------------------- mounts and journal


def test_mountsea_compat_shares_mountsea_async_base_url(sim: ProviderSimulator) -> None:
    # Given a running simulator
    # When the base URLs are asked
    # Then the compat API lives on mountsea's base URL, openai on its own
    assert sim.provider_base_url("mountsea-compat") == sim.provider_base_url("mountsea-async")
    assert sim.provider_base_url("openai") == f"{sim.base_url}/openai"


def test_mountsea_async_still_answers_beside_the_compat_api(
    sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given mountsea's async create endpoint, on the same base URL as the compat API
    url = f"{sim.provider_base_url('mountsea-async')}/openai/images"
    # When a task is created there
    response = http.post(url, json={"prompt": "x"}, headers=AUTH)
    # Then it is the async API answering a task id
    assert response.status_code == 200
    assert list(response.json()) == ["taskId"]


@pytest.mark.parametrize(
    ("path", "provider"),
    [
        ("/mountsea/openai/v1/images/generations", "mountsea-compat"),
        ("/mountsea/openai/images", "mountsea-async"),
        ("/openai/v1/images/generations", "openai"),
    ],
)
def test_requests_are_journaled_under_the_provider_of_their_path(
    path: str, provider: str, sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given a request with a unique prompt to one of the paths
    marker = f"{INSTANT} journal-{uuid.uuid4().hex}"
    http.post(f"{sim.base_url}{path}", json={"model": MODEL, "prompt": marker}, headers=AUTH)
    # When the request log is read
    log = http.get(f"{sim.base_url}/_sim/requests").json()
    [entry] = [e for e in log if e["body"] and e["body"].get("prompt") == marker]
    # Then it is recorded under the provider that owns the path
    assert (entry["provider"], entry["path"]) == (provider, path)


def test_the_same_text_to_image_request_is_drawn_once(
    sim: ProviderSimulator, http: httpx.Client, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the drawing of text-to-image pictures counted
    from devstack.simulator import tasks

    drawn: list[str] = []
    real = tasks.render_image

    def counting(spec: Any, load: Any) -> bytes:
        drawn.append(spec.prompt)
        return real(spec, load)

    monkeypatch.setattr(tasks, "render_image", counting)
    prompt = f"{INSTANT} a kestrel {uuid.uuid4().hex}"

    # When the same generation is asked for twice, and another once
    first = generate(http, sim, provider, prompt=prompt)
    second = generate(http, sim, provider, prompt=prompt)
    generate(http, sim, provider, prompt=f"{prompt} at night")

    # Then each prompt is drawn once, and both answers carry the same picture
    assert (first.status_code, second.status_code) == (200, 200), first.text
    assert drawn == [prompt, f"{prompt} at night"]
    assert first.json()["data"][0]["b64_json"] == second.json()["data"][0]["b64_json"]
