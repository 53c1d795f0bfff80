"""KmsWebhookSecrets: per-client webhook secrets in the tasks table, each value encrypted
with the stack's KMS key (``webhooks.ports.WebhookSecrets``).

One item per client (``pk = WHSEC#<client>``): the current secret and, during a rollover,
the previous one with the time it stops signing. Every secret is a KMS ciphertext bound to
its client by the encryption context, so the table alone (a backup, an export, a role with
only dynamodb:GetItem) never reveals one, and one client's ciphertext cannot be replayed as
another's. Chosen over one Secrets Manager secret per client: a flat $1 a month for the key
instead of $0.40 a month per client, and the rollover state lives with the secret.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from image_gateway.webhooks.ports import WebhookSecretSet
from image_gateway.webhooks.signing import new_secret


class KmsWebhookSecrets:
    """Secrets created on first use, rotated with a conditional write (no lost rotation)."""

    def __init__(self, dynamodb_client: Any, kms_client: Any, table: str, key_id: str) -> None:
        self._ddb = dynamodb_client
        self._kms = kms_client
        self._table = table
        self._key_id = key_id

    def get(self, client_id: str) -> WebhookSecretSet:
        """The client's secrets, creating the first one on first use."""
        item = self._read(client_id)
        if item is not None:
            return self._decode(client_id, item)
        fresh = WebhookSecretSet(current=new_secret())
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=self._encode(client_id, fresh, version=1),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return self.get(client_id)  # another request created it first: use that one
        return fresh

    def rotate(self, client_id: str, *, previous_until: datetime) -> WebhookSecretSet:
        """A new current secret; the old one keeps signing until ``previous_until``."""
        for _ in range(5):
            item = self._read(client_id)
            if item is None:
                self.get(client_id)
                continue
            old = self._decode(client_id, item)
            version = int(item["version"]["N"])
            rotated = WebhookSecretSet(
                current=new_secret(), previous=old.current, previous_until=previous_until
            )
            try:
                self._ddb.put_item(
                    TableName=self._table,
                    Item=self._encode(client_id, rotated, version=version + 1),
                    ConditionExpression="version = :seen",
                    ExpressionAttributeValues={":seen": {"N": str(version)}},
                )
            except self._ddb.exceptions.ConditionalCheckFailedException:
                continue  # a concurrent rotation: rotate what it made
            return rotated
        raise RuntimeError(f"webhook secret of {client_id} kept changing during rotation")

    def _read(self, client_id: str) -> dict[str, Any] | None:
        answer = self._ddb.get_item(TableName=self._table, Key=_key(client_id), ConsistentRead=True)
        item: dict[str, Any] | None = answer.get("Item")
        return item

    def _encode(self, client_id: str, secrets: WebhookSecretSet, *, version: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            **_key(client_id),
            "current": {"B": self._encrypt(client_id, secrets.current)},
            "version": {"N": str(version)},
        }
        if secrets.previous and secrets.previous_until:
            item["previous"] = {"B": self._encrypt(client_id, secrets.previous)}
            item["previous_until"] = {"N": str(int(secrets.previous_until.timestamp()))}
        return item

    def _decode(self, client_id: str, item: dict[str, Any]) -> WebhookSecretSet:
        previous = item.get("previous")
        until = item.get("previous_until")
        return WebhookSecretSet(
            current=self._decrypt(client_id, item["current"]["B"]),
            previous=self._decrypt(client_id, previous["B"]) if previous else None,
            previous_until=datetime.fromtimestamp(int(until["N"]), UTC) if until else None,
        )

    def _encrypt(self, client_id: str, secret: str) -> bytes:
        answer = self._kms.encrypt(
            KeyId=self._key_id,
            Plaintext=secret.encode(),
            EncryptionContext={"client_id": client_id, "purpose": "webhook-secret"},
        )
        return bytes(answer["CiphertextBlob"])

    def _decrypt(self, client_id: str, blob: bytes) -> str:
        answer = self._kms.decrypt(
            CiphertextBlob=blob,
            KeyId=self._key_id,
            EncryptionContext={"client_id": client_id, "purpose": "webhook-secret"},
        )
        return bytes(answer["Plaintext"]).decode()


def _key(client_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"WHSEC#{client_id}"}, "sk": {"S": "WHSEC"}}
