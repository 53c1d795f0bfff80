"""WebhookSecrets contract: ``InMemoryWebhookSecrets`` and ``KmsWebhookSecrets`` (moto).

A client's first ``get`` creates its ``whsec_`` secret and later ones return the same; a
rotation makes a new current secret and keeps the old one signing until the time given.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from image_gateway.adapters.kms_webhook_secrets import KmsWebhookSecrets
from image_gateway.webhooks.ports import WebhookSecrets

from tests.contract.conftest import REGION
from tests.fakes import InMemoryWebhookSecrets

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def secrets(implementation: str, request: pytest.FixtureRequest) -> WebhookSecrets:
    """No secrets yet: the fake, or the KMS adapter on a fresh moto table and key."""
    if implementation == "memory":
        return InMemoryWebhookSecrets()
    dynamodb: Any = request.getfixturevalue("dynamodb")
    table = request.getfixturevalue("tasks_table")
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(Description="webhook secrets")["KeyMetadata"]["KeyId"]
    return KmsWebhookSecrets(dynamodb, kms, table, key_id)


def test_given_a_new_client_when_asked_twice_then_one_whsec_secret(
    secrets: WebhookSecrets,
) -> None:
    first = secrets.get("client-a")

    assert first.current.startswith("whsec_")
    assert secrets.get("client-a") == first
    assert first.signing_secrets(NOW) == [first.current]


def test_given_two_clients_then_each_has_its_own_secret(secrets: WebhookSecrets) -> None:
    assert secrets.get("client-a").current != secrets.get("client-b").current


def test_given_a_rotation_then_both_sign_until_the_time_given(secrets: WebhookSecrets) -> None:
    old = secrets.get("client-a").current

    rotated = secrets.rotate("client-a", previous_until=NOW + timedelta(hours=24))

    stored = secrets.get("client-a")
    assert stored.current == rotated.current != old
    assert stored.signing_secrets(NOW) == [rotated.current, old]
    assert stored.signing_secrets(NOW + timedelta(hours=25)) == [rotated.current]


def test_given_no_secret_yet_when_rotating_then_a_secret_exists(secrets: WebhookSecrets) -> None:
    rotated = secrets.rotate("client-c", previous_until=NOW)

    assert secrets.get("client-c").current == rotated.current


def test_the_adapter_never_stores_the_secret_in_clear(dynamodb: Any, tasks_table: str) -> None:
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(Description="webhook secrets")["KeyMetadata"]["KeyId"]
    secret = KmsWebhookSecrets(dynamodb, kms, tasks_table, key_id).get("client-a").current

    items = dynamodb.scan(TableName=tasks_table)["Items"]

    assert len(items) == 1
    assert secret.encode() not in repr(items).encode()
