"""Callbacks and finalisation: ask the provider, store the image once, announce it once."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from image_gateway.errors import DownloadFailed, ProviderBadResponse, ProviderRejected
from image_gateway.images.json_blobs import parse_json_with_blobs
from image_gateway.models.task import SourceObject, Task, TaskStatus
from image_gateway.ports import TaskNotFound
from image_gateway.providers.base import ProviderState, ProviderStatus, ResultImage
from image_gateway.service.lifecycle import cancel_task, expire_task
from image_gateway.service.refresh import RetryLater, refresh_task
from image_gateway.service.submit import submit_task

from tests.fakes import FakeDependencies, unavailable
from tests.unit.service.support import RESULT_URL, fox, png, submit_and_dispatch


@pytest.fixture
def task(deps: FakeDependencies) -> Task:
    """A task at apimart (callbacks), submitted."""
    return submit_and_dispatch(deps, fox(provider="apimart"), client_id="c").task


def callback(deps: FakeDependencies, task: Task) -> Task:
    """What the webhook does with a verified callback: look at the provider now."""
    return refresh_task(deps, task.task_id, by="callback").task


def garbage() -> ProviderBadResponse:
    return ProviderBadResponse("apimart answered a body without status", provider="apimart")


def status_calls(deps: FakeDependencies) -> int:
    return len(deps.providers.calls_to("apimart", "status"))


# -- success -------------------------------------------------------------------------------------
def test_a_callback_stores_the_image_and_finishes_the_task(
    deps: FakeDependencies, task: Task, result_png: bytes
) -> None:
    # GIVEN the provider done WHEN its callback arrives
    # THEN the image is at outputs/{client}/{yyyy}/{mm}/{dd}/{task}/0.png with its checks
    result = refresh_task(deps, task.task_id, by="callback")
    done = result.task

    (output,) = done.outputs
    day = done.created_at
    assert output.key == f"outputs/c/{day:%Y}/{day:%m}/{day:%d}/{task.task_id}/0.png"
    assert (output.width, output.height, output.bytes) == (1024, 1024, len(result_png))
    assert output.sha256 == deps.images.sha256(output.key)
    assert deps.images.metadata[output.key] == {
        "task-id": task.task_id,
        "client-id": "c",
        "provider": "apimart",
    }
    assert (result.done, done.status, done.finalized_by) == (True, TaskStatus.SUCCEEDED, "callback")


def test_a_result_by_url_is_downloaded_into_the_bucket(deps: FakeDependencies, task: Task) -> None:
    # GIVEN apimart answering with an image URL WHEN the callback arrives
    # THEN the URL is fetched and its bytes stored
    deps.providers.script("apimart").image_url = RESULT_URL
    deps.fetcher.bodies[RESULT_URL] = png(512, 512)

    done = callback(deps, task)

    assert deps.fetcher.fetched == [RESULT_URL]
    assert (done.outputs[0].width, done.outputs[0].height) == (512, 512)


def test_a_result_streamed_into_a_spooled_blob_is_stored(deps: FakeDependencies) -> None:
    # GIVEN mountsea-async answering with a base64 image too long to hold in memory
    # (the real adapter parses it into a spooled Blob) WHEN the poll reads it THEN it is stored
    image = png(256, 256, "orange")
    body = json.dumps({"status": "completed", "result": base64.b64encode(image).decode()})
    adapter = deps.directory.provider("mountsea-async")

    def spooled() -> ProviderStatus:
        parsed, blobs = parse_json_with_blobs([body.encode()], min_blob_chars=64)
        status = adapter.parse_status(200, parsed)
        status.blobs = blobs
        return status

    deps.providers.script("mountsea-async").statuses = [spooled]
    task = submit_and_dispatch(deps, fox(provider="mountsea-async"), client_id="c").task

    done = refresh_task(deps, task.task_id, by="poll").task

    assert done.status is TaskStatus.SUCCEEDED
    assert deps.images.objects[done.outputs[0].key] == image


def test_an_inbox_task_result_goes_where_its_rule_says_with_its_source(
    deps: FakeDependencies,
) -> None:
    # GIVEN a task from an inbox upload with its own output key, and two result images
    def two_images() -> ProviderStatus:
        b64 = deps.providers.default_image_b64
        images = [ResultImage(b64=b64), ResultImage(b64=b64)]
        return ProviderStatus(ProviderState.SUCCEEDED, "completed", images=images)

    deps.providers.script("apimart").statuses = [two_images]
    source = SourceObject(bucket="inbox", key="products/é.png", version_id="v1", etag="e")
    task = submit_and_dispatch(
        deps,
        fox(provider="apimart"),
        client_id="c",
        source=source,
        output_key_stem="outputs/inbox/products/é.tsk",
    ).task

    # WHEN it is finalised
    done = callback(deps, task)

    # THEN output 0 is at the stem, output 1 at stem-1, each naming the upload (ASCII-encoded)
    assert [o.key for o in done.outputs] == [
        "outputs/inbox/products/é.tsk.png",
        "outputs/inbox/products/é.tsk-1.png",
    ]
    metadata = deps.images.metadata["outputs/inbox/products/é.tsk.png"]
    assert metadata["source-key"] == "products/%C3%A9.png"
    assert (metadata["source-bucket"], metadata["source-version-id"]) == ("inbox", "v1")


def test_a_status_already_read_is_not_asked_again(deps: FakeDependencies, task: Task) -> None:
    # GIVEN a status the caller already has (a batch query) WHEN refreshing with it
    # THEN the provider is not asked again
    status = ProviderStatus(ProviderState.RUNNING, "processing")

    refreshed = refresh_task(deps, task.task_id, by="sweeper", status=status).task

    assert refreshed.status is TaskStatus.RUNNING
    assert status_calls(deps) == 0


# -- duplicate and late callbacks ----------------------------------------------------------------
def test_a_duplicate_callback_changes_nothing(deps: FakeDependencies, task: Task) -> None:
    # GIVEN a task finished by its callback WHEN the provider calls back again
    first = callback(deps, task)

    again = callback(deps, task)

    # THEN the provider is not asked again, nothing is re-stored, one Succeeded event
    assert again.outputs == first.outputs and again.version == first.version
    assert status_calls(deps) == 1
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted", "Image Task Succeeded"]


def test_two_callbacks_racing_finish_the_task_once(deps: FakeDependencies, task: Task) -> None:
    # GIVEN a second callback that arrives (and finishes) while the first one is downloading
    def second_callback_meanwhile() -> ProviderStatus:
        assert callback(deps, task).status is TaskStatus.SUCCEEDED
        b64 = deps.providers.default_image_b64
        return ProviderStatus(ProviderState.SUCCEEDED, "completed", [ResultImage(b64=b64)])

    deps.providers.script("apimart").statuses = [
        second_callback_meanwhile,
        ProviderState.SUCCEEDED,
    ]

    # WHEN the first callback finishes its work
    first = callback(deps, task)

    # THEN it finds the task already succeeded: one Succeeded event, one stored image
    assert first.status is TaskStatus.SUCCEEDED
    assert deps.events.for_task(task.task_id) == ["Image Task Submitted", "Image Task Succeeded"]
    assert outputs_of(deps, task) == [first.outputs[0].key]


@pytest.mark.parametrize(
    ("end", "status"),
    [
        (lambda deps, t: expire_task(deps, t.task_id, by="sweeper"), TaskStatus.EXPIRED),
        (lambda deps, t: cancel_task(deps, t), TaskStatus.CANCELLED),
    ],
    ids=["expired", "cancelled"],
)
def test_a_late_callback_does_not_revive_an_ended_task(
    deps: FakeDependencies,
    task: Task,
    end: Callable[[FakeDependencies, Task], object],
    status: TaskStatus,
) -> None:
    # GIVEN a task that ended (expired / cancelled) WHEN the provider calls back late
    end(deps, task)

    late = callback(deps, task)

    # THEN it stays ended, the provider is not asked, and no image is stored
    assert late.status is status
    assert status_calls(deps) == 0
    assert deps.images.objects == {}


# -- the provider's answer -----------------------------------------------------------------------
def test_a_pending_task_stays_as_it_is(deps: FakeDependencies, task: Task) -> None:
    # GIVEN the provider has not started WHEN asked THEN nothing is written
    deps.providers.script("apimart").statuses = [ProviderState.PENDING]

    pending = refresh_task(deps, task.task_id, by="callback")

    assert pending.done is False
    assert (pending.task.status, pending.task.version) == (TaskStatus.SUBMITTED, task.version)


def test_a_started_task_becomes_running_once(deps: FakeDependencies, task: Task) -> None:
    # GIVEN the provider working WHEN asked twice THEN running, recorded once
    deps.providers.script("apimart").statuses = [ProviderState.RUNNING]

    callback(deps, task)
    running = callback(deps, task)

    assert running.status is TaskStatus.RUNNING
    assert [h.status for h in running.history].count(TaskStatus.RUNNING) == 1


def test_a_task_the_provider_failed_fails_with_its_error(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN the provider reporting a moderation failure WHEN the callback arrives
    # THEN the task fails with that error and one Failed event
    script = deps.providers.script("apimart")
    script.statuses = [ProviderState.FAILED]
    script.failure = ProviderRejected(
        "apimart: blocked", provider="apimart", code="moderation_blocked"
    )

    failed = callback(deps, task)

    assert failed.status is TaskStatus.FAILED
    assert failed.error is not None and failed.error.code == "moderation_blocked"
    assert deps.events.for_task(task.task_id)[-1] == "Image Task Failed"


def test_a_task_the_provider_no_longer_knows_fails(deps: FakeDependencies, task: Task) -> None:
    # GIVEN the provider answering "no such task" (a non-retryable refusal) WHEN asked
    # THEN the task fails with that code
    deps.providers.script("apimart").statuses = [
        ProviderRejected(
            "apimart: unknown task", provider="apimart", code="provider_task_not_found"
        )
    ]

    failed = callback(deps, task)

    assert failed.error is not None and failed.error.code == "provider_task_not_found"


def test_a_provider_outage_is_retried_later(deps: FakeDependencies, task: Task) -> None:
    # GIVEN the status endpoint answering 503 WHEN asked THEN RetryLater and no change
    deps.providers.script("apimart").statuses = [unavailable("apimart")]

    with pytest.raises(RetryLater):
        callback(deps, task)

    assert deps.tasks.require(task.task_id).version == task.version


def test_three_bad_responses_running_fail_the_task(deps: FakeDependencies, task: Task) -> None:
    # GIVEN the status endpoint answering garbage every time
    deps.providers.script("apimart").statuses = [garbage()]

    # WHEN asked max_bad_responses times THEN the first ones retry, the last one fails it
    for _ in range(deps.timing.max_bad_responses - 1):
        with pytest.raises(RetryLater):
            callback(deps, task)
    failed = callback(deps, task)

    assert failed.status is TaskStatus.FAILED
    assert failed.error is not None and failed.error.code == "provider_bad_response"
    assert failed.bad_responses == deps.timing.max_bad_responses


def test_bad_responses_between_good_ones_do_not_fail_the_task(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN garbage and valid "running" answers alternating
    deps.providers.script("apimart").statuses = [
        garbage(),
        ProviderState.RUNNING,
        garbage(),
        ProviderState.RUNNING,
        garbage(),
        ProviderState.RUNNING,
    ]

    # WHEN asked six times (no three bad answers in a row)
    for _ in range(3):
        with pytest.raises(RetryLater):
            callback(deps, task)
        callback(deps, task)

    # THEN the task is still running
    assert deps.tasks.require(task.task_id).status is TaskStatus.RUNNING


def test_an_unknown_task_is_not_found(deps: FakeDependencies) -> None:
    # GIVEN no such task WHEN a callback names it THEN TaskNotFound
    with pytest.raises(TaskNotFound):
        refresh_task(deps, "tsk_nobody", by="callback")


def test_a_task_without_a_provider_task_is_left_alone(deps: FakeDependencies) -> None:
    # GIVEN a task waiting for dispatch (no provider task id yet) WHEN refreshed
    # THEN nobody is asked and nothing changes
    task = submit_task(deps, fox(provider="mountsea-compat"), client_id="c").task

    refreshed = refresh_task(deps, task.task_id, by="sweeper").task

    assert refreshed.version == task.version
    assert deps.providers.calls == []


# -- bad results ---------------------------------------------------------------------------------
def fail_code(deps: FakeDependencies, task: Task) -> str | None:
    failed = callback(deps, task)
    assert failed.status is TaskStatus.FAILED
    assert deps.events.for_task(task.task_id)[-1] == "Image Task Failed"
    return failed.error.code if failed.error else None


def test_bytes_that_are_not_an_image_fail_the_task(deps: FakeDependencies, task: Task) -> None:
    # GIVEN the provider's "image" being text WHEN finalised THEN provider_bad_image
    deps.providers.script("apimart").image_url = RESULT_URL
    deps.fetcher.bodies[RESULT_URL] = b"<html>oops</html>"

    assert fail_code(deps, task) == "provider_bad_image"


def test_a_result_without_any_image_fails_the_task(deps: FakeDependencies, task: Task) -> None:
    # GIVEN a "succeeded" answer whose image has neither URL nor data WHEN finalised
    # THEN provider_bad_image
    deps.providers.script("apimart").statuses = [
        lambda: ProviderStatus(ProviderState.SUCCEEDED, "completed", [ResultImage()])
    ]

    assert fail_code(deps, task) == "provider_bad_image"


def test_an_oversized_result_fails_the_task(deps: FakeDependencies, task: Task) -> None:
    # GIVEN a result over the download limit WHEN finalised THEN provider_image_too_large
    deps.providers.script("apimart").image_url = RESULT_URL
    deps.fetcher.bodies[RESULT_URL] = png(64, 64)
    deps.fetcher.max_bytes = 100

    assert fail_code(deps, task) == "provider_image_too_large"


def test_a_result_at_an_unsafe_url_fails_the_task(deps: FakeDependencies, task: Task) -> None:
    # GIVEN a result URL that is not https WHEN finalised THEN provider_unsafe_url, not fetched
    deps.providers.script("apimart").image_url = "http://169.254.169.254/latest/meta-data"

    assert fail_code(deps, task) == "provider_unsafe_url"


def test_a_result_that_is_gone_fails_the_task(deps: FakeDependencies, task: Task) -> None:
    # GIVEN a result URL answering 404 WHEN finalised THEN provider_download_failed
    deps.providers.script("apimart").image_url = RESULT_URL

    assert fail_code(deps, task) == "provider_download_failed"


def test_a_download_that_timed_out_is_retried_and_then_succeeds(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN the result download timing out once
    deps.providers.script("apimart").image_url = RESULT_URL
    deps.fetcher.bodies[RESULT_URL] = png(64, 64)
    deps.fetcher.failures[RESULT_URL] = DownloadFailed("timed out", retryable=True)

    # WHEN the callback arrives THEN RetryLater, the task untouched
    with pytest.raises(RetryLater):
        callback(deps, task)
    assert deps.tasks.require(task.task_id).status is TaskStatus.SUBMITTED

    # WHEN it is retried after the CDN recovered THEN the task succeeds
    del deps.fetcher.failures[RESULT_URL]
    assert callback(deps, task).status is TaskStatus.SUCCEEDED


def test_a_result_at_an_unreachable_host_fails_the_task_once_its_retries_are_spent(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN a result URL whose host never answers
    deps.providers.script("apimart").image_url = RESULT_URL
    deps.fetcher.failures[RESULT_URL] = DownloadFailed("could not connect", retryable=True)

    # WHEN finalised max_download_failures times THEN the first ones retry, the last one fails
    # it with a download error (not left to expire at its deadline)
    for _ in range(deps.timing.max_download_failures - 1):
        with pytest.raises(RetryLater):
            callback(deps, task)
    failed = callback(deps, task)

    assert failed.status is TaskStatus.FAILED
    assert failed.error is not None and failed.error.code == "provider_download_failed"
    assert failed.download_failures == deps.timing.max_download_failures


# -- nothing left behind -------------------------------------------------------------------------
def outputs_of(deps: FakeDependencies, task: Task) -> list[str]:
    """Keys under outputs/ that belong to the task (what the bucket holds for it)."""
    return sorted(k for k in deps.images.objects if k.startswith("outputs/") and task.task_id in k)


@pytest.mark.parametrize(
    ("end_it", "status"),
    [
        (lambda deps, t: cancel_task(deps, t), TaskStatus.CANCELLED),
        (lambda deps, t: expire_task(deps, t.task_id, by="sweeper"), TaskStatus.EXPIRED),
    ],
    ids=["cancel", "expiry"],
)
def test_an_output_stored_for_a_task_that_ended_meanwhile_is_deleted(
    deps: FakeDependencies,
    task: Task,
    end_it: Callable[[FakeDependencies, Task], object],
    status: TaskStatus,
) -> None:
    # GIVEN the finaliser storing the image WHEN a cancel (an expiry) is written just before
    # the finaliser's own SUCCEEDED write
    deps.tasks.before_next_transition(lambda: end_it(deps, deps.tasks.require(task.task_id)))

    result = callback(deps, task)

    # THEN the task keeps that status and the image it never got is not left in outputs/
    assert result.status is status
    assert outputs_of(deps, task) == []
    assert len(deps.images.deleted) == 1


def test_a_callback_losing_to_a_duplicate_keeps_the_winners_output(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN a second callback finishing the task while the first one stores the same key
    deps.tasks.before_next_transition(lambda: callback(deps, task))

    first = callback(deps, task)

    # THEN the first one loses, and the objects the winner's task names stay
    assert first.status is TaskStatus.SUCCEEDED
    assert outputs_of(deps, task) == [first.outputs[0].key]
    assert deps.images.deleted == []


def test_outputs_stored_before_a_bad_one_are_deleted_when_the_task_fails(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN a provider answering a good image, then bytes that are not one
    def good_then_bad() -> ProviderStatus:
        good = ResultImage(b64=deps.providers.default_image_b64)
        bad = ResultImage(b64=base64.b64encode(b"<html>oops</html>").decode())
        return ProviderStatus(ProviderState.SUCCEEDED, "completed", images=[good, bad])

    deps.providers.script("apimart").statuses = [good_then_bad]

    # WHEN finalised THEN the task fails and the first image is not left behind
    assert fail_code(deps, task) == "provider_bad_image"
    assert outputs_of(deps, task) == []


def test_an_output_that_cannot_be_deleted_is_logged_and_the_task_unharmed(
    deps: FakeDependencies, task: Task
) -> None:
    # GIVEN a bucket refusing deletes and a cancel winning the race
    deps.images.refuse_deletes = True
    deps.tasks.before_next_transition(lambda: cancel_task(deps, deps.tasks.require(task.task_id)))

    # WHEN the callback finishes its work THEN it answers the cancelled task (no error)
    assert callback(deps, task).status is TaskStatus.CANCELLED
    assert len(outputs_of(deps, task)) == 1
