"""GIVEN a gateway on fakes WHEN a task goes through each path THEN it ends with one event."""

from __future__ import annotations

from image_gateway.models.request import ImageRequest
from image_gateway.models.task import TaskStatus
from image_gateway.providers.base import ProviderState
from image_gateway.service.dispatch import dispatch
from image_gateway.service.poll import poll_step
from image_gateway.service.refresh import refresh_task
from image_gateway.service.submit import submit_task

from tests.fakes import FakeDependencies
from tests.unit.service.support import submit_and_dispatch


def test_callback_provider_task_is_finished_by_its_callback(deps: FakeDependencies) -> None:
    task = submit_and_dispatch(
        deps, ImageRequest(prompt="a fox", provider="apimart"), client_id="c"
    ).task
    assert task.status is TaskStatus.SUBMITTED and task.path == "callback"

    done = refresh_task(deps, task.task_id, by="callback").task

    assert done.status is TaskStatus.SUCCEEDED
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted", "Image Task Succeeded"]
    assert deps.images.exists(done.outputs[0].key)


def test_poll_provider_task_is_finished_by_its_poll_loop(deps: FakeDependencies) -> None:
    deps.providers.script("mountsea-async").statuses = [
        ProviderState.RUNNING,
        ProviderState.SUCCEEDED,
    ]
    request = ImageRequest(prompt="a fox", provider="mountsea-async")
    task = submit_and_dispatch(deps, request, client_id="c").task
    assert task.task_id in deps.poll_loops.started

    first = poll_step(deps, task.task_id, 0)
    second = poll_step(deps, task.task_id, 1)

    assert (first.done, second.done) == (False, True)
    assert deps.tasks.require(task.task_id).status is TaskStatus.SUCCEEDED


def test_sync_provider_task_is_finished_by_dispatch(deps: FakeDependencies) -> None:
    request = ImageRequest(prompt="a fox", provider="mountsea-compat")
    task = submit_task(deps, request, client_id="c").task
    assert deps.dispatch_queue.take() == [(task.task_id, "mountsea-compat")]

    done = dispatch(deps, task.task_id, "mountsea-compat")

    assert done is not None and done.status is TaskStatus.SUCCEEDED
