"""The adapters' botocore session: its loader knows the services the adapters use."""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import UnknownServiceError
from image_gateway.adapters.boto import SERVICES, new_session

from devstack.template import ROOT

ADAPTERS = ROOT / "layers" / "common" / "image_gateway" / "adapters"


def test_every_service_an_adapter_makes_a_client_of_is_known() -> None:
    # GIVEN every client("<service>") the adapters make (AwsDependencies' and the webhook's)
    used = {
        name
        for path in ADAPTERS.glob("*.py")
        for name in re.findall(r'client\("([a-z0-9-]+)"\)', path.read_text())
    }

    # THEN the session's loader knows each (and the adapters do use those it lists)
    assert used, "no client(...) call found: has the adapters' style changed?"
    assert used <= SERVICES
    assert SERVICES - used <= {"s3"}  # S3's client is made by a property named s3


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_known_service_gets_a_working_client(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    client = new_session().create_client(service)

    assert client.meta.service_model.service_name == service


def test_a_service_the_gateway_does_not_use_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    with pytest.raises(UnknownServiceError):
        new_session().create_client("ec2")
