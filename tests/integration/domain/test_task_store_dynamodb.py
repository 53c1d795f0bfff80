"""DynamoDBTaskStore's item layout on moto, with the table from template.yaml.

What every task store does (the status machine, conditional writes, listing, what is due) is
the contract in tests/contract/test_task_repository.py; this pins what only DynamoDB has: the
item's attributes, the ByClientKeys index keys, the TTL attribute and the sparse sweeper index.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from image_gateway.adapters.dynamodb_due import OPEN_SHARDS
from image_gateway.adapters.dynamodb_tasks import TASK_RETENTION
from image_gateway.adapters.dynamodb_tasks import DynamoDBTaskStore as TaskStore
from image_gateway.models.task import ForbiddenTransition, Task, TaskStatus, utc_now

TaskFactory = Callable[..., Task]
ReadRaw = Callable[[str], dict[str, Any]]

SPARSE_INDEX_ATTRIBUTES = {"open_pk", "check_ts"}


def test_given_an_open_task_when_created_then_the_item_has_the_documented_attributes(
    task_store: TaskStore, make_task: TaskFactory, read_raw: ReadRaw
) -> None:
    task = make_task(status=TaskStatus.SUBMITTED, check_at=utc_now())

    task_store.create(task)

    item = read_raw(task.task_id)
    assert set(item) == {
        "pk", "sk", "task_id", "client_id", "status", "version", "doc",
        "gsi1pk", "gsi1sk", "expires_at", "open_pk", "check_ts",
    }  # fmt: skip
    assert (item["pk"], item["sk"]) == ({"S": f"TASK#{task.task_id}"}, {"S": "TASK"})
    assert (item["status"], item["version"]) == ({"S": "submitted"}, {"N": "0"})


def test_given_a_task_when_created_then_its_by_client_keys_sort_by_creation_time(
    task_store: TaskStore, make_task: TaskFactory, read_raw: ReadRaw
) -> None:
    task = make_task(client_id="client-a")

    task_store.create(task)

    item = read_raw(task.task_id)
    assert (item["gsi1pk"], item["gsi1sk"]) == (
        {"S": "CLIENT#client-a"},
        {"S": f"{task.created_at.isoformat()}#{task.task_id}"},
    )


def test_given_a_task_when_created_then_the_templates_ttl_attribute_expires_it_after_retention(
    task_store: TaskStore,
    make_task: TaskFactory,
    read_raw: ReadRaw,
    tasks_table_properties: dict[str, Any],
) -> None:
    ttl_attribute = tasks_table_properties["TimeToLiveSpecification"]["AttributeName"]
    task = make_task()

    task_store.create(task)

    expected = int((task.created_at + TASK_RETENTION).timestamp())
    assert read_raw(task.task_id)[ttl_attribute] == {"N": str(expected)}


def test_given_an_open_task_with_a_check_time_when_created_then_the_sweeper_index_has_it(
    task_store: TaskStore, make_task: TaskFactory, read_raw: ReadRaw
) -> None:
    check_at = utc_now() + timedelta(minutes=5)
    task = make_task(status=TaskStatus.SUBMITTED, check_at=check_at)

    task_store.create(task)

    item = read_raw(task.task_id)
    assert item["open_pk"]["S"] in {f"OPEN#{shard}" for shard in range(OPEN_SHARDS)}
    assert item["check_ts"] == {"N": str(int(check_at.timestamp()))}


def test_given_a_task_without_a_check_time_when_created_then_the_sweeper_index_lacks_it(
    task_store: TaskStore, make_task: TaskFactory, read_raw: ReadRaw
) -> None:
    task = make_task(status=TaskStatus.QUEUED, check_at=None)

    task_store.create(task)

    assert SPARSE_INDEX_ATTRIBUTES.isdisjoint(read_raw(task.task_id))


def test_given_a_finished_task_when_its_event_is_published_then_it_leaves_the_sweeper_index(
    task_store: TaskStore, make_task: TaskFactory, read_raw: ReadRaw
) -> None:
    task = make_task(status=TaskStatus.RUNNING, check_at=utc_now())
    task_store.create(task)
    task_store.transition(task.task_id, TaskStatus.SUCCEEDED, by="poll")
    assert set(read_raw(task.task_id)) >= SPARSE_INDEX_ATTRIBUTES  # until its event is out

    task_store.update(task.task_id, lambda t: t.events_published.append(TaskStatus.SUCCEEDED))

    assert SPARSE_INDEX_ATTRIBUTES.isdisjoint(read_raw(task.task_id))


def test_given_a_forbidden_transition_when_refused_then_the_raw_item_is_untouched(
    task_store: TaskStore, make_task: TaskFactory, read_raw: ReadRaw
) -> None:
    task = make_task(status=TaskStatus.FAILED, check_at=utc_now())
    task_store.create(task)
    before = read_raw(task.task_id)

    with pytest.raises(ForbiddenTransition):
        task_store.transition(task.task_id, TaskStatus.SUCCEEDED, by="callback")

    assert read_raw(task.task_id) == before


def _calls(dynamodb: Any) -> list[str]:
    """The names of the requests ``dynamodb`` makes from now on."""
    made: list[str] = []

    def record(model: Any, **_: Any) -> None:
        made.append(model.name)

    dynamodb.meta.events.register("before-call.dynamodb.*", record)
    return made


def test_given_the_task_as_last_written_when_written_from_it_then_it_is_not_read_again(
    task_store: TaskStore, make_task: TaskFactory, dynamodb: Any
) -> None:
    task = make_task(status=TaskStatus.RUNNING)
    task_store.create(task)
    written = task_store.update(task.task_id, lambda t: setattr(t, "polls", 1))
    made = _calls(dynamodb)

    task_store.transition(task.task_id, TaskStatus.SUCCEEDED, by="callback", known=written)

    assert made == ["PutItem"]


def test_given_a_stale_copy_when_written_from_it_then_the_refused_write_is_followed_by_a_read(
    task_store: TaskStore, make_task: TaskFactory, dynamodb: Any
) -> None:
    task = make_task(status=TaskStatus.RUNNING)
    task_store.create(task)
    stale = task_store.require(task.task_id)
    task_store.update(task.task_id, lambda t: setattr(t, "bad_responses", 1))
    made = _calls(dynamodb)

    task_store.update(task.task_id, lambda t: setattr(t, "polls", 1), known=stale)

    assert made == ["PutItem", "GetItem", "PutItem"]


def test_given_a_sweep_when_it_reads_what_is_due_then_every_shard_is_queried_at_once(
    task_store: TaskStore, make_task: TaskFactory, dynamodb: Any
) -> None:
    # GIVEN a task due, and a hook that holds each Query until all the shards' have started
    # (one after another, the first would wait alone and the barrier break after 5 s)
    task = make_task(status=TaskStatus.SUBMITTED, check_at=utc_now() - timedelta(minutes=1))
    task_store.create(task)
    started = threading.Barrier(OPEN_SHARDS, timeout=5)
    queried: list[str] = []

    def together(params: dict[str, Any], **_: Any) -> None:
        queried.append(params["ExpressionAttributeValues"][":p"]["S"])
        started.wait()

    dynamodb.meta.events.register("provide-client-params.dynamodb.Query", together)
    try:
        # WHEN the sweeper asks what is due
        due = list(task_store.tasks_due(utc_now()))
    finally:
        dynamodb.meta.events.unregister("provide-client-params.dynamodb.Query", together)

    # THEN the sixteen queries ran at once (none broke the barrier) and found the task
    assert sorted(queried) == sorted(f"OPEN#{shard}" for shard in range(OPEN_SHARDS))
    assert not started.broken
    assert due == [task.task_id]
