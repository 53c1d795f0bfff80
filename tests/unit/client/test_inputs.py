"""Input images: what goes inline, what is uploaded first, what is refused before sending."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import httpx
import pytest
from imagegw import Gateway, InputError
from imagegw.inputs import LocalImage, collect_inputs, plan_inputs, read_input, sniff_content_type
from PIL import Image

from tests.unit.client.support import ScriptedGateway, view


def image_bytes(size: int = 64, image_format: str = "PNG", noise: bool = False) -> bytes:
    """A real image; ``noise`` makes it compress badly (so it is large)."""
    image = (
        Image.frombytes("RGB", (size, size), os.urandom(size * size * 3))
        if noise
        else Image.new("RGB", (size, size), "teal")
    )
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")],
)
def test_a_local_image_is_recognised_by_its_bytes(image_format: str, content_type: str) -> None:
    assert sniff_content_type(image_bytes(image_format=image_format)) == content_type


def test_references_pass_through_untouched() -> None:
    for ref in (
        "https://example.com/a.png",
        "s3://bucket/inputs/demo/a.png",
        "data:image/png;base64,AA",
    ):
        assert read_input(ref, "images[0]") == ref


def test_an_http_url_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(InputError, match="https:// URLs only"):
        read_input("http://example.com/a.png", "images[0]")


def test_a_missing_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file") as caught:
        read_input(tmp_path / "nope.png", "mask")

    assert caught.value.code == "invalid_input"


def test_a_file_that_is_not_an_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("hello")

    with pytest.raises(InputError, match="not a PNG, JPEG or WebP"):
        read_input(path, "images[0]")


def test_small_local_images_go_inline_as_data_urls(tmp_path: Path) -> None:
    data = image_bytes()
    (tmp_path / "a.png").write_bytes(data)

    plan = plan_inputs(collect_inputs([tmp_path / "a.png"], data))

    assert plan.uploads == []
    assert plan.slots == [f"data:image/png;base64,{base64.b64encode(data).decode()}"] * 2


def test_an_image_over_the_inline_size_is_uploaded() -> None:
    big = LocalImage(
        data=b"\x89PNG\r\n\x1a\n" + bytes(2_000_000), content_type="image/png", name="big"
    )

    plan = plan_inputs([big])

    assert plan.slots == [0]
    assert plan.uploads == [big]


def test_sixteen_references_stay_under_the_body_budget_by_uploading_the_rest() -> None:
    # Given 16 images of 900 KB each (14 MB: over API Gateway's 10 MB body limit)
    images = [
        LocalImage(
            data=b"\x89PNG\r\n\x1a\n" + bytes(900_000), content_type="image/png", name=f"{i}"
        )
        for i in range(16)
    ]

    # When the client plans the request
    plan = plan_inputs(list(images))

    # Then what goes inline stays within the 4 MiB budget and everything else is uploaded
    inline = [s for s in plan.slots if isinstance(s, str)]
    assert sum(len(s) for s in inline) <= 4 * 1024 * 1024
    assert len(inline) == 3 and len(plan.uploads) == 13
    assert plan.resolve([f"s3://b/{i}" for i in range(13)])[3:] == [
        f"s3://b/{i}" for i in range(13)
    ]


def test_an_edit_uploads_what_does_not_fit_and_sends_its_ref(
    server: ScriptedGateway, tmp_path: Path
) -> None:
    # Given a gateway handing out one upload slot, and a client that inlines nothing
    slot = {
        "ref": "s3://images/inputs/demo/uploads/upl_1/0.png",
        "url": "https://bucket.example/inputs/demo/uploads/upl_1/0.png?X-Amz-Signature=s",
        "method": "PUT",
        "headers": {"Content-Type": "image/png"},
        "expires_at": "2030-01-01T00:00:00Z",
    }
    server.on("POST /v1/uploads", (201, {"upload_id": "upl_1", "uploads": [slot]}))
    server.on("PUT https://bucket.example/inputs/demo/uploads/upl_1/0.png", (200, b""))
    server.on("POST /v1/images", (202, view("queued", operation="edit")))
    data = image_bytes()
    photo = tmp_path / "photo.png"
    photo.write_bytes(data)
    with Gateway(
        "https://gw.example", "itg_test", transport=httpx.MockTransport(server), inline_budget=0
    ) as gateway:
        # When it submits an edit of a local file
        gateway.edit("add a moon", [photo], size="1024x1024")

    # Then the file was PUT to the slot (no API key), and the request names the ref
    assert server.json_of("POST /v1/uploads") == {
        "files": [{"content_type": "image/png", "bytes": len(data)}]
    }
    put = server.sent("PUT https://bucket.example/inputs/demo/uploads/upl_1/0.png")[0]
    assert put.content == data and "authorization" not in put.headers
    assert put.headers["content-type"] == "image/png"
    assert server.json_of("POST /v1/images")["images"] == [slot["ref"]]


def test_an_edit_without_images_is_refused_locally(gateway: Gateway) -> None:
    with pytest.raises(InputError):
        gateway.edit("x", [])
