"""Submit and reject: a request becomes a task (or a recorded refusal), once per Idempotency-Key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from image_gateway.errors import Conflict, InvalidImage, InvalidRequest, Unprocessable
from image_gateway.idempotency import fingerprint
from image_gateway.limits.ports import ClientState, LimitOverrides
from image_gateway.models.request import Operation
from image_gateway.models.task import TaskError, TaskStatus
from image_gateway.service.submit import reject_task, submit_task

from tests.fakes import FakeDependencies
from tests.unit.service.conftest import DepsFactory
from tests.unit.service.support import data_url, drain, fox, png


def test_a_task_gets_the_stacks_deadline_from_its_first_provider_attempt(
    deps: FakeDependencies,
) -> None:
    # GIVEN the default 900 s deadline WHEN a request is submitted
    # THEN until it reaches a provider only the queue's 24 h bound runs, and the sweeper looks
    # at it once after the queue recheck (a crash between writes loses nothing)
    task = submit_task(deps, fox(provider="mountsea-async"), client_id="c").task
    stored = deps.tasks.require(task.task_id)
    assert stored.deadline_at is not None and stored.check_at is not None
    assert stored.deadline_at - stored.created_at == timedelta(seconds=86_400)
    assert stored.check_at - stored.created_at == timedelta(seconds=900)

    # WHEN its provider takes it THEN the 900 s count from that attempt, and the stored task is
    # due at its deadline (a polled provider needs no earlier look)
    drain(deps)
    taken = deps.tasks.require(task.task_id)
    assert taken.submitted_at is not None and taken.deadline_at is not None
    assert taken.deadline_at - taken.submitted_at == timedelta(seconds=900)
    assert taken.check_at == taken.deadline_at


def test_the_deadline_follows_the_time_scale(make_deps: DepsFactory) -> None:
    # GIVEN devstack's time scale (0.02) WHEN a request is handed over THEN 1000 s become 20 s
    deps = make_deps(time_scale=0.02, task_deadline_seconds=1000)

    task = submit_task(deps, fox(provider="mountsea-async"), client_id="c").task
    drain(deps)

    taken = deps.tasks.require(task.task_id)
    assert taken.submitted_at is not None and taken.deadline_at is not None
    assert taken.deadline_at - taken.submitted_at == timedelta(seconds=20)


def test_a_submitted_task_records_who_asked_and_what_size(deps: FakeDependencies) -> None:
    # GIVEN an aspect-ratio request WHEN submitted to apimart
    # THEN the task names the client and the canonical size asked for; once apimart takes it,
    # also apimart's own words for the size
    request = fox(provider="apimart", aspect_ratio="16:9", resolution="2K")

    task = submit_task(deps, request, client_id="client-7").task

    assert (task.client_id, task.operation) == ("client-7", Operation.GENERATE)
    assert (task.size_requested, task.size_sent) == ("16:9@2K", None)
    drain(deps)
    assert deps.tasks.require(task.task_id).size_sent == "16:9 @ 2k"


def test_inline_inputs_are_stored_before_the_provider_sees_them(deps: FakeDependencies) -> None:
    # GIVEN an edit with an inline image WHEN submitted
    # THEN the task keeps an s3:// reference and the provider is handed a presigned URL
    task = submit_task(
        deps, fox(provider="mountsea-async", images=[data_url(png(64, 64))]), client_id="c"
    ).task
    drain(deps)

    assert task.operation is Operation.EDIT
    assert task.request.images == [f"s3://images/inputs/c/{task.task_id}/0.png"]
    (create,) = deps.providers.calls_to("mountsea-async", "create")
    assert create.inputs is not None
    assert create.inputs.images[0].startswith("https://images.memory.invalid/inputs/c/")


def test_the_same_key_and_body_find_the_same_task(deps: FakeDependencies) -> None:
    # GIVEN a request submitted with an Idempotency-Key WHEN it is sent again
    # THEN the first task comes back, marked replayed, and the provider is called once
    first = submit_task(deps, fox(provider="apimart"), client_id="c", idempotency_key="k-1")

    again = submit_task(deps, fox(provider="apimart"), client_id="c", idempotency_key="k-1")
    drain(deps)

    assert (first.replayed, again.replayed) == (False, True)
    assert again.task.task_id == first.task.task_id
    assert len(deps.tasks.all()) == 1
    assert len(deps.providers.calls_to("apimart", "create")) == 1


def test_the_same_key_with_another_body_is_a_conflict(deps: FakeDependencies) -> None:
    # GIVEN a key used for one request WHEN reused for another THEN 409 idempotency_key_reused
    submit_task(deps, fox(provider="apimart"), client_id="c", idempotency_key="k-1")

    with pytest.raises(Conflict) as refused:
        submit_task(deps, fox(provider="pmock"), client_id="c", idempotency_key="k-1")

    assert refused.value.code == "idempotency_key_reused"


def test_the_same_key_for_another_client_is_another_task(deps: FakeDependencies) -> None:
    # GIVEN client a used key k WHEN client b uses k THEN b gets its own task
    a = submit_task(deps, fox(provider="apimart"), client_id="a", idempotency_key="k").task

    b = submit_task(deps, fox(provider="apimart"), client_id="b", idempotency_key="k").task

    assert a.task_id != b.task_id


def test_a_key_whose_task_is_not_written_yet_is_in_progress(deps: FakeDependencies) -> None:
    # GIVEN a first request that claimed the key and has not written its task yet
    # WHEN the same request arrives THEN 400 idempotency_in_progress (retry shortly)
    request = fox(provider="apimart")
    deps.idempotency.claim("c", "k-1", fingerprint(request.model_dump_json()), "tsk_first")

    with pytest.raises(InvalidRequest) as refused:
        submit_task(deps, request, client_id="c", idempotency_key="k-1")

    assert refused.value.code == "idempotency_in_progress"


def test_a_request_refused_at_staging_is_refused_again_on_retry(deps: FakeDependencies) -> None:
    # GIVEN a request with an Idempotency-Key whose inline image is not an image
    request = fox(provider="apimart", images=[data_url(b"not an image")])
    with pytest.raises(InvalidImage):
        submit_task(deps, request, client_id="c", idempotency_key="k-1")

    # WHEN the client retries it THEN it gets the same 400 invalid_image, not "in progress"
    with pytest.raises(InvalidImage):
        submit_task(deps, request, client_id="c", idempotency_key="k-1")


def test_a_refused_request_writes_nothing_and_spends_nothing(deps: FakeDependencies) -> None:
    # GIVEN a request no provider can honour WHEN submitted THEN 422 and no task, no call
    with pytest.raises(Unprocessable):
        submit_task(deps, fox(provider="apimart", background="transparent"), client_id="c")

    assert deps.tasks.all() == []
    assert deps.providers.calls == []


def test_a_rejected_upload_is_recorded_as_a_failed_task_with_its_event(
    deps: FakeDependencies,
) -> None:
    # GIVEN a request an entry point without a caller could not submit
    # WHEN rejected THEN a failed task carries the error, at no cost, with one Failed event
    error = TaskError(code="no_rule", message="no inbox rule matches x.png")

    task = reject_task(deps, fox(), error, client_id="c", task_id="tsk_1", operation=Operation.EDIT)

    assert (task.status, task.error, task.cost_estimate_usd) == (TaskStatus.FAILED, error, 0.0)
    assert task.provider == "none"
    assert deps.events.for_task("tsk_1") == ["Image Task Failed"]


def test_a_rejected_task_names_the_first_provider_it_would_have_used(
    deps: FakeDependencies,
) -> None:
    # GIVEN a refused request with a fallback list WHEN rejected THEN the task names its first
    error = TaskError(code="unsupported_by_provider", message="no masks")

    task = reject_task(
        deps,
        fox(providers=["apimart", "pmock"]),
        error,
        client_id="c",
        task_id="tsk_1",
        operation=Operation.EDIT,
    )

    assert task.provider == "apimart"


def test_the_reservation_decides_on_the_counts_the_submit_read(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a client whose limits item sets its routing WHEN it submits THEN the reservation
    # is given the client's state as the submit read it (test_limits: read once), so that its
    # first try needs no read of the counts of its own
    deps.usage.set_limits("c", routing="price")
    given: list[object] = []
    reserve = deps.usage.reserve

    def spy(*args: object, **kwargs: object) -> object:
        given.append(kwargs.get("seen"))
        return reserve(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(deps.usage, "reserve", spy)

    submission = submit_task(deps, fox(), client_id="c")

    assert submission.started is True
    assert given == [ClientState(LimitOverrides(routing="price"), running=0, queued=0)]
