"""The OpenAI-compatible routes on fakes: request mapping, answers and OpenAI's error shape.

Function URL events in, results out; the dispatch function runs while the call "waits" on an
injected clock (no sleeps, no sockets).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from image_gateway.errors import InvalidRequest, TooManyRequests
from image_gateway.http.multipart import parse_multipart
from image_gateway.http.openai_answer import INLINE_IMAGE_MAX_BYTES, error_result, images_result
from image_gateway.http.openai_request import edit_from_parts, generation_from_json
from image_gateway.http.openai_routes import serve
from image_gateway.models.task import ImageOutput, Task, TaskStatus
from image_gateway.providers.base import ProviderState
from image_gateway.service.compat import Clock

from tests.fakes import FakeDependencies, unavailable
from tests.unit.service.support import drain, fox, png

ROUTE = "/openai/v1/images"


@pytest.fixture(scope="module")
def result_png() -> bytes:
    return png(1024, 1024)


@pytest.fixture
def deps(result_png: bytes) -> FakeDependencies:
    return FakeDependencies(default_image=result_png)


@pytest.fixture
def key(deps: FakeDependencies) -> str:
    return deps.api_keys.create_key("app")


def clock(deps: FakeDependencies, meanwhile: Callable[[], object] | None = None) -> Clock:
    """Time moves only when the call sleeps; the dispatch function runs at every sleep."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        (meanwhile or (lambda: drain(deps)))()

    return Clock(now=lambda: now[0], sleep=sleep)


def event(path: str, body: bytes, content_type: str, key: str | None) -> dict[str, Any]:
    headers = {"content-type": content_type}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": path}, "requestId": "r-1"},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def generate(deps: FakeDependencies, key: str | None, **body: Any) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    return serve(
        deps,
        event(f"{ROUTE}/generations", raw, "application/json", key),
        remaining_seconds=600,
        clock=clock(deps),
    )


def multipart(files: list[tuple[str, bytes]], **fields: Any) -> tuple[bytes, str]:
    request = httpx.Request(
        "POST",
        "https://gateway.example/",
        files=[(name, (f"{name}.png", data, "image/png")) for name, data in files],
        data=fields,
    )
    return request.read(), request.headers["content-type"]


def edit(deps: FakeDependencies, key: str, files: list[tuple[str, bytes]], **fields: Any):
    raw, content_type = multipart(files, **fields)
    return serve(
        deps,
        event(f"{ROUTE}/edits", raw, content_type, key),
        remaining_seconds=600,
        clock=clock(deps),
    )


def body_of(result: dict[str, Any]) -> dict[str, Any]:
    return json.loads(result["body"])


# -- generations ---------------------------------------------------------------------------------
def test_a_generation_answers_the_image_as_b64_json_with_its_task_id(
    deps: FakeDependencies, key: str, result_png: bytes
) -> None:
    # GIVEN a sync provider WHEN images.generate's body is sent
    result = generate(deps, key, prompt="a fox", size="1024x1024", provider="mountsea-compat")

    # THEN 200, OpenAI's ImagesResponse with the stored image, and the task's id
    assert result["statusCode"] == 200
    body = body_of(result)
    assert base64.b64decode(body["data"][0]["b64_json"]) == result_png
    assert body["size"] == "1024x1024" and body["output_format"] == "png"
    task = deps.tasks.require(result["headers"]["x-task-id"])
    assert task.status is TaskStatus.SUCCEEDED and task.client_id == "app"
    assert task.request.size == "1024x1024" and task.provider == "mountsea-compat"


def test_a_generation_of_n_images_answers_n_items_of_one_task(
    deps: FakeDependencies, key: str, result_png: bytes
) -> None:
    # GIVEN a sync provider WHEN images.generate asks for 3 images
    result = generate(deps, key, prompt="a fox", n=3, size="1024x1024", provider="mountsea-compat")

    # THEN 200 with 3 items, each the stored image, all of one task of 3 outputs
    assert result["statusCode"] == 200
    data = body_of(result)["data"]
    assert [base64.b64decode(item["b64_json"]) for item in data] == [result_png] * 3
    task = deps.tasks.require(result["headers"]["x-task-id"])
    assert (task.request.n, len(task.outputs)) == (3, 3)
    assert "x-images-failed" not in result["headers"]


def test_response_format_url_answers_the_presigned_url(deps: FakeDependencies, key: str) -> None:
    result = generate(deps, key, prompt="a fox", response_format="url", provider="mountsea-compat")

    item = body_of(result)["data"][0]
    assert "b64_json" not in item
    assert item["url"].startswith("https://images.memory.invalid/outputs/app/")


def test_gateway_options_ride_in_the_body(deps: FakeDependencies, key: str) -> None:
    # GIVEN extra_body's options WHEN sent THEN they are the task's
    result = generate(
        deps,
        key,
        prompt="a fox",
        providers=["mountsea-async"],
        aspect_ratio="3:2",
        resolution="1K",
        size_policy="nearest",
        metadata={"order": "42"},
        user="end-user-7",
    )

    task = deps.tasks.require(result["headers"]["x-task-id"])
    assert (task.request.aspect_ratio, task.request.size_policy) == ("3:2", "nearest")
    assert task.metadata == {"order": "42"} and task.provider == "mountsea-async"


def test_routing_options_ride_in_the_body(deps: FakeDependencies, key: str) -> None:
    # GIVEN mountsea-compat the cheapest WHEN extra_body asks for price routing with a bound
    deps.configure(
        prices={
            "mountsea-compat": {"per_image": {"1K": {"medium": 0.01}}},
            "mountsea-async": {"per_image": {"1K": {"medium": 0.05}}},
        }
    )
    result = generate(
        deps,
        key,
        prompt="a fox",
        providers=["mountsea-async", "mountsea-compat"],
        routing={"policy": "price", "max_price_usd": 0.02, "max_seconds": 60},
    )

    # THEN the task went to the cheapest, the dearer one is skipped, and the decision says so
    task = deps.tasks.require(result["headers"]["x-task-id"])
    assert task.provider == "mountsea-compat" and task.fallbacks == []
    assert task.routing is not None
    assert (task.routing.policy, task.routing.max_price_usd, task.routing.max_seconds) == (
        "price",
        0.02,
        60,
    )


def test_multipart_routing_options_are_typed() -> None:
    raw, content_type = multipart(
        [("image", png(64, 64))],
        prompt="x",
        **{"routing[policy]": "latency", "routing[max_price_usd]": "0.05"},
    )
    compat = edit_from_parts(parse_multipart(raw, content_type.split("boundary=")[1]))

    assert (compat.request.routing_policy, compat.request.max_price_usd) == ("latency", 0.05)


def test_hedge_rides_in_the_body(deps: FakeDependencies, key: str) -> None:
    # GIVEN extra_body hedge: true WHEN generated THEN the task's routing hedges
    result = generate(deps, key, prompt="a fox", providers=["apimart", "pmock"], hedge=True)

    task = deps.tasks.require(result["headers"]["x-task-id"])
    assert task.routing is not None and task.routing.hedge


def test_a_multipart_hedge_is_typed() -> None:
    # GIVEN an edit's multipart body with hedge=true WHEN parsed THEN a boolean
    raw, content_type = multipart([("image", png(64, 64))], prompt="x", hedge="true")

    compat = edit_from_parts(parse_multipart(raw, content_type.split("boundary=")[1]))

    assert compat.request.hedge is True


def test_a_wrong_key_is_a_401_in_openais_shape_and_writes_nothing(
    deps: FakeDependencies,
) -> None:
    result = generate(deps, "itg_wrong", prompt="a fox")

    assert result["statusCode"] == 401
    assert body_of(result)["error"]["type"] == "authentication_error"
    assert body_of(result)["error"]["code"] == "unauthorized"
    assert deps.tasks.writes == 0


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"prompt": "a fox", "colour": "red"}, "colour", "unknown_parameter"),
        ({"prompt": "a fox", "n": 11}, "n", "validation_error"),
        ({"prompt": "a fox", "size": "big"}, "size", "validation_error"),
        ({"prompt": "a fox", "model": "dall-e-3"}, "model", "validation_error"),
        ({"prompt": "a fox", "stream": True}, "stream", "invalid_request"),
        ({"prompt": "a fox", "style": "vivid"}, "style", "invalid_request"),
        ({"prompt": "a fox", "response_format": "png"}, "response_format", "invalid_request"),
        ({"size": "1024x1024"}, "prompt", "validation_error"),
        ({"prompt": "a fox", "provider": "nobody"}, None, "unknown_provider"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    deps: FakeDependencies, key: str, body: dict[str, Any], param: str | None, code: str
) -> None:
    result = generate(deps, key, **body)

    assert result["statusCode"] == 400
    error = body_of(result)["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert deps.tasks.writes == 0


def test_a_size_no_provider_makes_is_a_400_with_the_gateways_code(
    deps: FakeDependencies, key: str
) -> None:
    result = generate(deps, key, prompt="a fox", size="1000x700", provider="mountsea-async")

    error = body_of(result)["error"]
    assert result["statusCode"] == 400
    assert (error["code"], error["param"]) == ("unsupported_by_provider", "size")


@pytest.mark.parametrize(
    ("raw", "content_type", "code"),
    [
        (b'{"prompt": "caf\xe9"}', "application/json", "invalid_json"),
        (b"not json", "application/json", "invalid_json"),
        (b"[1]", "application/json", "invalid_json"),
        (b'{"prompt": "a fox"}', "text/plain", "unsupported_media_type"),
    ],
)
def test_a_body_that_cannot_be_read_is_a_400_never_a_500(
    deps: FakeDependencies, key: str, raw: bytes, content_type: str, code: str
) -> None:
    result = serve(
        deps,
        event(f"{ROUTE}/generations", raw, content_type, key),
        remaining_seconds=600,
        clock=clock(deps),
    )

    assert (result["statusCode"], body_of(result)["error"]["code"]) == (400, code)


def test_a_body_over_the_limit_is_a_400_body_too_large(deps: FakeDependencies, key: str) -> None:
    raw = b'{"prompt": "' + b"a" * (deps.settings.max_request_body_bytes + 1) + b'"}'
    result = serve(
        deps,
        event(f"{ROUTE}/generations", raw, "application/json", key),
        remaining_seconds=600,
        clock=clock(deps),
    )

    assert (result["statusCode"], body_of(result)["error"]["code"]) == (400, "body_too_large")


def test_an_unknown_route_is_a_404(deps: FakeDependencies, key: str) -> None:
    result = serve(
        deps,
        event("/openai/v1/chat/completions", b"{}", "application/json", key),
        remaining_seconds=600,
        clock=clock(deps),
    )

    assert result["statusCode"] == 404
    assert body_of(result)["error"]["type"] == "not_found_error"


# -- waits that end without an image ---------------------------------------------------------------
def test_a_task_still_open_when_the_wait_ends_is_a_504_naming_it(
    deps: FakeDependencies, key: str
) -> None:
    deps.providers.script("mountsea-async").statuses = [ProviderState.RUNNING]

    result = generate(deps, key, prompt="a fox", provider="mountsea-async")

    assert result["statusCode"] == 504
    task_id = result["headers"]["x-task-id"]
    error = body_of(result)["error"]
    assert error["code"] == "task_not_finished" and error["type"] == "timeout_error"
    assert task_id in error["message"] and f"/v1/tasks/{task_id}" in error["message"]
    assert result["headers"]["x-should-retry"] == "false"
    assert deps.tasks.require(task_id).status is TaskStatus.RUNNING


def test_a_failure_at_every_provider_is_a_502_with_the_tasks_code(
    deps: FakeDependencies, key: str
) -> None:
    deps.providers.script("mountsea-async").create_error = unavailable("mountsea-async")
    deps.providers.script("mountsea-compat").sync_error = unavailable("mountsea-compat")

    result = generate(deps, key, prompt="a fox", providers=["mountsea-async", "mountsea-compat"])

    error = body_of(result)["error"]
    assert result["statusCode"] == 502
    assert (error["type"], error["code"]) == ("provider_error", "provider_unavailable")
    assert result["headers"]["x-should-retry"] == "false"


def test_a_moderation_refusal_is_a_400_on_the_prompt(deps: FakeDependencies, key: str) -> None:
    script = deps.providers.script("mountsea-async")
    script.statuses = [ProviderState.FAILED]
    script.failure = deps.directory.provider("mountsea-async").rejected("no", moderation=True)

    result = generate(deps, key, prompt="a fox", provider="mountsea-async")

    error = body_of(result)["error"]
    assert result["statusCode"] == 400
    assert (error["code"], error["param"]) == ("moderation_blocked", "prompt")


def test_an_unexpected_failure_is_a_500_the_sdk_does_not_retry(
    deps: FakeDependencies, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(deps.tasks, "create", broken)

    result = generate(deps, key, prompt="a fox")

    assert result["statusCode"] == 500
    assert body_of(result)["error"]["type"] == "server_error"
    assert result["headers"]["x-should-retry"] == "false"


# -- edits ---------------------------------------------------------------------------------------
def test_an_edit_takes_image_files_and_a_mask(
    deps: FakeDependencies, key: str, result_png: bytes
) -> None:
    source, reference, mask = png(1024, 1024, "red"), png(512, 512, "blue"), png(1024, 1024)

    result = edit(
        deps,
        key,
        [("image[]", source), ("image[]", reference), ("mask", mask)],
        prompt="add a moon",
        provider="mountsea-compat",
        **{"metadata[order]": "7"},
    )

    assert result["statusCode"] == 200, result["body"]
    task = deps.tasks.require(result["headers"]["x-task-id"])
    assert task.operation.value == "edit" and len(task.request.images) == 2
    assert task.request.mask is not None and task.metadata == {"order": "7"}
    assert base64.b64decode(body_of(result)["data"][0]["b64_json"]) == result_png


def test_seventeen_images_are_a_400_on_image(deps: FakeDependencies, key: str) -> None:
    result = edit(deps, key, [("image[]", png(64, 64))] * 17, prompt="x")

    error = body_of(result)["error"]
    assert result["statusCode"] == 400 and error["param"] == "image"
    assert deps.tasks.writes == 0


def test_a_file_that_is_not_an_image_is_a_400_invalid_image(
    deps: FakeDependencies, key: str
) -> None:
    result = edit(deps, key, [("image", b"GIF89a not ours")], prompt="x")

    error = body_of(result)["error"]
    assert (result["statusCode"], error["code"], error["param"]) == (
        400,
        "invalid_image",
        "image[0]",
    )


FORM = "multipart/form-data; boundary=b"


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"--b\r\nno headers", FORM),
        (b"garbage", FORM),
        (b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--", FORM),
        (b"--b\r\nContent-Disposition: form-data; name=x\r\n\r\nx\r\n--b", FORM),
        (b"--b\r\nContent-Disposition: form-data; name=prompt\r\n\r\n\xff\r\n--b--", FORM),
        (b"{}", "application/json"),
        (b"x", "multipart/form-data"),
    ],
)
def test_a_bad_multipart_body_is_a_400(
    deps: FakeDependencies, key: str, raw: bytes, content_type: str
) -> None:
    result = serve(
        deps,
        event(f"{ROUTE}/edits", raw, content_type, key),
        remaining_seconds=600,
        clock=clock(deps),
    )

    assert result["statusCode"] == 400
    assert body_of(result)["error"]["code"] in {"invalid_multipart", "unsupported_media_type"}


def test_multipart_lists_and_numbers_are_typed_as_the_sdk_sends_them() -> None:
    raw, content_type = multipart(
        [("image", png(64, 64))],
        prompt="x",
        output_format="webp",
        output_compression="80",
        **{"providers[]": ["mountsea-async", "apimart"]},
    )
    parts = parse_multipart(raw, content_type.split("boundary=")[1])

    compat = edit_from_parts(parts)

    assert compat.request.output_compression == 80
    assert compat.request.providers == ["mountsea-async", "apimart"]


def test_a_generation_with_an_image_field_is_refused() -> None:
    with pytest.raises(InvalidRequest) as refused:
        generation_from_json({"prompt": "x", "image": "https://example.com/a.png"})
    assert refused.value.details["param"] == "image"


# -- the 6 MB answer limit -----------------------------------------------------------------------
def test_an_image_over_the_response_limit_comes_back_as_url_only(
    deps: FakeDependencies,
) -> None:
    # GIVEN a finished task whose image is larger than a Lambda answer can carry in base64
    task = deps.tasks
    from image_gateway.service.submit import submit_task

    made = submit_task(deps, fox(), client_id="c").task
    big = ImageOutput(
        bucket="images",
        key="outputs/c/big.png",
        content_type="image/png",
        width=3840,
        height=2160,
        bytes=INLINE_IMAGE_MAX_BYTES + 1,
        sha256="0" * 64,
    )
    made = task.update(made.task_id, lambda t: t.outputs.append(big))

    def never(_: str) -> bytes:
        raise AssertionError("an image over the limit must not be read")

    # WHEN answered with b64_json asked for
    result = images_result(made, response_format="b64_json", read_image=never, presign=str.upper)

    # THEN only its URL comes back, and the answer fits
    assert body_of(result)["data"] == [{"revised_prompt": None, "url": "OUTPUTS/C/BIG.PNG"}]
    assert INLINE_IMAGE_MAX_BYTES * 4 / 3 + 16_384 <= 6_000_000


def _half_limit_output(index: int) -> ImageOutput:
    return ImageOutput(
        bucket="images",
        key=f"outputs/c/{index}.png",
        content_type="image/png",
        width=3840,
        height=2160,
        bytes=INLINE_IMAGE_MAX_BYTES // 2 + 1,
        sha256="0" * 64,
    )


def test_n_images_share_the_response_limit_and_a_partial_failure_is_said(
    deps: FakeDependencies,
) -> None:
    # GIVEN a task of 3 images that made 2, each over half of what an answer carries inline
    from image_gateway.models.task import TaskError
    from image_gateway.service.submit import submit_task

    made = submit_task(deps, fox(n=3, provider="mountsea-compat"), client_id="c").task
    error = TaskError(code="partial_failure", message="1 of 3 images failed (2 made): image 2")

    def two_made(t: Task) -> None:
        t.outputs = [_half_limit_output(0), _half_limit_output(1)]
        t.error = error

    made = deps.tasks.update(made.task_id, two_made)

    # WHEN answered with b64_json asked for
    result = images_result(
        made, response_format="b64_json", read_image=lambda _: b"png", presign=str.upper
    )

    # THEN the first comes inline, the second (no room left) as its URL, and the failure is said
    body = body_of(result)
    assert [sorted(item) for item in body["data"]] == [
        ["b64_json", "revised_prompt"],
        ["revised_prompt", "url"],
    ]
    assert result["headers"]["x-images-failed"] == "1"
    assert body["error"] == {"code": "partial_failure", "message": error.message}


# -- whatever a caller sends, never a 500 ---------------------------------------------------------
def _hostile_bodies() -> list[tuple[str, bytes, str]]:
    import random

    rng = random.Random(11)
    valid, form = multipart([("image", png(64, 64))], prompt="x")
    boundary = form.split("boundary=")[1]
    cases: list[tuple[str, bytes, str]] = []
    for index in range(60):
        noise = rng.randbytes(rng.randint(0, 400))
        cut = valid[: rng.randint(0, len(valid))]
        flipped = bytearray(valid)
        for _ in range(8):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        cases += [
            ("edits", noise, form),
            ("edits", cut, form),
            ("edits", bytes(flipped), form),
            ("generations", noise, "application/json"),
            ("edits", noise, f"multipart/form-data; boundary={boundary}{'é' * (index % 2)}"),
        ]
    return cases


def test_hostile_bodies_are_answered_in_openais_shape_never_with_a_500(
    deps: FakeDependencies, key: str
) -> None:
    # GIVEN random, truncated and corrupted bodies on both routes (seeded)
    for route, raw, content_type in _hostile_bodies():
        # WHEN each is sent
        result = serve(
            deps,
            event(f"{ROUTE}/{route}", raw, content_type, key),
            remaining_seconds=600,
            clock=clock(deps),
        )

        # THEN a 4xx (or an image, for a corruption that missed what matters), never a 5xx
        assert result["statusCode"] in {200, 400}, (route, raw[:80], result["body"][:300])
        if result["statusCode"] == 400:
            assert body_of(result)["error"]["type"] == "invalid_request_error"


def test_an_image_at_the_limit_still_fits_lambdas_answer(deps: FakeDependencies) -> None:
    # GIVEN a finished task whose image is exactly the largest returned inline
    import os

    from image_gateway.service.submit import submit_task

    image = os.urandom(INLINE_IMAGE_MAX_BYTES)
    made = submit_task(deps, fox(), client_id="c").task
    output = ImageOutput(
        bucket="images",
        key="outputs/c/limit.png",
        content_type="image/png",
        width=2048,
        height=2048,
        bytes=len(image),
        sha256="0" * 64,
    )
    made = deps.tasks.update(made.task_id, lambda t: t.outputs.append(output))

    # WHEN answered as b64_json
    result = images_result(
        made, response_format="b64_json", read_image=lambda _: image, presign=str
    )

    # THEN it is inline, and the whole invocation result is within Lambda's 6 MB
    assert base64.b64decode(body_of(result)["data"][0]["b64_json"]) == image
    assert len(json.dumps(result).encode()) <= 6_000_000


@pytest.mark.parametrize(
    ("code", "seconds", "should_retry"),
    [("rate_limited", 12, "true"), ("budget_exceeded", 36_000, "false")],
)
def test_a_429_carries_retry_after_and_is_retried_by_the_sdk_only_when_worth_it(
    code: str, seconds: int, should_retry: str
) -> None:
    # GIVEN a client limit refusal WHEN rendered for the SDK
    result = error_result(TooManyRequests("slow down", code=code, retry_after_seconds=seconds))

    # THEN 429 rate_limit_error, Retry-After, and no SDK retries for a wait past its 60 s
    assert result["statusCode"] == 429
    assert json.loads(result["body"])["error"]["type"] == "rate_limit_error"
    assert result["headers"]["Retry-After"] == str(seconds)
    assert result["headers"]["x-should-retry"] == should_retry
