"""TaskRepository contract: ``InMemoryTaskStore`` and ``DynamoDBTaskStore`` (moto, template table).

The status machine's allowed-transition table over every pair, conditional writes that make
racing finalisers and concurrent updates safe, listing and paging a client's tasks, and what the
sweeper finds due. DynamoDB's item layout is pinned in tests/integration/domain.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from image_gateway.adapters.dynamodb_tasks import DynamoDBTaskStore
from image_gateway.errors import InvalidRequest
from image_gateway.models.parts import AlreadyRecorded, record_part
from image_gateway.models.request import ImageRequest
from image_gateway.models.task import ForbiddenTransition, Task, TaskStatus, utc_now
from image_gateway.ports import TaskExists, TaskNotFound, TaskRepository

from tests.fakes import InMemoryTaskStore

TaskFactory = Callable[..., Task]

Q, SUB, RUN, OK, FAIL, CAN, EXP = (
    TaskStatus.QUEUED,
    TaskStatus.SUBMITTED,
    TaskStatus.RUNNING,
    TaskStatus.SUCCEEDED,
    TaskStatus.FAILED,
    TaskStatus.CANCELLED,
    TaskStatus.EXPIRED,
)
# Same literal table as tests/unit/domain/test_task_status_machine.py: (current, target).
ALLOWED = {
    (Q, SUB), (Q, FAIL), (Q, CAN), (Q, EXP),
    (SUB, RUN), (SUB, OK), (SUB, FAIL), (SUB, CAN), (SUB, EXP),
    (RUN, OK), (RUN, FAIL), (RUN, CAN), (RUN, EXP),
}  # fmt: skip
FORBIDDEN = [p for p in itertools.product(TaskStatus, repeat=2) if p not in ALLOWED]


def pair_id(pair: tuple[TaskStatus, TaskStatus]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.fixture
def task_store(implementation: str, request: pytest.FixtureRequest) -> TaskRepository:
    """An empty task store: the fake, or the DynamoDB adapter on a fresh template table."""
    if implementation == "memory":
        return InMemoryTaskStore()
    return DynamoDBTaskStore(
        request.getfixturevalue("dynamodb"), request.getfixturevalue("tasks_table")
    )


# -- create / get --------------------------------------------------------------------------------
def test_given_a_created_task_when_read_back_then_it_equals_what_was_stored(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    task = make_task(check_at=utc_now())

    task_store.create(task)

    assert task_store.get(task.task_id) == task


def test_given_an_unknown_id_when_read_then_there_is_no_task(task_store: TaskRepository) -> None:
    assert task_store.get("task-missing") is None


def test_given_known_and_unknown_ids_when_read_together_then_only_the_known_come_back(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    first, second = make_task(), make_task()
    task_store.create(first)
    task_store.create(second)

    found = task_store.get_many([first.task_id, "task-missing", second.task_id, first.task_id])

    assert found == {first.task_id: first, second.task_id: second}


def test_given_more_ids_than_one_batch_holds_when_read_together_then_every_task_comes_back(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    tasks = [make_task() for _ in range(130)]  # two BatchGetItem calls of at most 100 keys
    for task in tasks:
        task_store.create(task)

    found = task_store.get_many([t.task_id for t in tasks])

    assert sorted(found) == sorted(t.task_id for t in tasks)


def test_given_no_ids_when_read_together_then_nothing_comes_back(
    task_store: TaskRepository,
) -> None:
    assert task_store.get_many([]) == {}


def test_given_an_unknown_id_when_required_then_it_is_task_not_found(
    task_store: TaskRepository,
) -> None:
    with pytest.raises(TaskNotFound):
        task_store.require("task-missing")


def test_given_an_existing_task_when_created_again_then_task_exists_and_nothing_changes(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    task = make_task()
    task_store.create(task)
    before = task_store.require(task.task_id)

    with pytest.raises(TaskExists):
        task_store.create(task.model_copy(update={"client_id": "client-b"}))

    assert task_store.require(task.task_id) == before


# -- transitions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("pair", sorted(ALLOWED), ids=pair_id)
def test_given_an_allowed_transition_when_applied_then_status_history_and_finish_persist(
    task_store: TaskRepository, make_task: TaskFactory, pair: tuple[TaskStatus, TaskStatus]
) -> None:
    current, target = pair
    task = make_task(status=current)
    task_store.create(task)

    task_store.transition(task.task_id, target, by="poll")

    stored = task_store.require(task.task_id)
    assert stored.status is target
    assert [(c.status, c.by) for c in stored.history] == [(target, "poll")]
    assert (stored.finished_at is not None) is target.terminal
    assert stored.version == task.version + 1


@pytest.mark.parametrize("pair", FORBIDDEN, ids=pair_id)
def test_given_a_forbidden_transition_when_applied_then_it_raises_and_changes_nothing(
    task_store: TaskRepository, make_task: TaskFactory, pair: tuple[TaskStatus, TaskStatus]
) -> None:
    current, target = pair
    task = make_task(status=current)
    task_store.create(task)
    before = task_store.require(task.task_id)

    with pytest.raises(ForbiddenTransition) as caught:
        task_store.transition(task.task_id, target, by="poll")

    assert (caught.value.task.status, caught.value.target) == (current, target)
    assert task_store.require(task.task_id) == before


def test_given_an_unknown_id_when_transitioned_then_it_is_task_not_found(
    task_store: TaskRepository,
) -> None:
    with pytest.raises(TaskNotFound):
        task_store.transition("task-missing", SUB, by="submit")


def test_given_a_change_when_transitioning_then_it_is_saved_with_the_new_status(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    task = make_task(status=RUN)
    task_store.create(task)

    def record(t: Task) -> None:
        t.finalized_by = "callback"

    task_store.transition(task.task_id, OK, by="callback", change=record)

    assert task_store.require(task.task_id).finalized_by == "callback"


def test_given_a_transition_when_applied_then_it_returns_the_task_as_stored(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    task = make_task(status=SUB)
    task_store.create(task)

    returned = task_store.transition(task.task_id, RUN, by="poll")

    assert returned == task_store.require(task.task_id)


def test_given_two_finalisers_racing_when_the_other_wins_then_the_loser_finds_it_terminal(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    # Given a running task, and a poller that has read it (version 0) and is about to finish it
    task = make_task(status=RUN)
    task_store.create(task)
    versions_read_by_poller: list[int] = []

    def poller_change(read: Task) -> None:
        versions_read_by_poller.append(read.version)
        read.finalized_by = "poll"
        if len(versions_read_by_poller) == 1:
            # ... when a callback, having read the same version, finishes it first
            assert task_store.require(task.task_id).version == read.version
            task_store.transition(
                task.task_id, OK, by="callback", change=lambda t: setattr(t, "finalized_by", "cb")
            )

    # Then the poller's conditional write loses, and on re-reading it finds the task terminal
    with pytest.raises(ForbiddenTransition) as caught:
        task_store.transition(task.task_id, OK, by="poll", change=poller_change)

    assert caught.value.task.status is OK
    stored = task_store.require(task.task_id)
    assert [(c.status, c.by) for c in stored.history] == [(OK, "callback")]
    assert stored.finalized_by == "cb"
    assert versions_read_by_poller == [0]


def test_given_a_concurrent_update_when_updating_then_neither_change_is_lost(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    task = make_task(status=RUN)
    task_store.create(task)
    calls: list[int] = []

    def count_poll(t: Task) -> None:
        calls.append(t.version)
        t.polls += 1
        if len(calls) == 1:  # another writer slips in between our read and our write
            task_store.update(task.task_id, lambda other: setattr(other, "bad_responses", 1))

    task_store.update(task.task_id, count_poll)

    stored = task_store.require(task.task_id)
    assert (stored.polls, stored.bad_responses, stored.version) == (1, 1, 2)


def test_given_the_task_as_just_written_when_written_again_from_it_then_it_is_saved(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    task = make_task(status=RUN)
    task_store.create(task)
    written = task_store.update(task.task_id, lambda t: setattr(t, "polls", 1))

    finished = task_store.transition(task.task_id, OK, by="callback", known=written)
    marked = task_store.update(task.task_id, lambda t: setattr(t, "polls", 2), known=finished)

    stored = task_store.require(task.task_id)
    assert stored == marked
    assert (stored.status, stored.polls, stored.version) == (OK, 2, 3)


def test_given_a_stale_known_copy_when_updating_from_it_then_no_other_change_is_lost(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    # Given a copy read before another writer changed the task
    task = make_task(status=RUN)
    task_store.create(task)
    stale = task_store.require(task.task_id)
    task_store.update(task.task_id, lambda t: setattr(t, "bad_responses", 1))

    # When updating from the stale copy, then its write is refused and the task read again
    task_store.update(task.task_id, lambda t: setattr(t, "polls", t.polls + 1), known=stale)

    stored = task_store.require(task.task_id)
    assert (stored.polls, stored.bad_responses, stored.version) == (1, 1, 2)


def test_given_a_known_copy_with_a_stale_status_when_transitioning_then_the_fresh_one_decides(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    # Given a copy read while the task was queued, and the task submitted since
    task = make_task(status=Q)
    task_store.create(task)
    stale = task_store.require(task.task_id)
    task_store.transition(task.task_id, SUB, by="dispatch")
    task_store.transition(task.task_id, RUN, by="poll")

    # When a transition the stale status forbids (queued -> running) is asked from it, the
    # stored status decides: running -> succeeded is allowed
    finished = task_store.transition(task.task_id, OK, by="poll", known=stale)
    assert finished.status is OK
    # and one the stored status forbids is refused as without the copy
    with pytest.raises(ForbiddenTransition):
        task_store.transition(task.task_id, RUN, by="poll", known=finished)
    assert task_store.require(task.task_id) == finished


def test_given_a_status_change_when_updating_then_it_is_refused_and_nothing_changes(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    task = make_task(status=SUB)
    task_store.create(task)
    before = task_store.require(task.task_id)

    with pytest.raises(ValueError, match="transition"):
        task_store.update(task.task_id, lambda t: setattr(t, "status", OK))

    assert task_store.require(task.task_id) == before


# -- listing -------------------------------------------------------------------------------------
@pytest.fixture
def five_tasks_of_client_a(task_store: TaskRepository, make_task: TaskFactory) -> list[str]:
    """Ids of five tasks of client-a, oldest first, and one task of client-b in between."""
    base = utc_now() - timedelta(hours=1)
    ids = []
    for minute in range(5):
        task = make_task(client_id="client-a", created_at=base + timedelta(minutes=minute))
        task_store.create(task)
        ids.append(task.task_id)
    task_store.create(make_task(client_id="client-b", created_at=base + timedelta(seconds=90)))
    return ids


def test_given_a_clients_tasks_when_listed_then_the_newest_comes_first(
    task_store: TaskRepository, five_tasks_of_client_a: list[str]
) -> None:
    page = task_store.list_for_client("client-a", limit=10, cursor=None)

    assert [t.task_id for t in page.tasks] == five_tasks_of_client_a[::-1]
    assert page.next_cursor is None


def test_given_five_tasks_when_paged_by_two_then_three_pages_cover_them_once(
    task_store: TaskRepository, five_tasks_of_client_a: list[str]
) -> None:
    pages = [task_store.list_for_client("client-a", limit=2, cursor=None)]
    while pages[-1].next_cursor is not None and len(pages) < 10:
        pages.append(task_store.list_for_client("client-a", limit=2, cursor=pages[-1].next_cursor))

    assert [[t.task_id for t in page.tasks] for page in pages] == [
        five_tasks_of_client_a[4:2:-1],
        five_tasks_of_client_a[2:0:-1],
        five_tasks_of_client_a[:1],
    ]


def test_given_another_clients_tasks_when_listing_then_they_never_appear(
    task_store: TaskRepository, five_tasks_of_client_a: list[str]
) -> None:
    page = task_store.list_for_client("client-b", limit=10, cursor=None)

    assert [t.client_id for t in page.tasks] == ["client-b"]


def test_given_parts_ending_at_once_when_recorded_on_their_parent_then_each_counts_once(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    # GIVEN a parent of 4 images and its 4 ended parts, each reported twice at the same moment
    parent = make_task(status=RUN, request=ImageRequest(prompt="a fox", n=4))
    task_store.create(parent)
    parts = [
        make_task(status=TaskStatus.SUCCEEDED, parent_id=parent.task_id, part_index=i)
        for i in range(4)
    ]
    start = threading.Barrier(8)
    duplicates: list[str] = []

    def report(part: Task) -> None:
        start.wait()
        for _ in range(10):  # the conditional write's losers read again and retry
            try:
                task_store.update(parent.task_id, lambda t: record_part(t, part))
                return
            except AlreadyRecorded:
                duplicates.append(part.task_id)
                return
            except RuntimeError:  # too much contention for one call's attempts
                continue

    threads = [threading.Thread(target=report, args=(p,)) for p in parts + parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN every part is on the parent once, in order, and each second report was refused
    stored = task_store.require(parent.task_id)
    assert [e.task_id for e in stored.parts] == [p.task_id for p in parts]
    assert sorted(duplicates) == sorted(p.task_id for p in parts)


def test_given_a_task_of_n_images_when_listing_then_its_parts_are_not_listed_but_can_be_read(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    parent = make_task(client_id="client-n", request=ImageRequest(prompt="a fox", n=2))
    task_store.create(parent)
    for index in range(2):
        part = make_task(client_id="client-n", parent_id=parent.task_id, part_index=index)
        task_store.create(part)

    page = task_store.list_for_client("client-n", limit=10, cursor=None)

    assert [t.task_id for t in page.tasks] == [parent.task_id]
    assert task_store.require(part.task_id).parent_id == parent.task_id


def test_given_a_client_without_tasks_when_listing_then_the_page_is_empty_and_final(
    task_store: TaskRepository, five_tasks_of_client_a: list[str]
) -> None:
    page = task_store.list_for_client("client-c", limit=10, cursor=None)

    assert (page.tasks, page.next_cursor) == ([], None)


def test_given_a_cursor_of_another_client_when_listing_then_it_is_a_bad_cursor(
    task_store: TaskRepository, five_tasks_of_client_a: list[str]
) -> None:
    cursor = task_store.list_for_client("client-a", limit=2, cursor=None).next_cursor
    assert cursor is not None

    with pytest.raises(InvalidRequest) as caught:
        task_store.list_for_client("client-b", limit=2, cursor=cursor)

    assert caught.value.code == "bad_cursor"


@pytest.mark.parametrize(
    "cursor",
    ["not a cursor!", "abc", cursor_of([1, 2]), cursor_of("CLIENT#client-a")],
    ids=["punctuation", "bad-padding", "json-list", "json-string"],
)
def test_given_a_garbage_cursor_when_listing_then_it_is_a_bad_cursor(
    task_store: TaskRepository, cursor: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        task_store.list_for_client("client-a", limit=2, cursor=cursor)

    assert caught.value.code == "bad_cursor"


@pytest.mark.parametrize(
    "cursor",
    [
        cursor_of({"gsi1pk": "CLIENT#client-a"}),
        cursor_of({"gsi1pk": None}),
        cursor_of({"gsi1pk": {"S": "CLIENT#client-a"}}),
    ],
    ids=["gsi1pk-a-string", "gsi1pk-null", "missing-key-attributes"],
)
def test_given_a_well_formed_but_forged_cursor_when_listing_then_it_is_a_bad_cursor(
    task_store: TaskRepository, five_tasks_of_client_a: list[str], cursor: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        task_store.list_for_client("client-a", limit=2, cursor=cursor)

    assert caught.value.code == "bad_cursor"


# -- what the sweeper sees ----------------------------------------------------------------------
def test_given_an_open_task_whose_check_time_passed_when_sweeping_then_it_is_due(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    now = utc_now()
    task = make_task(status=SUB, check_at=now - timedelta(minutes=1))
    task_store.create(task)

    assert task.task_id in set(task_store.tasks_due(now))


def test_given_an_open_task_whose_check_time_is_ahead_when_sweeping_then_it_is_not_due(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    now = utc_now()
    task = make_task(status=SUB, check_at=now + timedelta(minutes=1))
    task_store.create(task)

    assert task.task_id not in set(task_store.tasks_due(now))


def test_given_an_open_task_without_a_check_time_when_sweeping_then_it_is_not_due(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    task = make_task(status=Q, check_at=None)
    task_store.create(task)

    assert task.task_id not in set(task_store.tasks_due(utc_now() + timedelta(days=1)))


def test_given_a_finished_task_whose_event_is_not_out_when_sweeping_then_it_is_due(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    task = make_task(status=RUN, check_at=utc_now() + timedelta(hours=1))
    task_store.create(task)

    task_store.transition(task.task_id, OK, by="poll")

    assert task.task_id in set(task_store.tasks_due(utc_now() + timedelta(minutes=1)))


def test_given_a_finished_task_whose_event_is_published_when_sweeping_then_it_is_not_due(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    task = make_task(status=RUN, check_at=utc_now() - timedelta(hours=1))
    task_store.create(task)
    task_store.transition(task.task_id, OK, by="poll")

    task_store.update(task.task_id, lambda t: t.events_published.append(OK))

    assert task.task_id not in set(task_store.tasks_due(utc_now() + timedelta(minutes=1)))


def test_given_a_stored_terminal_task_with_its_event_published_when_sweeping_then_not_due(
    task_store: TaskRepository, make_task: TaskFactory
) -> None:
    now = utc_now()
    published = make_task(status=FAIL, check_at=now - timedelta(minutes=1), events_published=[FAIL])
    unpublished = make_task(status=FAIL, check_at=now - timedelta(minutes=1))
    task_store.create(published)
    task_store.create(unpublished)

    assert set(task_store.tasks_due(now)) == {unpublished.task_id}
