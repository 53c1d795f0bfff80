"""DynamoDBIdempotencyStore's item on moto: what only DynamoDB has.

How claims behave is the contract in tests/contract/test_idempotency_repository.py.
"""

from __future__ import annotations

from typing import Any

from image_gateway.adapters.dynamodb_idempotency import DynamoDBIdempotencyStore as IdempotencyStore
from image_gateway.idempotency import IDEMPOTENCY_TTL, fingerprint
from image_gateway.models.task import utc_now

BODY = '{"prompt":"a red fox"}'


def test_given_a_claim_when_stored_then_the_templates_ttl_attribute_expires_it_after_a_day(
    dynamodb: Any, table_name: str, tasks_table_properties: dict[str, Any]
) -> None:
    ttl_attribute = tasks_table_properties["TimeToLiveSpecification"]["AttributeName"]
    before = int((utc_now() + IDEMPOTENCY_TTL).timestamp())

    IdempotencyStore(dynamodb, table_name).claim("client-a", "key-1", fingerprint(BODY), "task-1")

    (item,) = dynamodb.scan(TableName=table_name)["Items"]
    after = int((utc_now() + IDEMPOTENCY_TTL).timestamp())
    assert before <= int(item[ttl_attribute]["N"]) <= after
