"""The ``imagegw`` command against devstack: real images of the asked size, progress on a
terminal and as plain lines, ``--json``, exit codes with the gateway's code, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
from PIL import Image, ImageDraw

from devstack.stack import StackInfo
from tests.e2e.cli_support import Terminal, keep, run
from tests.e2e.support import submit, wait_terminal

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3}  (\w+)\s+(.*)$")


def statuses(text: str) -> list[str]:
    """The status words of the time-stamped lines."""
    return [m.group(1) for line in text.splitlines() if (m := LINE.match(line))]


def photo_and_mask(folder: Path) -> tuple[Path, Path, Path]:
    """A photo, a second reference and a mask (transparent disc = repaint), as files."""
    photo = Image.new("RGB", (1024, 1024), (40, 90, 160))
    ImageDraw.Draw(photo).ellipse((312, 312, 712, 712), fill=(240, 200, 40))
    mask = Image.new("RGBA", (1024, 1024), (0, 0, 0, 255))
    ImageDraw.Draw(mask).ellipse((362, 362, 662, 662), fill=(0, 0, 0, 0))
    paths = folder / "photo.png", folder / "style.jpg", folder / "mask.png"
    photo.save(paths[0])
    Image.new("RGB", (512, 768), (200, 80, 60)).save(paths[1], "JPEG")
    mask.save(paths[2])
    return paths


def test_generate_on_a_terminal_shows_a_live_line_and_writes_the_asked_size(
    info: StackInfo, tmp_path: Path
) -> None:
    # Given a terminal, and a task that takes a second and a half
    terminal = Terminal(
        info,
        "generate", "a lighthouse at dawn [sim:latency=1.5]",
        "--aspect", "16:9", "--resolution", "2K", "--provider", "apimart",
        "-o", "lighthouse.png",
        cwd=tmp_path,
    )  # fmt: skip
    # When it runs to the end
    code = terminal.finish()
    keep("generate-tty.txt", terminal.screen)
    # Then it succeeded, the file has the asked size (16:9 at 2K = 2048x1152)
    assert code == 0, terminal.screen
    with Image.open(tmp_path / "lighthouse.png") as image:
        assert image.size == (2048, 1152)
    # And the live line was drawn and cleared (spinner, elapsed against the typical time)
    text = terminal.screen
    assert "\r\x1b[2K" in text
    live = r"submitted · apimart \(callback\) · \d+\.\d s of ~\d+\.\d s · attempt 1"
    assert re.search(live, text)
    # And the time-stamped lines tell the story, then where the file is
    plain = ANSI.sub("", text.replace("\r\x1b[2K", "\n").replace("\r\n", "\n"))
    assert statuses(plain)[0] == "created"
    assert statuses(plain)[-1] == "succeeded"
    assert re.search(r"succeeded\s+2048x1152 image/png by apimart in \d+\.\d s", plain)
    assert "saved lighthouse.png  2048x1152 image/png" in plain


def test_edit_with_a_reference_and_a_mask_without_a_terminal_prints_plain_lines(
    info: StackInfo, tmp_path: Path
) -> None:
    photo, style, mask = photo_and_mask(tmp_path)
    # When an edit with a second reference and a mask runs with pipes
    done = run(
        info,
        "edit", str(photo), "--ref", str(style), "--mask", str(mask),
        "Replace the disc with a glowing moon", "--size", "1024x1024",
        "--provider", "mountsea-async", "-o", "out/",
        cwd=tmp_path,
    )  # fmt: skip
    keep("edit-plain.txt", done.stderr)
    # Then stdout is the saved file's path, and it is an image of the asked size
    assert done.code == 0, done.stderr
    saved = tmp_path / done.stdout.strip()
    assert saved.parent == tmp_path / "out" and saved.name.startswith("tsk_")
    with Image.open(saved) as image:
        assert image.size == (1024, 1024)
    # And the progress is plain lines: no escape codes, no carriage returns
    assert "\x1b" not in done.stderr and "\r" not in done.stderr
    assert statuses(done.stderr)[0] == "created"
    assert "edit 1024x1024" in done.stderr.splitlines()[0]
    assert statuses(done.stderr)[-1] == "succeeded"


def test_json_prints_one_document_with_the_task_and_the_file(
    info: StackInfo, tmp_path: Path
) -> None:
    done = run(
        info, "generate", "a glass of lemonade", "--size", "1024x1536",
        "--provider", "mountsea-compat", "--json", "--quiet", cwd=tmp_path,
    )  # fmt: skip

    assert done.code == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "succeeded" and document["path"] == "sync"
    assert document["size_produced"] == "1024x1536"
    assert Path(tmp_path / document["files"][0]).stat().st_size == document["outputs"][0]["bytes"]
    assert done.stderr == ""


def test_a_task_the_provider_fails_exits_1_with_the_tasks_error_code(
    info: StackInfo, tmp_path: Path
) -> None:
    done = run(
        info, "generate", "doomed [sim:fail]", "--provider", "mountsea-async", "--json",
        cwd=tmp_path,
    )  # fmt: skip

    assert done.code == 1
    assert json.loads(done.stdout)["error"]["code"] == "provider_task_failed"
    assert "failed: provider_task_failed" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_request_the_gateway_refuses_exits_2_with_its_code(
    info: StackInfo, tmp_path: Path
) -> None:
    refused = run(info, "generate", "x", "--size", "64x9999", "--json", cwd=tmp_path)
    unknown = run(info, "generate", "x", "--provider", "nobody", cwd=tmp_path)
    no_file = run(info, "edit", "missing.png", "x", cwd=tmp_path)
    usage = run(info, "generate", cwd=tmp_path)

    assert refused.code == 2
    assert json.loads(refused.stdout)["error"]["code"] == "validation_error"
    assert json.loads(refused.stdout)["error"]["http_status"] == 400
    assert json.loads(refused.stdout)["error"]["fields"][0]["field"] == "size"
    assert (unknown.code, "unknown_provider" in unknown.stderr) == (2, True)
    assert (no_file.code, "invalid_input" in no_file.stderr) == (2, True)
    assert (usage.code, "usage: imagegw generate" in usage.stderr) == (2, True)


def test_a_gateway_that_does_not_answer_exits_3(tmp_path: Path) -> None:
    done = run(
        None, "list", "--url", "http://127.0.0.1:9", "--key", "itg_x", "--json", cwd=tmp_path
    )

    assert done.code == 3
    assert json.loads(done.stdout)["error"]["code"] == "connection_error"


def test_a_wait_that_times_out_exits_4_and_the_task_goes_on(
    info: StackInfo, api: httpx.Client, tmp_path: Path
) -> None:
    task = submit(api, {"prompt": "slow [sim:never]", "provider": "mountsea-async"})

    done = run(info, "wait", task["task_id"], "--timeout", "1", cwd=tmp_path)

    assert done.code == 4
    assert f"imagegw wait {task['task_id']}" in done.stderr
    api.post(f"/v1/tasks/{task['task_id']}/cancel").raise_for_status()


def test_ctrl_c_offers_to_cancel_and_yes_cancels_the_task(
    info: StackInfo, api: httpx.Client, tmp_path: Path
) -> None:
    # Given a wait on a terminal for a task that never finishes
    terminal = Terminal(
        info, "generate", "forever [sim:never]", "--provider", "mountsea-async", cwd=tmp_path
    )
    terminal.read_until(lambda screen: "Ctrl-C to stop" in screen)
    # When the person presses Ctrl-C and answers y
    terminal.interrupt()
    terminal.read_until(lambda screen: "[y/N]" in screen)
    terminal.type("y\n")
    code = terminal.finish()
    keep("ctrl-c-tty.txt", terminal.screen)
    # Then the task is cancelled at the gateway and the command exits 130
    task_id = re.search(r"(tsk_\w+) cancelled", terminal.screen)
    assert code == 130 and task_id, terminal.screen
    assert wait_terminal(api, task_id.group(1))["status"] == "cancelled"


def test_show_wait_list_providers_and_cancel_of_a_finished_task(
    info: StackInfo, api: httpx.Client, tmp_path: Path
) -> None:
    task = wait_terminal(api, submit(api, {"prompt": "a fox", "provider": "apimart"})["task_id"])
    task_id = task["task_id"]

    shown = run(info, "show", task_id, cwd=tmp_path)
    waited = run(info, "wait", task_id, "-o", "fox.png", "--json", cwd=tmp_path)
    listed = run(info, "list", "--limit", "5", "--json", cwd=tmp_path)
    table = run(info, "list", "--limit", "5", cwd=tmp_path)
    providers = run(info, "providers", "--json", cwd=tmp_path)
    cancel = run(info, "cancel", task_id, "--json", cwd=tmp_path)

    assert shown.code == 0 and f"task      {task_id}" in shown.stdout
    assert "history" in shown.stdout and "succeeded" in shown.stdout
    assert waited.code == 0 and json.loads(waited.stdout)["files"] == ["fox.png"]
    assert task_id in [row["task_id"] for row in json.loads(listed.stdout)]
    assert table.stdout.splitlines()[0].split()[:3] == ["task", "status", "op"]
    names = {p["name"] for p in json.loads(providers.stdout)}
    assert {"apimart", "mountsea-async", "openai"} <= names
    assert cancel.code == 2
    assert json.loads(cancel.stdout)["error"]["code"] == "task_not_cancellable"


def test_without_flags_or_environment_a_running_devstack_is_found(
    info: StackInfo, tmp_path: Path
) -> None:
    # Given a folder with devstack's state file, and nothing in the environment
    state = tmp_path / ".devstack" / "stack.json"
    state.parent.mkdir()
    state.write_text(json.dumps({"api_url": info.api_url, "api_key": info.api_key}))
    (tmp_path / "sub").mkdir()

    done = run(None, "list", "--limit", "1", "--json", cwd=tmp_path / "sub")

    assert done.code == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)
    assert os.environ.get("IMAGEGW_URL") is None


def test_the_providers_table_says_what_get_v1_providers_says(
    info: StackInfo, api: httpx.Client, tmp_path: Path
) -> None:
    # Given what the API says of every provider
    answer = api.get("/v1/providers").raise_for_status().json()
    # When the command prints its table
    done = run(info, "providers", cwd=tmp_path)
    keep("providers.txt", done.stdout)
    # Then each row is that provider's name, state, rank, modes, callback, inputs and mask
    header, *rows = [line.split() for line in done.stdout.splitlines()]
    assert header == ["provider", "enabled", "rank", "modes", "callback", "inputs", "mask",
                      "prices", "breaker"]  # fmt: skip
    expected = [
        [
            p["name"],
            "yes" if p["enabled"] else "no",
            str(p["default_rank"] or "-"),
            ",".join(p["capabilities"]["modes"]),
            "yes" if p["capabilities"]["callback"] else "no",
            str(p["capabilities"]["max_images"]),
            "yes" if p["capabilities"]["mask"] else "no",
        ]
        for p in answer["providers"]
    ]
    assert [row[:7] for row in rows] == expected
    assert dict((row[0], row[5]) for row in rows)["apimart"] == "16"


def test_generate_with_n_saves_every_image_and_prints_each_path(
    info: StackInfo, tmp_path: Path
) -> None:
    # When three images are asked for into a folder
    done = run(
        info, "generate", "three kites", "-n", "3", "--size", "1024x1024",
        "--provider", "mountsea-compat", "-o", "kites/", cwd=tmp_path,
    )  # fmt: skip

    # Then each is saved, named by the task id and its place, and its path printed
    assert done.code == 0, done.stderr
    paths = [tmp_path / line for line in done.stdout.splitlines()]
    assert [p.name.split(".")[0].split("-")[-1] for p in paths[1:]] == ["1", "2"]
    assert len(paths) == 3 and done.stderr.count("saved ") == 3
    for path in paths:
        with Image.open(path) as image:
            assert image.size == (1024, 1024)
