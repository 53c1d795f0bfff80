"""IdempotencyRepository contract: ``InMemoryIdempotencyStore`` and ``DynamoDBIdempotencyStore``.

One task per (client, Idempotency-Key): the same body finds the first task, another body is a
409, another client's key is a different key, and malformed keys are refused before any write.
"""

from __future__ import annotations

import pytest
from image_gateway.adapters.dynamodb_idempotency import DynamoDBIdempotencyStore
from image_gateway.errors import Conflict, InvalidRequest
from image_gateway.idempotency import fingerprint
from image_gateway.ports import IdempotencyRepository

from tests.fakes import InMemoryIdempotencyStore

BODY = '{"prompt":"a red fox"}'


@pytest.fixture
def claims(implementation: str, request: pytest.FixtureRequest) -> IdempotencyRepository:
    """An empty idempotency store: the fake, or the DynamoDB adapter on a fresh template table."""
    if implementation == "memory":
        return InMemoryIdempotencyStore()
    return DynamoDBIdempotencyStore(
        request.getfixturevalue("dynamodb"), request.getfixturevalue("tasks_table")
    )


def test_given_a_fresh_key_when_claimed_then_there_is_no_earlier_task(
    claims: IdempotencyRepository,
) -> None:
    assert claims.claim("client-a", "key-1", fingerprint(BODY), "task-1") is None


def test_given_a_claimed_key_when_the_same_body_repeats_then_the_first_task_id_comes_back(
    claims: IdempotencyRepository,
) -> None:
    claims.claim("client-a", "key-1", fingerprint(BODY), "task-1")

    earlier = claims.claim("client-a", "key-1", fingerprint(BODY), "task-2")

    assert earlier == "task-1"


def test_given_a_claimed_key_when_another_body_comes_then_it_is_a_conflict(
    claims: IdempotencyRepository,
) -> None:
    claims.claim("client-a", "key-1", fingerprint(BODY), "task-1")

    with pytest.raises(Conflict) as caught:
        claims.claim("client-a", "key-1", fingerprint('{"prompt":"a blue fox"}'), "task-2")

    assert caught.value.code == "idempotency_key_reused"
    assert caught.value.status_code == 409


def test_given_a_conflict_when_the_first_body_repeats_then_the_first_task_still_wins(
    claims: IdempotencyRepository,
) -> None:
    claims.claim("client-a", "key-1", fingerprint(BODY), "task-1")
    with pytest.raises(Conflict):
        claims.claim("client-a", "key-1", fingerprint("{}"), "task-2")

    assert claims.claim("client-a", "key-1", fingerprint(BODY), "task-3") == "task-1"


def test_given_a_key_claimed_by_another_client_when_claimed_then_it_is_fresh(
    claims: IdempotencyRepository,
) -> None:
    claims.claim("client-a", "key-1", fingerprint(BODY), "task-1")

    assert claims.claim("client-b", "key-1", fingerprint(BODY), "task-2") is None


def test_given_ids_that_concatenate_alike_when_two_clients_claim_then_they_stay_apart(
    claims: IdempotencyRepository,
) -> None:
    claims.claim("a", "b#c", fingerprint(BODY), "task-of-a")

    assert claims.claim("a#b", "c", fingerprint(BODY), "task-of-a#b") is None


@pytest.mark.parametrize(
    "key",
    ["", "k" * 129, "line\nbreak", "tab\there", "bell\x07"],
    ids=["empty", "129-chars", "newline", "tab", "control"],
)
def test_given_a_malformed_key_when_claimed_then_it_is_an_invalid_request(
    claims: IdempotencyRepository, key: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        claims.claim("client-a", key, fingerprint(BODY), "task-1")

    assert caught.value.code == "invalid_idempotency_key"


def test_given_a_key_of_128_printable_characters_when_claimed_then_it_is_accepted(
    claims: IdempotencyRepository,
) -> None:
    assert claims.claim("client-a", "k" * 128, fingerprint(BODY), "task-1") is None


def test_given_a_released_claim_when_the_key_comes_again_then_it_is_fresh(
    claims: IdempotencyRepository,
) -> None:
    claims.claim("client-a", "key-1", fingerprint(BODY), "task-1")

    claims.release("client-a", "key-1", "task-1")

    assert claims.claim("client-a", "key-1", fingerprint("{}"), "task-2") is None


def test_given_a_claim_of_another_task_when_released_then_it_stays(
    claims: IdempotencyRepository,
) -> None:
    claims.claim("client-a", "key-1", fingerprint(BODY), "task-1")

    claims.release("client-a", "key-1", "task-2")

    assert claims.claim("client-a", "key-1", fingerprint(BODY), "task-3") == "task-1"


def test_given_no_claim_when_released_then_nothing_happens(
    claims: IdempotencyRepository,
) -> None:
    claims.release("client-a", "key-1", "task-1")

    assert claims.claim("client-a", "key-1", fingerprint(BODY), "task-1") is None
