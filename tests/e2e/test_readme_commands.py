"""The commands of the README and of the docs pages (docs/*.md) run as written against devstack.

Every ```bash block of README.md, then of each docs page in the site's order (mkdocs.yml's
nav, then any page not in it), is run here, in order, in one shell session (variables and
exports carry over, as in a terminal opened in the repository's folder), or named in NOT_RUN
with the reason. A block that needs an AWS account says so where it stands, in its title
(```bash title="needs an AWS account"), and is listed in ON_AWS: the two must agree, so no
block is skipped unseen. The session starts as the setup notes leave a reader: devstack's
``export`` line pasted, the AWS CLI of ``make tools`` on PATH. Placeholders are filled in with
the running stack's values (PLACEHOLDERS); a placeholder the test does not know fails it, so
the docs and this test change together. Whatever the commands change in the shared stack (the
inbox rules, the provider keys) is put back afterwards.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import httpx
import pytest
from PIL import Image

from devstack.stack import DevStack, StackInfo
from devstack.template import ROOT
from tests.e2e.support import open_image

README = ROOT / "README.md"
DOCS = ROOT / "docs"
TOOLS = ROOT / ".venv-sam" / "bin"
# Blocks not run here, by their first line, and why.
NOT_RUN = {
    "make demo": "`make test` is what CI runs (this test is part of it); `make demo` starts a "
    "devstack of its own and runs devstack/demo.py for minutes",
    "make devstack": "runs until Ctrl-C: test_make_devstack_prints_what_the_readme_shows",
}
AWS_TITLE = 'title="needs an AWS account"'
# Blocks that need an AWS account (marked with AWS_TITLE in the page), by their first line.
ON_AWS = {
    "make build": "`make deploy` runs sam deploy on an account (it stops at sam's own prompt "
    "without one); `make build` runs in tests/template/test_built_layer.py",
    ".venv-sam/bin/sam list stack-outputs --stack-name <stack name> --output table": "reads a "
    "CloudFormation stack; devstack's outputs are in .devstack/stack.json",
    ".venv/bin/imagegw admin --stack <stack name> keys create my-app --name first": "--stack "
    "reads the stack's CloudFormation outputs; the same command without --stack runs here "
    "against devstack (docs/deploy.md, tests/e2e/test_admin.py)",
    "API=<ApiUrl output>; KEY=<the key keys create printed>": "the deployed API; the same calls "
    "run here against devstack (docs/api.md, docs/quickstart.md)",
    "make delete": "deletes a stack on AWS and its retained data; what is retained is checked "
    "by tests/template/test_deletion_policies.py",
    'make deploy DEPLOY_FLAGS="--parameter-overrides LegacyByClientIndex=true"': "upgrades a "
    "deployed stack's table indexes; devstack's table is new (the legacy index under its "
    "condition: tests/template/test_template.py)",
}
UNFILLED = re.compile(r"PORT|XXXX|<[^>]+>|itg_\.\.\.|tsk_\.\.\.|batch_\.\.\.|base64,\.\.\.")


@dataclass
class Block:
    """One ```bash block: its file, the section it is in and its commands (continuations
    joined); ``on_aws`` when its title says it needs an AWS account."""

    source: str
    section: str
    lines: list[str]
    on_aws: bool = False
    commands: list[str] = field(default_factory=list)

    @property
    def first(self) -> str:
        return self.lines[0]


def pages() -> list[Path]:
    """README.md, then the docs pages in the site's order (mkdocs.yml's nav, then the rest)."""
    nav = re.findall(r"^\s+(?:#\s*)?- [^:]+: (\S+\.md)\b", (ROOT / "mkdocs.yml").read_text(), re.M)
    listed = [DOCS / name for name in nav if (DOCS / name).exists()]
    return [README, *listed, *sorted(set(DOCS.glob("*.md")) - set(listed))]


def file_blocks(path: Path) -> list[Block]:
    """Every bash block of one Markdown file, with the ``## `` section it is in."""
    blocks: list[Block] = []
    section, current = "", None
    for line in path.read_text().splitlines():
        if current is None:
            if line.startswith(("# ", "## ")):
                section = line.split(" ", 1)[1]
            elif re.fullmatch(r"```bash(\s.*)?", line.strip()):
                info = line.strip()[len("```bash") :].strip()
                assert info in ("", AWS_TITLE), f"{path.name}: unknown block title {info!r}"
                current = Block(path.name, section, [], on_aws=info == AWS_TITLE)
            continue
        if line.strip() == "```":
            blocks.append(current)
            current = None
        else:
            current.lines.append(line)
    return blocks


def readme_blocks() -> list[Block]:
    """Every bash block of the README and the docs pages, split into the commands a shell
    would run."""
    blocks = [block for path in pages() for block in file_blocks(path)]
    for block in blocks:
        pending = ""
        for line in block.lines:
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending = f"{pending}\n{line}" if pending else line
            if pending.endswith("\\"):
                continue
            try:
                shlex.split(pending, comments=True)
            except ValueError:  # a quote spans lines
                continue
            block.commands.append(pending)
            pending = ""
        assert not pending, f"unfinished command in {block.source} block {block.first!r}"
    return blocks


def _png_data_url() -> str:
    image = Image.new("RGBA", (64, 64), (200, 40, 40, 255))
    image.paste((0, 0, 0, 0), (16, 16, 48, 48))  # transparent = repaint, for the mask
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class Terminal:
    """A shell session: each command runs in bash with the variables the previous ones left."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(self, command: str, timeout: float = 120, *, until_it_works: float = 0) -> str:
        """Run ``command``; with ``until_it_works``, again for that many seconds until it exits 0
        (``aws s3 ls`` of a prefix that is still empty exits 1)."""
        deadline = time.monotonic() + until_it_works
        while True:
            try:
                return self._run(command, timeout)
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _run(self, command: str, timeout: float) -> str:
        with tempfile.NamedTemporaryFile() as saved:
            script = f"set -a -euo pipefail\n{command}\nenv -0 > {shlex.quote(saved.name)}\n"
            done = subprocess.run(  # noqa: S603
                ["bash", "-c", script],  # noqa: S607
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            assert done.returncode == 0, f"{command}\nfailed: {done.stderr[-2000:]}"
            pairs = Path(saved.name).read_bytes().decode().split("\0")
        self.env = dict(p.split("=", 1) for p in pairs if "=" in p)
        return done.stdout


@pytest.fixture
def restored(stack: DevStack, info: StackInfo) -> Iterator[None]:
    """Put back what the README's commands change: the inbox rules and the provider keys."""
    ssm, secrets = boto3.client("ssm"), boto3.client("secretsmanager")
    rules_name = info.outputs["InboxRulesParameterName"]
    keys_arn = info.outputs["ProviderKeysSecretArn"]
    rules = ssm.get_parameter(Name=rules_name)["Parameter"]["Value"]
    keys = secrets.get_secret_value(SecretId=keys_arn)["SecretString"]
    try:
        yield
    finally:
        ssm.put_parameter(Name=rules_name, Value=rules, Overwrite=True, Type="String")
        secrets.put_secret_value(SecretId=keys_arn, SecretString=keys)


def _running_task(api: httpx.Client) -> str:
    """A task the provider never finishes: running until the stack's (scaled) deadline."""
    never = api.post(
        "/v1/images",
        json={"prompt": "readme [sim:never]", "provider": "mountsea-async", "size": "1024x1024"},
    )
    assert never.status_code == 202, never.text
    task_id: str = never.json()["task_id"]
    return task_id


def _open_batch(api: httpx.Client) -> str:
    """A batch whose one line the provider never finishes: open, so it can be cancelled."""
    line = {
        "custom_id": "open",
        "body": {"prompt": "readme [sim:never]", "provider": "mountsea-async"},
    }
    answer = api.post("/v1/batches", json={"requests": [line]})
    assert answer.status_code == 202, answer.text
    batch_id: str = answer.json()["batch_id"]
    return batch_id


def _placeholders(info: StackInfo, api: httpx.Client) -> dict[str, str]:
    """What the reader fills in, from the running stack."""
    stack_name = info.outputs["InboxRulesParameterName"].split("/")[1]
    return {
        "API=http://127.0.0.1:PORT": f"API={info.api_url}",
        "KEY=itg_...": f"KEY={info.api_key}",
        "AWS_ENDPOINT_URL=http://127.0.0.1:PORT": f"AWS_ENDPOINT_URL={info.moto_url}",
        "tsk_...": _running_task(api),
        "batch_...": _open_batch(api),
        "data:image/png;base64,...": _png_data_url(),
        "imagegw-dev-inboxbucket-XXXX": info.outputs["InboxBucketName"],
        "imagegw-dev-imagesbucket-XXXX": info.bucket_name,
        "/<stack>/": f"/{stack_name}/",
        "<TasksTableName>": info.table_name,
        "<ProviderKeysSecretArn output>": info.outputs["ProviderKeysSecretArn"],
    }


def _fill(command: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        command = command.replace(placeholder, value)
    unfilled = UNFILLED.findall(command)
    assert not unfilled, f"placeholder(s) {unfilled} this test cannot fill: {command}"
    return command


def _check(command: str, output: str, info: StackInfo) -> None:
    """What each kind of command must show, beyond exiting 0."""
    if command.startswith("curl"):
        body = json.loads(output)
        assert body.get("error") is None, f"{command}\nanswered {output[:500]}"
    elif command.startswith(".venv/bin/imagegw"):
        assert output.strip(), f"{command}\nprinted nothing on stdout"
        if " admin keys create " in command:  # the new key, printed once, works
            _check_key(output.strip(), info)
        if " -o " in command:  # the saved files' paths (one a line, n of them), real images
            for saved in output.split():
                assert open_image(Path(ROOT / saved).read_bytes()).size[0] > 0
    elif command.startswith("aws s3 ls"):
        assert re.search(r"photo\.tsk_\w+\.png", output), f"{command}\nlisted {output!r}"


def _check_key(key: str, info: StackInfo) -> None:
    assert key.startswith("itg_")
    with httpx.Client(base_url=info.api_url, timeout=30) as client:
        listed = client.get("/v1/tasks", headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200, listed.text


def test_the_blocks_that_need_aws_are_the_ones_listed() -> None:
    # Given the blocks of the README and the docs
    blocks = readme_blocks()

    # When the ones whose title says they need an AWS account are taken
    marked = {block.first.split("#")[0].strip() for block in blocks if block.on_aws}

    # Then they are the ones ON_AWS lists (with why each cannot run here), no more, no fewer
    assert marked == set(ON_AWS)


def test_every_readme_command_runs_as_written(
    info: StackInfo, api: httpx.Client, restored: None
) -> None:
    # Given the README's and the docs' blocks and a terminal set up as they say
    blocks = readme_blocks()
    assert {b.first.split("#")[0].strip() for b in blocks} >= set(NOT_RUN)
    values = _placeholders(info, api)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{TOOLS}{os.pathsep}{env['PATH']}"
    env.update(
        AWS_ENDPOINT_URL=info.moto_url,
        AWS_ACCESS_KEY_ID="devstack",
        AWS_SECRET_ACCESS_KEY="devstack",
        AWS_DEFAULT_REGION="us-east-1",
    )
    terminal = Terminal(env)
    ran = 0
    # When every command of every block that is not named in NOT_RUN runs in order
    for block in blocks:
        if block.on_aws or block.first.split("#")[0].strip() in NOT_RUN:
            continue
        if any("tsk_..." in raw for raw in block.commands):  # still running when it is read
            values["tsk_..."] = _running_task(api)
        if any("batch_..." in raw for raw in block.commands):  # still open when it is cancelled
            values["batch_..."] = _open_batch(api)
        for raw in block.commands:
            command = _fill(raw, values)
            # Then it exits 0 (a listing: once the edit is there) and shows what the page says
            wait = 60 if command.startswith("aws s3 ls") else 0
            _check(command, terminal.run(command, until_it_works=wait), info)
            ran += 1
    assert ran >= 15


PRINTED_PORTS = {"openai": "OPENAI_PORT", "moto": "MOTO_PORT", "export": "MOTO_PORT",
                 "simulator": "SIMULATOR_PORT"}  # fmt: skip
"""The README's placeholder of each printed line's port (the API's, elsewhere: PORT)."""
RANDOM_PARTS = [
    (re.compile(r"itg_[A-Za-z0-9_-]+"), "itg_..."),
    (re.compile(r"whsec_\S+"), "whsec_..."),
    (re.compile(r"(bucket|Secret)-[A-Za-z0-9]+"), r"\1-XXXX"),
]


def as_readme_shows(line: str) -> str:
    """A line devstack printed, with what differs at each start (ports, keys, suffixes) as the
    README writes it."""
    label = line.split(" ", 1)[0]
    line = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{PRINTED_PORTS.get(label, 'PORT')}", line)
    for pattern, replacement in RANDOM_PARTS:
        line = pattern.sub(replacement, line)
    return line


def test_make_devstack_prints_what_the_readme_shows() -> None:
    # Given the README's sample of what `make devstack` prints
    block = next(b for b in readme_blocks() if b.first.strip() == "make devstack" and b.lines[1:])
    sample = [line[2:] for line in block.lines[1:] if line.startswith("# ")]
    labels = [line.split()[0] for line in sample]
    # (it writes .devstack/stack.json as a reader's would, and removes it when stopped: the
    # session's own stack's state file is put back afterwards, for the tests that read it)
    state_file = ROOT / ".devstack" / "stack.json"
    session_state = state_file.read_bytes() if state_file.exists() else None
    # When it starts (and is stopped with Ctrl-C once it says how)
    process = subprocess.Popen(
        ["make", "--no-print-directory", "devstack"],  # noqa: S607
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    printed: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        for line in process.stdout:
            printed.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C to stop.") or time.monotonic() > deadline:
                break
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
        if session_state is not None:
            state_file.parent.mkdir(parents=True, exist_ok=True)
            state_file.write_bytes(session_state)
    # Then its block (from the API line on, log lines aside) is the README's, line for line
    first = next(i for i, line in enumerate(printed) if line.startswith("API "))
    block_printed = [line for line in printed[first:] if line and not line.startswith("{")]
    assert [as_readme_shows(line) for line in block_printed] == sample
    # And the names its examples need are there
    shown = {line.split()[0]: line for line in printed if line.strip()}
    assert set(labels) <= set(shown), f"README shows {labels}, devstack printed:\n{printed}"
    assert re.match(r"images\s+s3://imagegw-dev-imagesbucket-\w+/", shown["images"])
    assert re.match(r"inbox\s+s3://imagegw-dev-inboxbucket-\w+/", shown["inbox"])
    assert re.match(r"table\s+imagegw-dev-TasksTable\b", shown["table"])
    exported = dict(p.split("=", 1) for p in shown["export"].split()[1:])
    assert set(exported) == {
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    }
