"""ApiKeyStore against moto DynamoDB: keys stored hashed, Bearer lookups (auth.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore as ApiKeyStore
from image_gateway.errors import Unauthorized


@pytest.fixture
def keys(dynamodb: Any, table_name: str) -> ApiKeyStore:
    return ApiKeyStore(dynamodb, table_name)


def test_given_a_new_key_when_sent_as_bearer_then_it_identifies_its_client(
    keys: ApiKeyStore,
) -> None:
    api_key = keys.create_key("client-a")

    assert keys.client_for(f"Bearer {api_key}") == "client-a"


def test_given_the_scheme_in_lower_case_when_authenticating_then_the_key_is_accepted(
    keys: ApiKeyStore,
) -> None:
    api_key = keys.create_key("client-a")

    assert keys.client_for(f"bearer {api_key}") == "client-a"


def test_given_keys_of_two_clients_when_authenticating_then_each_maps_to_its_client(
    keys: ApiKeyStore,
) -> None:
    key_a, key_b = keys.create_key("client-a"), keys.create_key("client-b")

    assert (keys.client_for(f"Bearer {key_a}"), keys.client_for(f"Bearer {key_b}")) == (
        "client-a",
        "client-b",
    )


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token itg_abc", "itg_abc"],
    ids=["missing", "empty", "scheme-only", "scheme-and-space", "basic", "token", "no-scheme"],
)
def test_given_no_bearer_credentials_when_authenticating_then_it_is_unauthorized(
    keys: ApiKeyStore, authorization: str | None
) -> None:
    keys.create_key("client-a")

    with pytest.raises(Unauthorized):
        keys.client_for(authorization)


@pytest.mark.parametrize(
    "api_key", ["itg_never-issued-key", "sk-live-not-ours"], ids=["unknown", "foreign-prefix"]
)
def test_given_an_unknown_key_when_authenticating_then_it_is_unauthorized(
    keys: ApiKeyStore, api_key: str
) -> None:
    keys.create_key("client-a")

    with pytest.raises(Unauthorized):
        keys.client_for(f"Bearer {api_key}")


def test_given_a_key_with_one_character_changed_when_authenticating_then_it_is_unauthorized(
    keys: ApiKeyStore,
) -> None:
    api_key = keys.create_key("client-a")
    altered = api_key[:-1] + ("A" if api_key[-1] != "A" else "B")

    with pytest.raises(Unauthorized):
        keys.client_for(f"Bearer {altered}")


def test_given_a_disabled_key_when_authenticating_then_it_is_unauthorized(
    keys: ApiKeyStore, dynamodb: Any, table_name: str
) -> None:
    api_key = keys.create_key("client-a")
    # An operator disables the key in the table (there is no API for it).
    (item,) = dynamodb.scan(TableName=table_name)["Items"]
    dynamodb.update_item(
        TableName=table_name,
        Key={"pk": item["pk"], "sk": item["sk"]},
        UpdateExpression="SET disabled = :t",
        ExpressionAttributeValues={":t": {"BOOL": True}},
    )

    with pytest.raises(Unauthorized):
        keys.client_for(f"Bearer {api_key}")


def test_given_a_created_key_when_the_table_is_scanned_then_the_key_appears_nowhere(
    keys: ApiKeyStore, dynamodb: Any, table_name: str
) -> None:
    api_key = keys.create_key("client-a", name="ci")

    everything = json.dumps(dynamodb.scan(TableName=table_name)["Items"])

    assert "client-a" in everything  # the scan does see the key's item
    assert api_key not in everything
    assert api_key.removeprefix("itg_") not in everything
