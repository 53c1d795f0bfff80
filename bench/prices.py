"""us-east-1 list prices (USD) the cost model uses, each with the AWS page it comes from.

Read in 2026-11 (see ``PRICES_AS_OF``); re-check against the pages before trusting a figure.
Free tiers are ignored: the model prices a stack that is past them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

PRICES_AS_OF: Final = "2026-11"
REGION: Final = "us-east-1"


@dataclass(frozen=True)
class Price:
    """One list price: ``usd`` per ``per`` units of ``unit``, from ``source``."""

    usd: float
    per: float
    unit: str
    source: str

    @property
    def usd_per_unit(self) -> float:
        """The price of a single unit."""
        return self.usd / self.per


LAMBDA_PAGE: Final = "https://aws.amazon.com/lambda/pricing/"
API_GATEWAY_PAGE: Final = "https://aws.amazon.com/api-gateway/pricing/"
DYNAMODB_PAGE: Final = "https://aws.amazon.com/dynamodb/pricing/on-demand/"
S3_PAGE: Final = "https://aws.amazon.com/s3/pricing/"
EVENTBRIDGE_PAGE: Final = "https://aws.amazon.com/eventbridge/pricing/"
STEP_FUNCTIONS_PAGE: Final = "https://aws.amazon.com/step-functions/pricing/"
SQS_PAGE: Final = "https://aws.amazon.com/sqs/pricing/"
SECRETS_MANAGER_PAGE: Final = "https://aws.amazon.com/secrets-manager/pricing/"
KMS_PAGE: Final = "https://aws.amazon.com/kms/pricing/"

PRICES: Final[dict[str, Price]] = {
    "lambda_requests": Price(0.20, 1_000_000, "invocation", LAMBDA_PAGE),
    # The template runs every function on arm64 (Graviton); x86 is 0.0000166667.
    "lambda_gb_seconds": Price(0.0000133334, 1, "GB-second (arm64)", LAMBDA_PAGE),
    "api_gateway_requests": Price(
        1.00, 1_000_000, "HTTP API request (per 512 KB)", API_GATEWAY_PAGE
    ),
    "dynamodb_wru": Price(0.625, 1_000_000, "on-demand write request unit", DYNAMODB_PAGE),
    "dynamodb_rru": Price(0.125, 1_000_000, "on-demand read request unit", DYNAMODB_PAGE),
    "s3_put_class": Price(0.005, 1_000, "PUT, COPY, POST or LIST request (Standard)", S3_PAGE),
    "s3_get_class": Price(0.0004, 1_000, "GET, HEAD and other requests (Standard)", S3_PAGE),
    "eventbridge_events": Price(1.00, 1_000_000, "custom event (per 64 KB)", EVENTBRIDGE_PAGE),
    "sfn_transitions": Price(0.025, 1_000, "Standard state transition", STEP_FUNCTIONS_PAGE),
    "sqs_requests": Price(0.40, 1_000_000, "Standard queue request (per 64 KB)", SQS_PAGE),
    "sqs_fifo_requests": Price(0.50, 1_000_000, "FIFO queue request (per 64 KB)", SQS_PAGE),
    "secrets_calls": Price(0.05, 10_000, "GetSecretValue API call", SECRETS_MANAGER_PAGE),
    "kms_requests": Price(0.03, 10_000, "symmetric Encrypt/Decrypt request", KMS_PAGE),
}
"""Per-request prices. Storage (S3 0.023/GB-month, Secrets 0.40/secret-month) is not per task."""
