"""DynamoDBApiKeyStore on moto: what only DynamoDB has (the key is stored hashed).

How keys authenticate (and a disabled key does not) is the contract in
tests/contract/test_api_keys.py.
"""

from __future__ import annotations

import json
from typing import Any

from image_gateway.adapters.dynamodb_api_keys import DynamoDBApiKeyStore as ApiKeyStore


def test_given_a_created_key_when_the_table_is_scanned_then_the_key_appears_nowhere(
    dynamodb: Any, table_name: str
) -> None:
    api_key = ApiKeyStore(dynamodb, table_name).create_key("client-a", name="ci")

    everything = json.dumps(dynamodb.scan(TableName=table_name)["Items"])

    assert "client-a" in everything  # the scan does see the key's item
    assert api_key not in everything
    assert api_key.removeprefix("itg_") not in everything
