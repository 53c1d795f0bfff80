"""The demo: one task on every provider, through the real HTTP API of a local stack, each
meant for its own path (provider callback, Step Functions poll loop, or a sync call from the
dispatch queue; the table's "finished by" says which path actually finished it); then a photo
uploaded with boto3 to the S3 inbox, edited by the default rule.

It prints each task's status changes with timestamps, a table (provider, path, size asked and
produced, seconds, cost estimate, S3 key), the EventBridge events as a subscriber queue received
them, and saves every image under ``demo-output/``. Last, the ``imagegw`` command makes one
image the way a person would, the official ``openai`` SDK makes one through the gateway's
OpenAI-compatible surface, a batch of three requests (one asking for two images) runs to its
results file, and the demo ends with the console's URL and a command to try.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
from PIL import Image, ImageDraw

from devstack.demo_batch import run_batch_demo
from devstack.demo_openai import run_openai_demo
from devstack.stack import DevStack, StackConfig, StackInfo
from devstack.template import ROOT

OUTPUT_DIR = ROOT / "demo-output"
TRY_COMMAND = (
    '.venv/bin/imagegw generate "a lighthouse at dawn" --aspect 16:9 --resolution 2K '
    "-o demo-output/lighthouse.png"
)
"""One imagegw command to try against a running stack (it finds it by .devstack/stack.json)."""


def _say(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    print(f"[{stamp}] {message}", flush=True)


def _png_data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def demo_inputs() -> tuple[str, str]:
    """A 1024x1024 photo-like input and a mask whose transparent disc is to be repainted."""
    photo = Image.new("RGB", (1024, 1024), (40, 90, 160))
    draw = ImageDraw.Draw(photo)
    for i in range(0, 1024, 64):
        draw.rectangle((i, 0, i + 31, 1023), fill=(60 + i // 8, 120, 200 - i // 8))
    draw.ellipse((312, 312, 712, 712), fill=(240, 200, 40))
    mask = Image.new("RGBA", (1024, 1024), (0, 0, 0, 255))
    ImageDraw.Draw(mask).ellipse((362, 362, 662, 662), fill=(0, 0, 0, 0))
    return _png_data_url(photo), _png_data_url(mask)


def subscribe(info: StackInfo) -> str:
    """An EventBridge rule on the gateway's bus that sends every task event to an SQS queue."""
    sqs = boto3.client("sqs")
    events = boto3.client("events")
    queue_url = sqs.create_queue(QueueName="demo-subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="demo-subscriber",
        EventBusName=info.event_bus_name,
        EventPattern=json.dumps({"source": ["image-gateway"]}),
    )
    events.put_targets(
        Rule="demo-subscriber",
        EventBusName=info.event_bus_name,
        Targets=[{"Id": "queue", "Arn": queue_arn}],
    )
    return str(queue_url)


def watch(client: httpx.Client, task_id: str, label: str, timeout: float = 120) -> dict[str, Any]:
    """Poll the task, printing every status change, until it is terminal."""
    seen = 0
    deadline = time.monotonic() + timeout
    while True:
        task = client.get(f"/v1/tasks/{task_id}").raise_for_status().json()
        for change in task["history"][seen:]:
            _say(f"{label}: {change['status']:<9} at {change['at']} (by {change['by']})")
        seen = len(task["history"])
        if task["status"] in ("succeeded", "failed", "cancelled", "expired"):
            return dict(task)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{label} did not finish in {timeout} s")
        time.sleep(0.2)


def demo_jobs(image: str, mask: str, second: str) -> dict[str, dict[str, Any]]:
    """One request per provider: generations, edits with references, masked edits."""
    return {
        "apimart": {
            "prompt": "A lighthouse on a cliff at dawn, watercolour",
            "provider": "apimart",
            "aspect_ratio": "16:9",
            "resolution": "1K",
            "metadata": {"demo": "generate"},
        },
        "mountsea-async": {
            "prompt": "Replace the centre with a glowing moon",
            "provider": "mountsea-async",
            "size": "1024x1024",
            "quality": "low",
            "images": [image],
            "mask": mask,
            "metadata": {"demo": "masked-edit"},
        },
        "pmock": {
            "prompt": "Blend both pictures into one poster",
            "provider": "pmock",
            "size": "1536x1024",
            "images": [image, second],
            "metadata": {"demo": "edit-2-refs"},
        },
        "apimodels (sync)": {
            "prompt": "A white sneaker product shot on beige, studio light",
            "provider": "apimodels",
            "size": "2048x1152",
            "quality": "high",
            "metadata": {"demo": "generate-wxh"},
        },
        "apimodels (async)": {
            "prompt": "A lighthouse on a cliff at dusk",
            "provider": "apimodels",
            "aspect_ratio": "9:16",
            "resolution": "2K",
            "quality": "medium",
            "images": [image],
            "metadata": {"demo": "edit-ratio"},
        },
        "mountsea-compat": {
            "prompt": "Paint a red door where the mask is",
            "provider": "mountsea-compat",
            "size": "1024x1024",
            "quality": "medium",
            "images": [image],
            "mask": mask,
            "metadata": {"demo": "masked-edit-multipart"},
        },
        "openai": {
            "prompt": "A tall glass of lemonade, photorealistic",
            "provider": "openai",
            "size": "1024x1536",
            "output_format": "jpeg",
            "output_compression": 80,
            "metadata": {"demo": "generate-jpeg"},
        },
    }


def run_demo(info: StackInfo) -> int:
    """Run one task per provider against a started stack; returns the process exit code."""
    OUTPUT_DIR.mkdir(exist_ok=True)
    queue_url = subscribe(info)
    headers = {"Authorization": f"Bearer {info.api_key}"}
    image, mask = demo_inputs()
    jobs = demo_jobs(image, mask, _png_data_url(Image.new("RGB", (512, 768), (200, 80, 60))))
    failures = 0
    rows: list[list[str]] = []
    with httpx.Client(base_url=info.api_url, headers=headers, timeout=120) as client:
        submitted: dict[str, str] = {}
        for label, body in jobs.items():
            answer = client.post("/v1/images", json=body)
            if answer.status_code != 202:
                _say(f"{label}: submit failed {answer.status_code} {answer.text}")
                return 1
            submitted[label] = answer.json()["task_id"]
            _say(f"{label}: submitted as {submitted[label]}")
        for label, task_id in submitted.items():
            task = watch(client, task_id, label)
            if task["status"] != "succeeded":
                _say(f"{label}: ended {task['status']}: {task['error']}")
                failures += 1
                continue
            output = task["outputs"][0]
            local = OUTPUT_DIR / f"{task_id}.{output['key'].rsplit('.', 1)[-1]}"
            local.write_bytes(httpx.get(output["url"]).raise_for_status().content)
            cost = task["cost_estimate_usd"]
            rows.append(
                [
                    task["provider"],
                    str(task["path"]),
                    _finished_by(task),
                    str(task["size_requested"]),
                    str(task["size_produced"]),
                    f"{task['duration_ms'] / 1000:.2f}",
                    "-" if cost is None else f"${cost:.3f}",
                    output["key"],
                ]
            )
    _print_table(
        [
            "provider",
            "path",
            "finished by",
            "size asked",
            "produced",
            "seconds",
            "cost est.",
            "S3 key",
        ],
        rows,
    )
    failures += run_inbox_demo(info)
    failures += _print_events(queue_url, expected=len(jobs) * 2 + 2)
    failures += run_webhook_demo(info)
    failures += run_cli_demo(info)
    failures += run_openai_demo(info)
    failures += run_batch_demo(info)
    _say("demo finished" + (" with failures" if failures else ": all tasks succeeded"))
    print(f"console  {info.console_url}   (API key {info.api_key}; this stack stops with the demo)")
    print(f"try      make devstack   (keeps a stack running), then: {TRY_COMMAND}", flush=True)
    return 1 if failures else 0


def run_webhook_demo(info: StackInfo, timeout: float = 30) -> int:
    """A task with a callback_url; a local receiver verifies its signed delivery with the
    official ``standardwebhooks`` package and the client's secret. Returns 0 or 1 failure."""
    from devstack.webhook_receiver import WebhookReceiver

    receiver = WebhookReceiver(info.webhook_secret)
    headers = {"Authorization": f"Bearer {info.api_key}"}
    try:
        with httpx.Client(base_url=info.api_url, headers=headers, timeout=60) as client:
            body = {
                "prompt": "a paper kite, announced by webhook",
                "provider": "mountsea-compat",
                "size": "1024x1024",
                "callback_url": receiver.url("/demo/hook"),
                "callback_events": ["submitted", "running", "completed"],
            }
            answer = client.post("/v1/images", json=body)
            if answer.status_code != 202:
                _say(f"webhook: submit failed {answer.status_code} {answer.text}")
                return 1
            task_id = answer.json()["task_id"]
            _say(f"webhook: {task_id} will be announced to {body['callback_url']}")
            _say(f"webhook: secret {info.webhook_secret[:12]}... (GET /v1/webhook-secret)")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                got = receiver.received("/demo/hook")
                if got and got[-1].payload and got[-1].payload["type"] == "image_task.succeeded":
                    break
                time.sleep(0.1)
            for delivery in receiver.received("/demo/hook"):
                signature = delivery.headers["webhook-signature"][:24]
                verdict = "verified" if delivery.payload else "NOT verified"
                kind = delivery.payload["type"] if delivery.payload else "?"
                _say(
                    f"webhook: received {kind}, webhook-id {delivery.headers['webhook-id']}, "
                    f"signature {signature}... {verdict} with standardwebhooks"
                )
    finally:
        receiver.close()
    kinds = [d.payload["type"] for d in receiver.received("/demo/hook") if d.payload]
    if "image_task.succeeded" not in kinds:
        _say("webhook: no verified delivery of the task's completion arrived")
        return 1
    return 0


def run_cli_demo(info: StackInfo) -> int:
    """The imagegw command on this stack, as a person would run it; its progress shows as it
    waits (a live line on a terminal). Returns the number of failures (0 or 1)."""
    command = [
        str(Path(sys.executable).parent / "imagegw"),
        "generate", "a lighthouse at dawn, from the imagegw command",
        "--aspect", "16:9", "--resolution", "2K", "-o", str(OUTPUT_DIR / "imagegw-lighthouse.png"),
    ]  # fmt: skip
    _say(f"imagegw: {shlex.join(['imagegw', *command[1:]])}")
    env = {**os.environ, "IMAGEGW_URL": info.api_url, "IMAGEGW_KEY": info.api_key}
    done = subprocess.run(command, env=env, check=False, timeout=120)  # noqa: S603
    if done.returncode != 0:
        _say(f"imagegw exited {done.returncode}")
        return 1
    return 0


FINISHERS = {"dispatch": "sync"}
"""What ended a task, as the table names it: the dispatch queue's call is the sync path."""


def _finished_by(task: dict[str, Any]) -> str:
    """The path that actually finished the task (the task records it: ``finished_by``)."""
    by = str(task.get("finished_by"))
    return FINISHERS.get(by, by)


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join("-" * w for w in widths)
    print(line)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print(line, flush=True)
    print("seconds are at devstack's time scale (x0.02); cost '-' = no price configured")


def run_inbox_demo(info: StackInfo, timeout: float = 60) -> int:
    """Upload a photo to the S3 inbox with boto3 and wait for its edit (the default rule)."""
    from image_gateway.adapters.dynamodb_tasks import DynamoDBTaskStore as TaskStore

    inbox = info.outputs["InboxBucketName"]
    key = "products/demo-photo.png"
    photo = base64.b64decode(demo_inputs()[0].split(",", 1)[1])
    boto3.client("s3").put_object(Bucket=inbox, Key=key, Body=photo, ContentType="image/png")
    _say(f"inbox upload: s3://{inbox}/{key} (rule 'products/' from the SSM rules parameter)")
    store = TaskStore(boto3.client("dynamodb"), info.table_name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = store.list_for_client("inbox", limit=20, cursor=None)
        done = [
            t
            for t in page.tasks
            if t.source is not None and t.source.key == key and t.status.terminal
        ]
        if done:
            task = done[0]
            if task.status.value != "succeeded" or not task.outputs:
                _say(f"inbox edit {task.task_id} ended {task.status.value}: {task.error}")
                return 1
            output = task.outputs[0]
            local = OUTPUT_DIR / f"{task.task_id}.{output.key.rsplit('.', 1)[-1]}"
            data = boto3.client("s3").get_object(Bucket=output.bucket, Key=output.key)["Body"]
            local.write_bytes(data.read())
            _say(
                f"inbox edit {task.task_id} @ {task.provider}: s3://{output.bucket}/{output.key} "
                f"{output.width}x{output.height} -> {local}"
            )
            return 0
        time.sleep(0.2)
    _say(f"inbox upload {key} was not edited within {timeout} s")
    return 1


def _print_events(queue_url: str, *, expected: int) -> int:
    sqs = boto3.client("sqs")
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + 15
    while len(received) < expected and time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in batch.get("Messages", []):
            received.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    for event in received:
        detail = event["detail"]
        outputs = ", ".join(o["key"] for o in detail["outputs"]) or "-"
        source = detail.get("source")
        origin = f" source=s3://{source['bucket']}/{source['key']}" if source else ""
        _say(
            f"event received by the subscriber queue: {event['detail-type']} "
            f"task={detail['task_id']} provider={detail['provider']} outputs={outputs}{origin}"
        )
    if len(received) < expected:
        _say(f"expected {expected} events, the subscriber received {len(received)}")
        return 1
    return 0


def demo_config() -> StackConfig:
    """The demo's stack: no state file, so a running ``make devstack`` keeps its own (the demo
    passes its URL and key to imagegw itself)."""
    return StackConfig(state_file=None)


def main() -> int:
    """``make demo``: start devstack, run the demo, stop."""
    _say("starting devstack: moto server, provider simulator, local HTTP API ...")
    with DevStack(demo_config()) as stack:
        assert stack.info is not None
        info = stack.info
        _say(
            f"stack up from template.yaml: API {info.api_url}, moto {info.moto_url}, "
            f"simulator {info.simulator_url}"
        )
        _say(f"table {info.table_name}, bucket {info.bucket_name}, bus {info.event_bus_name}")
        return run_demo(info)


if __name__ == "__main__":
    sys.exit(main())
