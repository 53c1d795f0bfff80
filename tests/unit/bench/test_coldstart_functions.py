"""The cold start figure measures every function the template deploys, each with a target."""

from __future__ import annotations

from bench.coldstart import DEFAULT_TARGET, FIRST_EVENTS, FUNCTIONS, target
from devstack.template import load_template


def _template_functions() -> set[str]:
    resources = load_template()["Resources"]
    return {
        name
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def test_every_function_of_the_template_is_measured() -> None:
    # Given the functions template.yaml deploys
    deployed = _template_functions()
    # When the cold start figure lists what it measures
    measured = set(FUNCTIONS)
    # Then it is exactly those, once each
    assert measured == deployed
    assert len(FUNCTIONS) == len(measured)
    # and the report says what each one's first event is
    assert set(FIRST_EVENTS) == measured


def test_every_measured_function_has_a_target_of_at_most_twice_boto3() -> None:
    # Given the targets: every function <= 2x, the webhook <= 1.4x
    # When each function's target is looked up
    targets = {function: target(function) for function in FUNCTIONS}
    # Then none is over 2x, and the webhook's is 1.4x
    assert max(targets.values()) <= DEFAULT_TARGET == 2.0
    assert targets["WebhookFunction"] == 1.4
