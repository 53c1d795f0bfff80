"""docs/capacity.md is what ``python -m bench.capacity`` makes of template.yaml and the timing
policy now: a number changed in either without regenerating the table fails here."""

from __future__ import annotations

import copy

from bench.capacity import OUTPUT, Template, hops, render
from devstack.template import ROOT, load_template


def test_the_capacity_table_is_current() -> None:
    assert OUTPUT.read_text() == render(), "docs/capacity.md is stale: python -m bench.capacity"


def test_a_changed_route_throttle_changes_the_table() -> None:
    # GIVEN the template with the route throttle lowered to 500/s
    document = copy.deepcopy(load_template())
    document["Parameters"]["ApiRouteRateLimit"]["Default"] = 500

    # WHEN the table is made of it THEN the submit route sits below the goal
    submits = next(h for h in hops(Template(document)) if "POST /v1/images" in h.hop)
    assert "500" in submits.setting
    assert submits.verdict.startswith("**below the goal")
    assert render(Template(document)) != OUTPUT.read_text()


def test_every_function_and_queue_of_the_template_has_a_row() -> None:
    template = Template(load_template())
    rows = " ".join(h.hop for h in hops(template))

    for name in template.of_type("AWS::Serverless::Function") + template.of_type("AWS::SQS::Queue"):
        assert f"`{name}`" in rows or name == "SweeperFunction", name
    assert "the sweeper" in rows


def test_every_quota_row_cites_an_aws_page_or_a_docs_page() -> None:
    for hop in hops(Template(load_template())):
        assert hop.source.startswith("https://docs.aws.amazon.com/") or (
            hop.source.startswith("docs/") and (ROOT / hop.source).exists()
        ), hop.hop
