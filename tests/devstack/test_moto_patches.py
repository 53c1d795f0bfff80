"""devstack's patch of moto's TransactWriteItems: all or nothing, without copying the table."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from devstack import moto_patches


def _create(name: str, **more: Any) -> Any:
    """A pk/sk table (``more``: its indexes) on in-process moto, patched; its client."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    attributes = {"pk", "sk", *more.pop("index_attributes", ())}
    ddb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attributes],
        BillingMode="PAY_PER_REQUEST",
        **more,
    )
    return ddb


@pytest.fixture
def table() -> Iterator[tuple[Any, str]]:
    """A pk/sk table on in-process moto with the patch applied."""
    moto_patches.apply()
    with mock_aws():
        yield _create("t"), "t"


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "x"}}


def _items(ddb: Any, name: str) -> dict[str, dict[str, Any]]:
    return {i["pk"]["S"]: i for i in ddb.scan(TableName=name)["Items"]}


def test_a_transaction_whose_condition_fails_leaves_every_item_as_it_was(
    table: tuple[Any, str],
) -> None:
    ddb, name = table
    ddb.put_item(TableName=name, Item={**_key("a"), "n": {"N": "1"}})
    before = _items(ddb, name)

    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": name,
                        "Key": _key("a"),
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {"Put": {"TableName": name, "Item": {**_key("new"), "n": {"N": "9"}}}},
                {
                    "Update": {
                        "TableName": name,
                        "Key": _key("absent"),
                        "UpdateExpression": "SET n = :one",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )

    reasons = [r["Code"] for r in refused.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert _items(ddb, name) == before  # a's update undone, the new item removed


def test_a_transaction_that_passes_writes_every_item(table: tuple[Any, str]) -> None:
    ddb, name = table
    ddb.put_item(TableName=name, Item={**_key("a"), "n": {"N": "1"}})

    ddb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": name,
                    "Key": _key("a"),
                    "UpdateExpression": "ADD n :one",
                    "ConditionExpression": "n = :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
            {"Put": {"TableName": name, "Item": {**_key("b"), "n": {"N": "5"}}}},
            {"Delete": {"TableName": name, "Key": _key("gone")}},
        ]
    )

    items = _items(ddb, name)
    assert (items["a"]["n"], items["b"]["n"]) == ({"N": "2"}, {"N": "5"})


def test_the_table_is_not_copied() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    moto_patches.apply()
    table = Table("x", account_id="123456789012", region="us-east-1", schema=[], attr=[])

    assert models.copy.deepcopy(table) is table
    assert models.copy.deepcopy({"a": [1]}) == {"a": [1]}


HOSTS = [
    "dynamodb.us-east-1.amazonaws.com",
    "sqs.us-east-1.amazonaws.com",
    "s3.amazonaws.com",
    "bucket.s3.amazonaws.com",
    "events.us-east-1.amazonaws.com",
    "states.us-east-1.amazonaws.com",
    "ssm.us-east-1.amazonaws.com",
    "secretsmanager.us-east-1.amazonaws.com",
    "kms.us-east-1.amazonaws.com",
    "sts.amazonaws.com",
    "iam.amazonaws.com",
    "monitoring.us-east-1.amazonaws.com",
]


def test_the_server_finds_each_hosts_backend_as_moto_does_and_only_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    # Given moto's own answers for the hosts devstack's clients call
    app = DomainDispatcherApplication(create_backend_app)
    unpatched = {host: app.get_backend_for_host(host) for host in HOSTS}
    assert None not in unpatched.values(), unpatched
    # When the server patch is applied and each host is asked once
    moto_patches.apply_server()
    first = {host: app.get_backend_for_host(host) for host in HOSTS}
    # Then the answers are moto's
    assert first == unpatched

    # And later requests no longer list moto's package folder (the per-request cost)
    def listing() -> list[str]:
        raise AssertionError("moto's folder listed again")

    monkeypatch.setattr(backends, "list_of_moto_modules", listing)
    assert {host: app.get_backend_for_host(host) for host in HOSTS} == unpatched
    assert app.get_backend_for_host(None) is None


@pytest.fixture
def partitions() -> Iterator[tuple[Any, str]]:
    """A pk/sk table with a GSI on in-process moto (patched), 3 partitions of 30 items each."""
    moto_patches.apply()
    with mock_aws():
        ddb = _create(
            "p",
            index_attributes=("g", "gs"),
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-g",
                    "KeySchema": [
                        {"AttributeName": "g", "KeyType": "HASH"},
                        {"AttributeName": "gs", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        for part in ("A", "B", "C"):
            for i in reversed(range(30)):  # stored out of order: the answer must be sorted
                ddb.put_item(
                    TableName="p",
                    Item={
                        "pk": {"S": f"QUEUE#{part}"},
                        "sk": {"S": f"{i:04d}"},
                        "g": {"S": f"G#{i % 2}"},
                        "gs": {"S": f"{part}{i:04d}"},
                    },
                )
        yield ddb, "p"


def _sks(answer: dict[str, Any]) -> list[str]:
    return [i["sk"]["S"] for i in answer["Items"]]


def test_a_partition_query_answers_as_dynamodb_does(partitions: tuple[Any, str]) -> None:
    ddb, name = partitions
    key = "pk = :p"
    values = {":p": {"S": "QUEUE#B"}}
    # the whole partition, in order; and newest first
    assert _sks(
        ddb.query(TableName=name, KeyConditionExpression=key, ExpressionAttributeValues=values)
    ) == [f"{i:04d}" for i in range(30)]
    backwards = ddb.query(
        TableName=name,
        KeyConditionExpression=key,
        ExpressionAttributeValues=values,
        ScanIndexForward=False,
        Limit=3,
    )
    assert _sks(backwards) == ["0029", "0028", "0027"]
    # a sort key condition, paged by Limit and ExclusiveStartKey
    ranged = {**values, ":lo": {"S": "0010"}, ":hi": {"S": "0019"}}
    pages: list[str] = []
    start: dict[str, Any] | None = None
    while True:
        extra = {"ExclusiveStartKey": start} if start else {}
        page = ddb.query(
            TableName=name,
            KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues=ranged,
            Limit=4,
            **extra,
        )
        pages += _sks(page)
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert pages == [f"{i:04d}" for i in range(10, 20)]
    # a partition with nothing in it
    empty = {":p": {"S": "QUEUE#none"}}
    assert (
        ddb.query(TableName=name, KeyConditionExpression=key, ExpressionAttributeValues=empty)[
            "Items"
        ]
        == []
    )


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many items each ``Table.all_items()`` call (of the patched moto) hands a query."""
    from moto.dynamodb.models.table import Table

    seen: list[int] = []
    patched = Table.all_items

    def counting(self: Any) -> Any:
        found = patched(self)
        seen.append(len(found))
        return found

    monkeypatch.setattr(Table, "all_items", counting)
    return seen


def test_a_partition_query_reads_only_its_partition(
    partitions: tuple[Any, str], reads: list[int]
) -> None:
    ddb, name = partitions
    ddb.query(
        TableName=name,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "QUEUE#A"}},
    )
    assert reads == [30]  # the partition's 30 items, not the table's 90


def test_an_index_query_still_finds_items_of_every_partition(partitions: tuple[Any, str]) -> None:
    ddb, name = partitions
    answer = ddb.query(
        TableName=name,
        IndexName="by-g",
        KeyConditionExpression="g = :g AND begins_with(gs, :c)",
        ExpressionAttributeValues={":g": {"S": "G#0"}, ":c": {"S": "C"}},
    )
    assert [i["gs"]["S"] for i in answer["Items"]] == [f"C{i:04d}" for i in range(0, 30, 2)]


def test_an_index_query_reads_only_the_items_of_its_key(
    partitions: tuple[Any, str], reads: list[int]
) -> None:
    ddb, name = partitions
    # an item without the index's attributes is not in the index
    ddb.put_item(TableName=name, Item={"pk": {"S": "QUEUE#D"}, "sk": {"S": "0000"}})
    # nor is one whose key attribute has another type
    ddb.put_item(
        TableName=name,
        Item={"pk": {"S": "QUEUE#E"}, "sk": {"S": "0"}, "g": {"N": "1"}, "gs": {"S": "E"}},
    )

    def newest_first(key: str, limit: int, **start: Any) -> dict[str, Any]:
        answer: dict[str, Any] = ddb.query(
            TableName=name,
            IndexName="by-g",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": key}},
            ScanIndexForward=False,
            Limit=limit,
            **start,
        )
        return answer

    answer = newest_first("G#1", 5)
    assert reads[0] == 45  # G#1's 45 items of the table's 92
    assert [i["gs"]["S"] for i in answer["Items"]] == ["C0029", "C0027", "C0025", "C0023", "C0021"]
    # paging on from there, to the end, finds each of the 45 once, in order
    start = answer["LastEvaluatedKey"]
    rest: list[str] = []
    while start:
        page = newest_first("G#1", 7, ExclusiveStartKey=start)
        rest += [i["gs"]["S"] for i in page["Items"]]
        start = page.get("LastEvaluatedKey")
    everything = sorted(f"{p}{i:04d}" for p in "ABC" for i in range(1, 30, 2))
    assert ["C0029", "C0027", "C0025", "C0023", "C0021", *rest] == everything[::-1]
    # a key nothing has
    assert newest_first("G#9", 10)["Items"] == []


def test_read_modify_writes_racing_on_one_item_lose_no_update(table: tuple[Any, str]) -> None:
    # Given the patch (tests/conftest.py applies it) and 8 threads that each append to one
    # item's list, conditional on the version they read (the task store's update), 40 times
    # over: without the patch, one round in ten to fifty lost an append (moto 5.2.5, this machine)
    moto_patches.apply_atomic_requests()
    ddb, name = table
    key = _key("raced")

    def append(me: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        while True:
            version = ddb.get_item(TableName=name, Key=key, ConsistentRead=True)["Item"]["v"]
            try:
                ddb.update_item(
                    TableName=name,
                    Key=key,
                    UpdateExpression="SET v = :next, #l = list_append(#l, :me)",
                    ConditionExpression="v = :seen",
                    ExpressionAttributeNames={"#l": "appended"},
                    ExpressionAttributeValues={
                        ":seen": version,
                        ":next": {"N": str(int(version["N"]) + 1)},
                        ":me": {"L": [{"N": str(me)}]},
                    },
                )
                return
            except ClientError:
                continue  # another thread's write came first: read again

    lost = 0
    for _ in range(40):
        ddb.put_item(TableName=name, Item={**key, "v": {"N": "0"}, "appended": {"L": []}})
        barrier = threading.Barrier(8)
        threads = [threading.Thread(target=append, args=(i, barrier)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        item = ddb.get_item(TableName=name, Key=key)["Item"]
        lost += 8 - len(item["appended"]["L"])

    # Then every append is there, as DynamoDB (one request at a time per item) keeps them
    assert lost == 0
