"""functions/thumbnail/app.py: an SQS batch of the gateway's succeeded events, each a thumbnail;
a malformed record is dropped with a log line, a failing one is reported back to SQS."""

from __future__ import annotations

import base64
import json
from types import ModuleType
from typing import Any

import pytest
from image_gateway.service.refresh import refresh_task

from tests.fakes import FakeDependencies
from tests.fakes.thumbnails import FakeThumbnailDependencies
from tests.unit.handlers import FixedDependencies, LambdaContextStub, load_file
from tests.unit.service.support import fox, png, submit_and_dispatch

CONTEXT = LambdaContextStub(
    function_name="ThumbnailFunction",
    memory_limit_in_mb=512,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:Thumbnail",
)


@pytest.fixture(scope="module")
def handler() -> ModuleType:
    """functions/thumbnail/app.py, imported from its file as Lambda does."""
    return load_file("functions/thumbnail/app.py", "thumbnail_app")


@pytest.fixture
def deps() -> FakeDependencies:
    return FakeDependencies(default_image=png())


@pytest.fixture
def thumbs(
    deps: FakeDependencies, handler: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> FakeThumbnailDependencies:
    fakes = FakeThumbnailDependencies.over(deps.tasks, deps.images)
    monkeypatch.setattr(handler, "DEPS", FixedDependencies(fakes))
    return fakes


def succeeded_event(task_id: str) -> str:
    """The body EventBridge puts on the thumbnail queue."""
    return json.dumps(
        {
            "version": "0",
            "detail-type": "Image Task Succeeded",
            "source": "image-gateway",
            "detail": {"task_id": task_id, "status": "succeeded"},
        }
    )


def batch(*bodies: str) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m{i}", "body": b} for i, b in enumerate(bodies)]}


def test_each_succeeded_event_of_a_batch_gets_its_task_a_thumbnail(
    handler: ModuleType, deps: FakeDependencies, thumbs: FakeThumbnailDependencies
) -> None:
    deps.providers.script("apimart").image_b64 = base64.b64encode(png(800, 600)).decode()
    ids = []
    for _ in range(2):
        task = submit_and_dispatch(deps, fox(provider="apimart"), client_id="c").task
        ids.append(refresh_task(deps, task.task_id, by="callback").task.task_id)

    answer = handler.lambda_handler(batch(*map(succeeded_event, ids)), CONTEXT)

    assert answer == {"batchItemFailures": []}
    for task_id in ids:
        key = deps.tasks.require(task_id).thumbnail_key
        assert key is not None and key.endswith(".thumb.jpg") and key in deps.images.objects


@pytest.mark.parametrize(
    "body", ["not json", "[]", json.dumps({"detail": {}}), json.dumps({"detail": {"task_id": 7}})]
)
def test_a_record_that_is_not_a_task_event_is_dropped_with_a_log_line(
    handler: ModuleType,
    thumbs: FakeThumbnailDependencies,
    body: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    answer = handler.lambda_handler(batch(body), CONTEXT)

    assert answer == {"batchItemFailures": []}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["level"], line["message"]) for line in lines] == [
        ("ERROR", "malformed thumbnail message dropped")
    ]


def test_a_record_whose_thumbnail_fails_is_received_again(
    handler: ModuleType,
    deps: FakeDependencies,
    thumbs: FakeThumbnailDependencies,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN S3 refusing to store, for one record of two
    deps.providers.script("apimart").image_b64 = base64.b64encode(png(64, 64)).decode()
    task = submit_and_dispatch(deps, fox(provider="apimart"), client_id="c").task
    done = refresh_task(deps, task.task_id, by="callback").task

    def refuse(*args: object, **kwargs: object) -> object:
        raise RuntimeError("S3 is down")

    monkeypatch.setattr(deps.images, "store", refuse)

    answer = handler.lambda_handler(
        batch(succeeded_event(done.task_id), succeeded_event("tsk_gone")), CONTEXT
    )

    # THEN only the failing record goes back to SQS (the unknown task is simply done)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert deps.tasks.require(done.task_id).thumbnail_key is None
