"""ApiKeys contract: ``InMemoryApiKeys`` and ``DynamoDBApiKeyStore`` (moto, template table).

A key identifies its client through ``Authorization: Bearer``; anything else, an unknown or
altered key, or a key an operator disabled is a 401.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore
from image_gateway.auth import hash_api_key
from image_gateway.errors import Conflict, NotFound, Unauthorized
from image_gateway.ports import ApiKeys

from tests.fakes import InMemoryApiKeys


class Clock:
    """UTC now, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class KeysUnderTest:
    """The key store, how an operator turns one key off in it, and its clock."""

    keys: Any  # ApiKeys, with the operator's methods (list_keys, set_disabled, rotate, get)
    disable: Callable[[str], None]
    clock: Clock


def _disable_in_table(dynamodb: Any, table_name: str) -> Callable[[str], None]:
    def disable(api_key: str) -> None:
        # What an operator does: there is no API for it, only the item's `disabled` flag.
        dynamodb.update_item(
            TableName=table_name,
            Key={"pk": {"S": f"APIKEY#{hash_api_key(api_key)}"}, "sk": {"S": "APIKEY"}},
            UpdateExpression="SET disabled = :t",
            ExpressionAttributeValues={":t": {"BOOL": True}},
            ConditionExpression="attribute_exists(pk)",
        )

    return disable


@pytest.fixture
def under_test(implementation: str, request: pytest.FixtureRequest) -> KeysUnderTest:
    """An empty key store: the fake, or the DynamoDB adapter on a fresh template table."""
    clock = Clock()
    if implementation == "memory":
        fake = InMemoryApiKeys(clock)
        return KeysUnderTest(fake, fake.disable, clock)
    dynamodb = request.getfixturevalue("dynamodb")
    table_name = request.getfixturevalue("tasks_table")
    return KeysUnderTest(
        DynamoDBApiKeyStore(dynamodb, table_name, clock=clock),
        _disable_in_table(dynamodb, table_name),
        clock,
    )


@pytest.fixture
def keys(under_test: KeysUnderTest) -> ApiKeys:
    return under_test.keys


def test_given_a_new_key_when_sent_as_bearer_then_it_identifies_its_client(keys: ApiKeys) -> None:
    api_key = keys.create_key("client-a")

    assert keys.client_for(f"Bearer {api_key}") == "client-a"


def test_given_the_scheme_in_lower_case_when_authenticating_then_the_key_is_accepted(
    keys: ApiKeys,
) -> None:
    api_key = keys.create_key("client-a")

    assert keys.client_for(f"bearer {api_key}") == "client-a"


def test_given_keys_of_two_clients_when_authenticating_then_each_maps_to_its_client(
    keys: ApiKeys,
) -> None:
    key_a, key_b = keys.create_key("client-a"), keys.create_key("client-b")

    assert (keys.client_for(f"Bearer {key_a}"), keys.client_for(f"Bearer {key_b}")) == (
        "client-a",
        "client-b",
    )


def test_given_two_keys_of_one_client_when_created_then_they_differ_and_both_work(
    keys: ApiKeys,
) -> None:
    first, second = keys.create_key("client-a"), keys.create_key("client-a", name="ci")

    assert first != second
    assert {keys.client_for(f"Bearer {first}"), keys.client_for(f"Bearer {second}")} == {"client-a"}


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token itg_abc", "itg_abc"],
    ids=["missing", "empty", "scheme-only", "scheme-and-space", "basic", "token", "no-scheme"],
)
def test_given_no_bearer_credentials_when_authenticating_then_it_is_unauthorized(
    keys: ApiKeys, authorization: str | None
) -> None:
    keys.create_key("client-a")

    with pytest.raises(Unauthorized):
        keys.client_for(authorization)


@pytest.mark.parametrize(
    "api_key", ["itg_never-issued-key", "sk-live-not-ours"], ids=["unknown", "foreign-prefix"]
)
def test_given_an_unknown_key_when_authenticating_then_it_is_unauthorized(
    keys: ApiKeys, api_key: str
) -> None:
    keys.create_key("client-a")

    with pytest.raises(Unauthorized):
        keys.client_for(f"Bearer {api_key}")


def test_given_a_key_with_one_character_changed_when_authenticating_then_it_is_unauthorized(
    keys: ApiKeys,
) -> None:
    api_key = keys.create_key("client-a")
    altered = api_key[:-1] + ("A" if api_key[-1] != "A" else "B")

    with pytest.raises(Unauthorized):
        keys.client_for(f"Bearer {altered}")


def test_given_a_disabled_key_when_authenticating_then_it_is_unauthorized(
    under_test: KeysUnderTest,
) -> None:
    api_key = under_test.keys.create_key("client-a")

    under_test.disable(api_key)

    with pytest.raises(Unauthorized):
        under_test.keys.client_for(f"Bearer {api_key}")


def test_given_one_disabled_key_when_the_clients_other_key_is_used_then_it_still_works(
    under_test: KeysUnderTest,
) -> None:
    disabled, other = under_test.keys.create_key("client-a"), under_test.keys.create_key("client-a")

    under_test.disable(disabled)

    assert under_test.keys.client_for(f"Bearer {other}") == "client-a"


# -- the operator's side: list, disable/enable, rotate, last used ---------------------------------
def test_given_keys_of_two_clients_when_one_clients_are_listed_then_only_its_show_without_secret(
    under_test: KeysUnderTest,
) -> None:
    secret = under_test.keys.create_key("client-a", name="ci")
    under_test.keys.create_key("client-b")

    listed = under_test.keys.list_keys("client-a")

    assert [(r.client_id, r.name, r.key_id.startswith("key_")) for r in listed] == [
        ("client-a", "ci", True)
    ]
    assert secret not in json.dumps([r.__dict__ for r in listed])


def test_given_keys_of_two_clients_when_all_are_listed_then_both_show(
    under_test: KeysUnderTest,
) -> None:
    under_test.keys.create_key("client-b")
    under_test.keys.create_key("client-a")

    assert [r.client_id for r in under_test.keys.list_keys()] == ["client-a", "client-b"]


def test_given_a_key_disabled_by_id_when_used_then_401_and_enabled_again_it_works(
    under_test: KeysUnderTest,
) -> None:
    api_key = under_test.keys.create_key("client-a")
    key_id = under_test.keys.list_keys("client-a")[0].key_id

    under_test.keys.set_disabled(key_id, True)
    with pytest.raises(Unauthorized):
        under_test.keys.client_for(f"Bearer {api_key}")
    under_test.keys.set_disabled(key_id, False)

    assert under_test.keys.client_for(f"Bearer {api_key}") == "client-a"


def test_given_an_unknown_key_id_when_disabled_then_not_found(under_test: KeysUnderTest) -> None:
    with pytest.raises(NotFound):
        under_test.keys.set_disabled("key_0000000000000000", True)


@pytest.mark.parametrize(
    "key_id", ["key_", "key_0", "", "0123456789abcdef", "key_ABCDEF0123456789"]
)
def test_given_keys_when_an_id_that_is_not_a_whole_key_id_is_asked_then_not_found(
    under_test: KeysUnderTest, key_id: str
) -> None:
    # GIVEN keys (a prefix of any key's id would match its stored hash)
    under_test.keys.create_key("client-a")
    under_test.keys.create_key("client-b")
    # THEN a partial or malformed id finds none of them
    with pytest.raises(NotFound):
        under_test.keys.get(key_id)


def test_given_keys_when_each_is_asked_by_id_then_its_own_record_answers(
    under_test: KeysUnderTest,
) -> None:
    for client in ("client-a", "client-b", "client-c"):
        under_test.keys.create_key(client)
    for record in under_test.keys.list_keys():
        assert under_test.keys.get(record.key_id) == record


def test_given_a_rotated_key_when_the_grace_passes_then_the_old_stops_and_the_new_works(
    under_test: KeysUnderTest,
) -> None:
    old = under_test.keys.create_key("client-a", name="ci")
    old_id = under_test.keys.list_keys("client-a")[0].key_id

    new, record, old_record = under_test.keys.rotate(old_id, grace=timedelta(hours=24))
    still_works = under_test.keys.client_for(f"Bearer {old}")
    under_test.clock.now += timedelta(hours=24)

    assert (still_works, record.client_id, record.name) == ("client-a", "client-a", "ci")
    assert old_record.disabled_after == (under_test.clock.now).isoformat()
    assert under_test.keys.client_for(f"Bearer {new}") == "client-a"
    with pytest.raises(Unauthorized):
        under_test.keys.client_for(f"Bearer {old}")


def test_given_a_disabled_key_when_rotated_then_conflict(under_test: KeysUnderTest) -> None:
    under_test.keys.create_key("client-a")
    key_id = under_test.keys.list_keys("client-a")[0].key_id
    under_test.keys.set_disabled(key_id, True)

    with pytest.raises(Conflict):
        under_test.keys.rotate(key_id, grace=timedelta(0))


def test_given_a_key_used_twice_within_an_hour_then_last_used_is_the_first_use(
    under_test: KeysUnderTest,
) -> None:
    api_key = under_test.keys.create_key("client-a")
    first_use = under_test.clock.now

    under_test.keys.client_for(f"Bearer {api_key}")
    under_test.clock.now += timedelta(minutes=59)
    under_test.keys.client_for(f"Bearer {api_key}")

    assert under_test.keys.list_keys()[0].last_used_at == first_use.isoformat()


def test_given_a_key_used_again_after_an_hour_then_last_used_moves(
    under_test: KeysUnderTest,
) -> None:
    api_key = under_test.keys.create_key("client-a")
    under_test.keys.client_for(f"Bearer {api_key}")

    under_test.clock.now += timedelta(hours=1, seconds=1)
    under_test.keys.client_for(f"Bearer {api_key}")

    assert under_test.keys.list_keys()[0].last_used_at == under_test.clock.now.isoformat()
