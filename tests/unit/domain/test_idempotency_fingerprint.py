"""What makes two requests "the same" for an Idempotency-Key (idempotency.py)."""

from __future__ import annotations

from image_gateway.idempotency import fingerprint

BODY = '{"prompt":"a red fox"}'


def test_given_the_same_text_when_fingerprinted_then_it_is_stable_and_body_sensitive() -> None:
    assert fingerprint(BODY) == fingerprint(BODY)
    assert fingerprint(BODY) != fingerprint(BODY + " ")
