"""Downloads: the image lands only when its sha256 and size are the task's; URLs are renewed."""

from __future__ import annotations

from pathlib import Path

import pytest
from imagegw import Gateway, IntegrityError

from tests.unit.client.support import IMAGE, IMAGE_URL, ScriptedGateway, output, view

STORAGE = "GET https://bucket.example/outputs/demo/1.png"


def test_a_finished_task_downloads_into_a_folder_under_its_id(
    gateway: Gateway, server: ScriptedGateway, tmp_path: Path
) -> None:
    server.on("GET /v1/tasks/tsk_1", view("succeeded")).on(STORAGE, (200, IMAGE))

    path = gateway.task("tsk_1").download(tmp_path)

    assert path == tmp_path / "tsk_1.png"
    assert path.read_bytes() == IMAGE
    assert "authorization" not in server.sent(STORAGE)[0].headers


def test_a_download_to_a_file_name_uses_it(
    gateway: Gateway, server: ScriptedGateway, tmp_path: Path
) -> None:
    server.on("GET /v1/tasks/tsk_1", view("succeeded")).on(STORAGE, (200, IMAGE))

    assert gateway.task("tsk_1").download(tmp_path / "out" / "fox.png") == tmp_path / "out/fox.png"


SECOND = b"second image"
SECOND_URL = IMAGE_URL.replace("1.png", "2.png")


def test_every_image_of_a_task_of_n_downloads_in_order_into_a_folder(
    gateway: Gateway, server: ScriptedGateway, tmp_path: Path
) -> None:
    # GIVEN a task of 2 images
    both = [output(), output(SECOND, url=SECOND_URL)]
    server.on("GET /v1/tasks/tsk_1", view("succeeded", outputs=both))
    server.on(STORAGE, (200, IMAGE)).on(STORAGE.replace("1.png", "2.png"), (200, SECOND))

    # WHEN all are downloaded THEN each lands under the task's id, numbered from the second
    paths = gateway.task("tsk_1").download_all(tmp_path)

    assert paths == [tmp_path / "tsk_1.png", tmp_path / "tsk_1-1.png"]
    assert [p.read_bytes() for p in paths] == [IMAGE, SECOND]


def test_every_image_of_a_task_of_n_downloaded_to_a_file_name_is_numbered_from_the_second(
    gateway: Gateway, server: ScriptedGateway, tmp_path: Path
) -> None:
    both = [output(), output(SECOND, url=SECOND_URL)]
    server.on("GET /v1/tasks/tsk_1", view("succeeded", outputs=both))
    server.on(STORAGE, (200, IMAGE)).on(STORAGE.replace("1.png", "2.png"), (200, SECOND))

    paths = gateway.task("tsk_1").download_all(tmp_path / "fox.png")

    assert paths == [tmp_path / "fox.png", tmp_path / "fox-1.png"]


def test_bytes_that_do_not_match_the_sha256_leave_no_file(
    gateway: Gateway, server: ScriptedGateway, tmp_path: Path
) -> None:
    server.on("GET /v1/tasks/tsk_1", view("succeeded")).on(STORAGE, (200, IMAGE[:-1] + b"!"))

    with pytest.raises(IntegrityError) as caught:
        gateway.task("tsk_1").download(tmp_path)

    assert caught.value.code == "sha256_mismatch"
    assert list(tmp_path.iterdir()) == []


def test_an_expired_url_is_renewed_once(
    gateway: Gateway, server: ScriptedGateway, tmp_path: Path
) -> None:
    fresh = IMAGE_URL.replace("sig=abc", "sig=new")
    server.on(
        "GET /v1/tasks/tsk_1",
        view("succeeded"),
        view("succeeded", outputs=[output(url=fresh)]),
    )
    server.on(STORAGE, (403, b"<Error>expired</Error>"), (200, IMAGE))

    path = gateway.task("tsk_1").download(tmp_path)

    assert path.read_bytes() == IMAGE
    assert [r.url.params["sig"] for r in server.sent(STORAGE)] == ["abc", "new"]


def test_download_waits_for_an_open_task_first(
    gateway: Gateway, server: ScriptedGateway, tmp_path: Path
) -> None:
    server.on("GET /v1/tasks/tsk_1", view("running"), view("succeeded")).on(STORAGE, (200, IMAGE))

    assert gateway.task("tsk_1").download(tmp_path).exists()
