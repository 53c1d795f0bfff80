"""The adapters' botocore session: its loader knows the services the adapters use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from botocore import xform_name
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader
from image_gateway.adapters.aws import AwsDependencies
from image_gateway.adapters.boto import MODELS_DIR, OPERATIONS, SERVICES, new_session
from image_gateway.adapters.trimmed_models import build

from devstack.template import ROOT
from tests.fakes import fake_settings

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


def _operations_named_in(paths: list[Path]) -> set[tuple[str, str]]:
    """(service, operation) of every botocore client method or presigned operation named in
    ``paths``: ``.get_item(`` or ``"get_object"``, matched against botocore's full models."""
    loader = Loader()
    by_method = {
        xform_name(operation): (service, operation)
        for service in SERVICES
        for operation in loader.load_service_model(service, "service-2")["operations"]
    }
    named = set()
    for path in paths:
        text = path.read_text()
        for name in re.findall(r"\.([a-z][a-z0-9_]*)\(|[\"']([a-z][a-z0-9_]*)[\"']", text):
            method = name[0] or name[1]
            if method in by_method:
                named.add(by_method[method])
    return named


def test_every_operation_an_adapter_calls_is_in_the_trimmed_models() -> None:
    # GIVEN every AWS operation the adapters name (calls, and presigned URLs' operations)
    named = _operations_named_in(sorted(ADAPTERS.glob("*.py")))

    # THEN each is one of OPERATIONS, and each of OPERATIONS is used
    listed = {(service, op) for service, ops in OPERATIONS.items() for op in ops}
    assert named, "no AWS call found: has the adapters' style changed?"
    assert named <= listed, sorted(named - listed)
    assert listed <= named, sorted(listed - named)


def test_the_committed_trimmed_models_are_what_the_pinned_botocore_makes() -> None:
    # GIVEN the models made from the installed (pinned) botocore and OPERATIONS
    expected = build()

    # THEN the committed files are exactly those (else: make botocore-models)
    committed = {
        path.relative_to(MODELS_DIR): path.read_text() for path in MODELS_DIR.rglob("*.json")
    }
    assert committed.keys() == expected.keys()
    stale = [str(path) for path, text in expected.items() if committed[path] != text]
    assert not stale, f"out of date, run `make botocore-models`: {stale}"


def test_a_client_has_exactly_the_listed_operations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    client = new_session().create_client("dynamodb")

    assert set(client.meta.service_model.operation_names) == OPERATIONS["dynamodb"]


def test_the_s3_client_is_built_at_its_first_call_not_when_the_image_store_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a function's dependencies on a session that counts the clients it builds
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # presigning signs, offline
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    session = new_session()
    built: list[str] = []
    create_client = session.create_client

    def counted(service: str, **kwargs: object) -> object:
        built.append(service)
        return create_client(service, **kwargs)

    monkeypatch.setattr(session, "create_client", counted)
    deps = AwsDependencies(fake_settings(bucket_name="images"), session=session)

    # WHEN a route only names the bucket (a queued task's view)
    assert deps.images.bucket == "images"
    # THEN no S3 client was built; the first call builds it, once
    assert built == []
    url = deps.images.presigned_get_url("outputs/a.png", 60)
    deps.images.presigned_get_url("outputs/b.png", 60)
    assert url.startswith("https://images.s3.") and built == ["s3"]
