"""The demo's OpenAI-compatible step: one image made by the official ``openai`` SDK, unchanged,
against the gateway's compat surface (``OpenAiBaseUrl``: a Lambda function URL, locally on its
own port), on a provider the SDK could never reach by itself (an async reseller)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from devstack.stack import StackInfo
from devstack.template import ROOT

OUTPUT_DIR = ROOT / "demo-output"


def _say(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    print(f"[{stamp}] {message}", flush=True)


def run_openai_demo(info: StackInfo) -> int:
    """``images.generate`` through the ``openai`` package; returns the number of failures."""
    import openai  # the demo's only use of it: imported here

    _say(f"openai SDK: OpenAI(base_url={info.openai_base_url!r}, api_key=<the API key>)")
    with openai.OpenAI(base_url=info.openai_base_url, api_key=info.api_key, timeout=120) as sdk:
        try:
            raw = sdk.images.with_raw_response.generate(
                model="gpt-image-2",
                prompt="a lighthouse at dawn, from the openai SDK",
                size="1536x1024",
                extra_body={"provider": "mountsea-async"},  # async, poll-only: waited for here
            )
        except openai.APIError as error:
            _say(f"openai SDK: {type(error).__name__}: {error}")
            return 1
    result = raw.parse()
    task_id = raw.headers.get("x-task-id", "?")
    b64 = result.data[0].b64_json if result.data else None
    if not b64:
        _say(f"openai SDK: no b64_json in the answer (task {task_id})")
        return 1
    OUTPUT_DIR.mkdir(exist_ok=True)
    path = OUTPUT_DIR / f"openai-sdk-{task_id}.png"
    path.write_bytes(base64.b64decode(b64))
    _say(
        f"openai SDK: images.generate -> {result.size} {result.output_format}, task {task_id} "
        f"(GET /v1/tasks/{task_id}), saved {path.relative_to(ROOT)}"
    )
    return 0
