"""WebhookSigner: per-task callback tokens (auth.py)."""

from __future__ import annotations

import pytest
from image_gateway.auth import WebhookSigner

SECRET = b"0123456789abcdef-stack-secret"


@pytest.fixture
def signer() -> WebhookSigner:
    return WebhookSigner(SECRET)


def test_given_the_same_secret_when_signing_twice_then_the_token_is_the_same() -> None:
    first = WebhookSigner(SECRET).token("apimart", "task-1")
    second = WebhookSigner(SECRET).token("apimart", "task-1")

    assert first == second


def test_given_two_tasks_when_signing_then_their_tokens_differ(signer: WebhookSigner) -> None:
    assert signer.token("apimart", "task-1") != signer.token("apimart", "task-2")


def test_given_two_providers_when_signing_then_their_tokens_differ(signer: WebhookSigner) -> None:
    assert signer.token("apimart", "task-1") != signer.token("mountsea-async", "task-1")


def test_given_another_secret_when_signing_then_the_token_differs(signer: WebhookSigner) -> None:
    other = WebhookSigner(b"another-secret-of-16+bytes")

    assert other.token("apimart", "task-1") != signer.token("apimart", "task-1")


def test_given_the_issued_token_when_verified_then_it_is_accepted(signer: WebhookSigner) -> None:
    token = signer.token("apimart", "task-1")

    assert signer.verify("apimart", "task-1", token) is True


def test_given_a_tampered_token_when_verified_then_it_is_rejected(signer: WebhookSigner) -> None:
    token = signer.token("apimart", "task-1")
    tampered = ("0" if token[0] != "0" else "1") + token[1:]

    assert signer.verify("apimart", "task-1", tampered) is False


def test_given_another_tasks_token_when_verified_then_it_is_rejected(
    signer: WebhookSigner,
) -> None:
    assert signer.verify("apimart", "task-1", signer.token("apimart", "task-2")) is False


def test_given_an_empty_token_when_verified_then_it_is_rejected(signer: WebhookSigner) -> None:
    assert signer.verify("apimart", "task-1", "") is False


def test_given_a_non_ascii_token_when_verified_then_it_is_rejected(
    signer: WebhookSigner,
) -> None:
    assert signer.verify("apimart", "task-1", "é" * 64) is False


@pytest.mark.parametrize("secret", [b"", b"short", b"0123456789abcde"], ids=["0", "5", "15"])
def test_given_a_secret_under_16_bytes_when_constructing_then_it_is_refused(secret: bytes) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        WebhookSigner(secret)


def test_given_a_secret_of_exactly_16_bytes_when_constructing_then_it_signs() -> None:
    assert len(WebhookSigner(b"0123456789abcdef").token("apimart", "task-1")) == 64
