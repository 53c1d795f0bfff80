"""The operator's provider settings survive a deploy (moto): CloudFormation writes every
parameter the template owns again on each deploy, and ``imagegw admin providers set`` writes
only one the template does not own, which the functions read over the defaults."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from image_gateway.adapters.aws import AwsDependencies
from image_gateway.config import Settings
from image_gateway.errors import GatewayError
from image_gateway.providers.directory import DEFAULT_CONCURRENCY
from image_gateway.providers.settings import operator_parameter
from imagegw.admin import Admin, Stack
from imagegw.cli import build_parser
from moto import mock_aws

from devstack.template import Resolver, load_template, parameter_defaults

STACK = "gw"


@pytest.fixture
def session() -> Iterator[Any]:
    with mock_aws():
        yield boto3.session.Session(
            region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
        )


def deploy(session: Any) -> list[str]:
    """What ``sam deploy`` does to the template's SSM parameters: each written with the
    template's value (created, or overwritten on an update). Returns their names."""
    template = load_template()
    resolver = Resolver(
        parameters=parameter_defaults(template),
        pseudo={"AWS::StackName": STACK, "AWS::Region": "us-east-1", "AWS::AccountId": "1"},
    )
    ssm = session.client("ssm")
    names = []
    for spec in template["Resources"].values():
        if spec["Type"] == "AWS::SSM::Parameter":
            props = spec["Properties"]
            name = str(resolver.resolve(props["Name"]))
            value = str(resolver.resolve(props["Value"]))
            ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
            names.append(name)
    return names


def admin(session: Any, *argv: str) -> int:
    args: argparse.Namespace = build_parser().parse_args(["admin", *argv])
    stack = Stack("tasks", f"/{STACK}/providers", None, session, "test")
    return Admin(args, stack, io.StringIO(), io.StringIO()).run()


def concurrency_in_force() -> int:
    """What the functions' provider directory reads (their own AWS adapter)."""
    env = {name: "unused" for name in ("BUCKET_NAME", "EVENT_BUS_NAME", "WEBHOOK_SECRET_ARN")}
    env.update(PROVIDER_KEYS_SECRET_ARN="unused", TABLE_NAME="tasks")
    settings = Settings.from_env({**env, "PROVIDERS_PARAMETER": f"/{STACK}/providers"})
    return AwsDependencies(settings).directory.concurrency("apimodels")


def test_the_template_owns_no_parameter_named_like_the_operators(session: Any) -> None:
    names = deploy(session)

    assert operator_parameter(f"/{STACK}/providers") not in names


def test_a_change_made_with_admin_providers_set_survives_a_redeploy(
    session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    deploy(session)
    admin(session, "providers", "set", "--concurrency", "apimodels=5", "--quiet")

    deploy(session)

    assert concurrency_in_force() == 5
    defaults = session.client("ssm").get_parameter(Name=f"/{STACK}/providers")["Parameter"]
    assert "concurrency" not in json.loads(defaults["Value"])  # the deploy did rewrite them


def test_before_any_providers_set_the_defaults_alone_are_in_force(
    session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    deploy(session)  # no operator parameter yet: GetParameters lists it as invalid

    assert concurrency_in_force() == DEFAULT_CONCURRENCY  # neither parameter sets it


def test_a_stack_without_its_providers_parameter_says_so(
    session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # nothing deployed

    with pytest.raises(GatewayError) as caught:
        concurrency_in_force()

    assert caught.value.code == "providers_config_invalid"
    assert f"/{STACK}/providers does not exist" in caught.value.message
