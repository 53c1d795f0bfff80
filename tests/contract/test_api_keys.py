"""ApiKeys contract: ``InMemoryApiKeys`` and ``DynamoDBApiKeyStore`` (moto, template table).

A key identifies its client through ``Authorization: Bearer``; anything else, an unknown or
altered key, or a key an operator disabled is a 401.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore
from image_gateway.auth import hash_api_key
from image_gateway.errors import Unauthorized
from image_gateway.ports import ApiKeys

from tests.fakes import InMemoryApiKeys


@dataclass
class KeysUnderTest:
    """The key store, and how an operator turns one key off in it."""

    keys: ApiKeys
    disable: Callable[[str], None]


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
    if implementation == "memory":
        fake = InMemoryApiKeys()
        return KeysUnderTest(fake, fake.disable)
    dynamodb = request.getfixturevalue("dynamodb")
    table_name = request.getfixturevalue("tasks_table")
    return KeysUnderTest(
        DynamoDBApiKeyStore(dynamodb, table_name), _disable_in_table(dynamodb, table_name)
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
