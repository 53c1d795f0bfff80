"""Provider selection: which providers a request goes to, in order, and the 4xx when none can."""

from __future__ import annotations

import pytest
from image_gateway.errors import InvalidRequest, Unprocessable
from image_gateway.service.routing import candidate_providers

from tests.fakes import FakeDependencies
from tests.unit.service.support import data_url, fox, png


def names(deps: FakeDependencies, **fields: object) -> list[str]:
    return [c.provider.name for c in candidate_providers(deps, fox(**fields))]


def test_a_pinned_provider_is_the_only_candidate(deps: FakeDependencies) -> None:
    # GIVEN a request pinned to pmock WHEN routed THEN only pmock is tried
    assert names(deps, provider="pmock") == ["pmock"]


def test_the_callers_list_is_tried_in_the_callers_order(deps: FakeDependencies) -> None:
    # GIVEN an ordered fallback list WHEN routed THEN that order is kept
    assert names(deps, providers=["mountsea-async", "apimart"]) == ["mountsea-async", "apimart"]


def test_without_a_choice_the_stack_default_order_applies(deps: FakeDependencies) -> None:
    # GIVEN no order in the providers parameter WHEN routed THEN DEFAULT_PROVIDERS apply
    assert names(deps) == deps.settings.default_providers


def test_the_providers_parameter_order_replaces_the_default(deps: FakeDependencies) -> None:
    # GIVEN an operator's order WHEN routed THEN it applies without a redeploy
    deps.configure(order=["pmock", "apimart"])

    assert names(deps) == ["pmock", "apimart"]


def test_disabled_providers_are_left_out(deps: FakeDependencies) -> None:
    # GIVEN apimart disabled WHEN routed with the default order THEN it is skipped
    deps.configure(disabled=["apimart"])

    assert names(deps) == ["mountsea-async", "mountsea-compat"]


def test_a_provider_that_cannot_honour_the_request_is_skipped(deps: FakeDependencies) -> None:
    # GIVEN a masked edit (apimart has no masks) WHEN routed THEN the next provider is used
    image = data_url(png(64, 64))

    chosen = names(deps, providers=["apimart", "mountsea-async"], images=[image], mask=image)

    assert chosen == ["mountsea-async"]


def test_the_only_refusal_is_the_answer(deps: FakeDependencies) -> None:
    # GIVEN apimart pinned and a transparent background it does not make
    # WHEN routed THEN its own 422 names the field
    with pytest.raises(Unprocessable) as refused:
        candidate_providers(deps, fox(provider="apimart", background="transparent"))

    assert refused.value.code == "unsupported_by_provider"
    assert refused.value.details["field"] == "background"


def test_every_providers_refusal_is_named_when_none_qualifies(deps: FakeDependencies) -> None:
    # GIVEN a size neither provider makes exactly WHEN routed THEN one 422 lists both reasons
    with pytest.raises(Unprocessable) as refused:
        candidate_providers(deps, fox(providers=["apimart", "pmock"], size="1000x1000"))

    assert refused.value.code == "no_provider_can_honour"
    assert [r["provider"] for r in refused.value.details["refusals"]] == ["apimart", "pmock"]


def test_a_refusal_next_to_a_disabled_provider_names_both(deps: FakeDependencies) -> None:
    # GIVEN openai disabled and apimart refusing WHEN routed
    # THEN the 422 gives apimart's reason and says openai is disabled
    deps.configure(disabled=["openai"])

    with pytest.raises(Unprocessable) as refused:
        candidate_providers(deps, fox(providers=["apimart", "openai"], background="opaque"))

    assert refused.value.code == "no_provider_can_honour"
    assert "(disabled: openai)" in refused.value.message


def test_only_disabled_providers_is_no_provider_available(deps: FakeDependencies) -> None:
    # GIVEN every listed provider disabled WHEN routed THEN no_provider_available
    deps.configure(disabled=["apimart", "pmock"])

    with pytest.raises(Unprocessable) as refused:
        candidate_providers(deps, fox(providers=["apimart", "pmock"]))

    assert refused.value.code == "no_provider_available"


def test_an_unknown_provider_is_a_bad_request(deps: FakeDependencies) -> None:
    # GIVEN a provider name nobody registered WHEN routed THEN 400 unknown_provider
    with pytest.raises(InvalidRequest) as refused:
        candidate_providers(deps, fox(provider="nobody"))

    assert refused.value.code == "unknown_provider"


def test_a_size_no_provider_makes_names_the_field_and_what_would_work_briefly(
    deps: FakeDependencies,
) -> None:
    # GIVEN a size no provider makes WHEN routed over every provider
    with pytest.raises(Unprocessable) as refused:
        candidate_providers(deps, fox(size="99x99"))

    # THEN the 422 names the size field and, in a short message, the sizes that would work;
    # each provider's own refusal (its full list) stays under refusals
    error = refused.value
    assert error.code == "no_provider_can_honour" and error.details["field"] == "size"
    assert len(error.message) <= 600
    assert "99x99" in error.message and "1024x1024" in error.message
    assert "size_policy='nearest'" in error.message
    assert {r["provider"] for r in error.details["refusals"]} == set(deps.directory.order())
    assert all(r["supported"] for r in error.details["refusals"])


def test_refusals_of_different_fields_name_no_single_field(deps: FakeDependencies) -> None:
    # GIVEN one provider refusing the mask and another the size WHEN routed
    with pytest.raises(Unprocessable) as refused:
        candidate_providers(
            deps,
            fox(
                providers=["apimart", "mountsea-async"],
                size="1000x1000",
                images=["https://example.com/a.png"],
                mask="https://example.com/m.png",
            ),
        )

    # THEN no one field is named
    assert "field" not in refused.value.details
