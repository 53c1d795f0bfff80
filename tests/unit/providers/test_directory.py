"""ProviderConfig, PriceTable and ProviderDirectory: the providers parameter as template.yaml
ships it, apimodels' documented prices (shared/providers/apimodels-gpt-image-2.txt), and the
directory's order / disabled / options / cache behaviour with an in-memory loader.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from image_gateway.config import Settings
from image_gateway.errors import GatewayError, InvalidRequest
from image_gateway.models.request import ImageRequest
from image_gateway.providers.apimart import ApimartProvider
from image_gateway.providers.apimodels import ApimodelsProvider
from image_gateway.providers.base import ProviderInputs, SizePlan
from image_gateway.providers.directory import PriceTable, ProviderConfig, ProviderDirectory
from image_gateway.providers.openai_compat import OpenAIProvider
from image_gateway.providers.pmock import PmockProvider
from image_gateway.providers.registry import PROVIDER_NAMES

from devstack.template import load_template

# apimodels' price table as the docs print it: tier -> (low, medium / auto, high), USD.
DOCS_PRICES = {
    "1K": (0.005, 0.025, 0.07),
    "2K": (0.01, 0.04, 0.10),
    "4K": (0.015, 0.06, 0.23),
}
BASE_ENV = {
    "TABLE_NAME": "tasks",
    "BUCKET_NAME": "images",
    "EVENT_BUS_NAME": "bus",
    "WEBHOOK_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:webhook",
    "PROVIDER_KEYS_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:keys",
    "DEFAULT_PROVIDERS": "mountsea-async,apimart",
    "DISABLED_PROVIDERS": "openai",
}


class FakeLoader:
    """Hands out the providers parameter's JSON; counts reads; the next document can change."""

    def __init__(self, document: dict[str, Any] | str) -> None:
        self.document = document
        self.reads = 0

    def __call__(self) -> str:
        self.reads += 1
        return self.document if isinstance(self.document, str) else json.dumps(self.document)


@pytest.fixture(scope="module")
def template_document() -> str:
    value = load_template()["Resources"]["ProvidersParameter"]["Properties"]["Value"]
    assert isinstance(value, str)
    return value


@pytest.fixture(scope="module")
def template_config(template_document: str) -> ProviderConfig:
    return ProviderConfig.parse(template_document)


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env(BASE_ENV)


def apimodels_prices(config: ProviderConfig) -> PriceTable:
    table = config.prices.get("apimodels")
    assert table is not None
    return table


# -- the template's document -------------------------------------------------------------------
def test_given_the_template_parameter_when_parsed_then_its_keys_are_the_shipped_ones(
    template_config: ProviderConfig,
) -> None:
    assert (template_config.version, template_config.order, template_config.disabled) == (
        1,
        None,
        [],
    )
    assert template_config.options == {
        "apimart": {"official_fallback": False},
        "pmock": {"status_path": "/api/ai/openai/tasks?taskId={task_id}"},
    }
    assert sorted(template_config.prices) == ["apimodels"]


@pytest.mark.parametrize("tier", sorted(DOCS_PRICES))
def test_given_the_template_prices_when_read_then_apimodels_matches_the_docs(
    template_config: ProviderConfig, tier: str
) -> None:
    low, medium, high = DOCS_PRICES[tier]

    row = apimodels_prices(template_config).per_image[tier]  # type: ignore[index]

    assert (row["low"], row["medium"], row["high"]) == (low, medium, high)


@pytest.mark.parametrize("tier", sorted(DOCS_PRICES))
def test_given_the_template_prices_when_estimating_auto_then_it_is_billed_as_medium(
    template_config: ProviderConfig, tier: str
) -> None:
    table = apimodels_prices(template_config)
    ratio = {"aspect_ratio": "1:1", "resolution": tier}

    auto = table.estimate(ImageRequest(prompt="x", quality="auto", **ratio), None)
    medium = table.estimate(ImageRequest(prompt="x", quality="medium", **ratio), None)

    assert auto == medium == DOCS_PRICES[tier][1]


def test_given_a_table_without_an_auto_column_when_estimating_auto_then_medium_applies() -> None:
    table = PriceTable(per_image={"1K": {"low": 0.005, "medium": 0.025, "high": 0.07}})

    assert table.estimate(ImageRequest(prompt="x", quality="auto"), None) == 0.025


# -- PriceTable.estimate -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "price"),
    [
        ({"size": "2048x2048", "quality": "high"}, 0.10),
        ({"size": "3840x2160", "quality": "medium"}, 0.06),
        ({"aspect_ratio": "16:9", "resolution": "1K", "quality": "low"}, 0.005),
        ({"size": "1536x1024", "quality": "high"}, 0.07),
        ({"size": "1024x1536", "quality": "low"}, 0.005),
        ({"size": "1552x1024", "quality": "low"}, 0.01),  # long edge 1537-2048: 2K
        ({"aspect_ratio": "1:1", "resolution": "4K", "quality": "high"}, 0.23),
        ({"aspect_ratio": "9:16", "resolution": "2K", "quality": "auto"}, 0.04),
        ({}, 0.025),  # auto size is sent as 1:1 at 1K; auto quality billed as medium
    ],
)
def test_given_an_apimodels_plan_when_estimating_then_the_tier_comes_from_the_planned_pixels(
    template_config: ProviderConfig, fields: dict[str, Any], price: float
) -> None:
    request = ImageRequest(prompt="x", **fields)
    plan = ApimodelsProvider().plan_size(request)

    assert apimodels_prices(template_config).estimate(request, plan) == price


def test_given_a_plan_smaller_than_the_request_when_estimating_then_the_plan_sets_the_tier(
    template_config: ProviderConfig,
) -> None:
    # 3840x2160 is a 4K request, but a fixed-size provider makes 1536x1024 (1K) instead.
    request = ImageRequest(prompt="x", size="3840x2160", quality="high", size_policy="nearest")
    plan = OpenAIProvider().plan_size(request)

    assert plan.expected == (1536, 1024)
    assert apimodels_prices(template_config).estimate(request, plan) == 0.07


def test_given_no_plan_when_estimating_then_the_requests_own_tier_is_used(
    template_config: ProviderConfig,
) -> None:
    request = ImageRequest(prompt="x", size="3840x2160", quality="high")

    assert apimodels_prices(template_config).estimate(request, None) == 0.23


def test_given_a_plan_without_pixels_when_estimating_then_the_requests_tier_is_used() -> None:
    table = PriceTable(per_image={"1K": {"low": 1.0}, "2K": {"low": 2.0}})
    request = ImageRequest(prompt="x", aspect_ratio="1:1", resolution="2K", quality="low")

    assert table.estimate(request, SizePlan("1:1@2K", "1:1 @ 2K", exact=True)) == 2.0


@pytest.mark.parametrize(
    ("per_image", "quality"),
    [({"2K": {"low": 0.01}}, "low"), ({"1K": {"low": 0.005}}, "high")],
    ids=["no-tier-row", "no-quality-cell"],
)
def test_given_a_table_without_the_cell_when_estimating_then_there_is_no_estimate(
    per_image: dict[str, dict[str, float]], quality: str
) -> None:
    table = PriceTable.model_validate({"per_image": per_image})

    assert table.estimate(ImageRequest(prompt="x", quality=quality), None) is None


# -- ProviderConfig.parse ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "document",
    [
        {"order": ["apimart", "midjourney"]},
        {"disabled": ["dall-e"]},
        {"order": ["Apimart"]},
    ],
    ids=["unknown-in-order", "unknown-in-disabled", "wrong-case"],
)
def test_given_an_unknown_provider_name_when_parsing_then_it_is_providers_config_invalid(
    document: dict[str, Any],
) -> None:
    with pytest.raises(GatewayError) as caught:
        ProviderConfig.parse(json.dumps(document))

    assert (caught.value.code, caught.value.status_code) == ("providers_config_invalid", 500)
    assert "unknown provider" in caught.value.message


@pytest.mark.parametrize(
    "document",
    [
        "{not json",
        '{"order": "apimart"}',
        '{"ordre": ["apimart"]}',
        '{"prices": {"apimodels": {"per_image": {"8K": {"low": 1}}}}}',
        '{"prices": {"apimodels": {"per_image": {"1K": {"ultra": 1}}}}}',
        '{"breaker": {"midjourney": {"failures": 3}}}',
        '{"breaker": {"apimart": {"failures": 0}}}',
        '{"breaker": {"apimart": {"cooldown_seconds": -1}}}',
        '{"breaker": {"apimart": {"threshold": 3}}}',
    ],
    ids=[
        "not-json",
        "order-not-a-list",
        "unknown-key",
        "unknown-tier",
        "unknown-quality",
        "breaker-of-an-unknown-provider",
        "breaker-of-no-failures",
        "breaker-negative-cool-down",
        "breaker-unknown-field",
    ],
)
def test_given_a_malformed_document_when_parsing_then_it_is_providers_config_invalid(
    document: str,
) -> None:
    with pytest.raises(GatewayError) as caught:
        ProviderConfig.parse(document)

    assert caught.value.code == "providers_config_invalid"


@pytest.mark.parametrize("document", ["", "{}"], ids=["empty", "empty-object"])
def test_given_an_empty_document_when_parsing_then_every_key_has_its_default(
    document: str,
) -> None:
    config = ProviderConfig.parse(document)

    assert (config.order, config.disabled, config.options, config.prices) == (None, [], {}, {})


def test_given_bad_options_for_one_provider_when_parsing_then_it_is_providers_config_invalid() -> (
    None
):
    document = json.dumps({"options": {"pmock": {"status_path": "/api/ai/openai/tasks"}}})

    with pytest.raises(GatewayError) as caught:
        ProviderConfig.parse(document)

    assert caught.value.code == "providers_config_invalid"


# -- ProviderDirectory -------------------------------------------------------------------------
def test_given_a_document_without_order_when_asked_then_the_settings_default_order_applies(
    settings: Settings,
) -> None:
    directory = ProviderDirectory(settings, FakeLoader({"disabled": []}))

    assert directory.order() == ["mountsea-async", "apimart"]


def test_given_no_default_providers_when_asked_then_the_order_is_the_registry_order() -> None:
    env = {key: value for key, value in BASE_ENV.items() if key != "DEFAULT_PROVIDERS"}

    directory = ProviderDirectory(Settings.from_env(env), FakeLoader({}))

    assert directory.order() == list(PROVIDER_NAMES)


def test_given_a_document_with_an_order_when_asked_then_the_document_wins(
    settings: Settings,
) -> None:
    directory = ProviderDirectory(settings, FakeLoader({"order": ["apimodels", "pmock"]}))

    assert directory.order() == ["apimodels", "pmock"]


def test_given_no_loader_when_asked_then_the_defaults_apply(settings: Settings) -> None:
    directory = ProviderDirectory(settings, None)

    assert directory.order() == ["mountsea-async", "apimart"]
    assert directory.config == ProviderConfig()


def test_given_a_provider_disabled_in_the_document_when_asked_then_only_it_is_disabled(
    settings: Settings,
) -> None:
    directory = ProviderDirectory(settings, FakeLoader({"disabled": ["pmock"]}))

    assert {
        name: directory.enabled(name)
        for name in ("apimart", "mountsea-async", "pmock", "apimodels", "openai", "mountsea-compat")
    } == {
        "apimart": True,
        "mountsea-async": True,
        "pmock": False,
        "apimodels": True,
        "openai": False,  # DISABLED_PROVIDERS of the stack
        "mountsea-compat": True,
    }


def test_given_disabled_in_the_environment_when_asked_then_it_stays_disabled(
    settings: Settings,
) -> None:
    env = {**BASE_ENV, "DISABLED_PROVIDERS": "apimart,openai"}

    directory = ProviderDirectory(Settings.from_env(env), FakeLoader({"disabled": ["pmock"]}))

    assert (directory.enabled("apimart"), directory.enabled("pmock")) == (False, False)
    assert directory.enabled("apimodels") is True


def test_given_apimart_options_in_the_document_when_building_then_they_reach_the_adapter(
    settings: Settings,
) -> None:
    directory = ProviderDirectory(
        settings, FakeLoader({"options": {"apimart": {"official_fallback": True}}})
    )

    provider = directory.provider("apimart")
    call = provider.create_call(ImageRequest(prompt="x"), ProviderInputs(), callback_url=None)

    assert isinstance(provider, ApimartProvider)
    assert call.json is not None
    assert call.json["official_fallback"] is True


def test_given_pmock_options_in_the_document_when_building_then_the_status_path_is_used(
    settings: Settings,
) -> None:
    document = {"options": {"pmock": {"status_path": "/api/ai/tasks/{task_id}"}}}
    directory = ProviderDirectory(settings, FakeLoader(document))

    provider = directory.provider("pmock")

    assert isinstance(provider, PmockProvider)
    assert provider.status_call("t-1").path == "/api/ai/tasks/t-1"


def test_given_a_provider_without_options_when_building_then_it_has_the_defaults(
    settings: Settings,
) -> None:
    directory = ProviderDirectory(settings, FakeLoader({"options": {"pmock": {}}}))

    provider = directory.provider("apimart")

    assert isinstance(provider, ApimartProvider)
    assert provider.options.official_fallback is False


def test_given_an_unknown_name_when_asking_for_the_adapter_then_it_is_a_400_naming_known_ones(
    settings: Settings,
) -> None:
    directory = ProviderDirectory(settings, FakeLoader({}))

    with pytest.raises(InvalidRequest) as caught:
        directory.provider("midjourney")

    assert (caught.value.code, caught.value.status_code) == ("unknown_provider", 400)
    assert "apimart" in caught.value.message


def test_given_prices_in_the_document_when_estimating_then_the_directory_uses_them(
    settings: Settings, template_document: str
) -> None:
    directory = ProviderDirectory(settings, FakeLoader(template_document))
    request = ImageRequest(prompt="x", size="2048x2048", quality="high")
    plan = ApimodelsProvider().plan_size(request)

    assert directory.estimate("apimodels", request, plan) == 0.10
    assert directory.estimate("apimart", request, None) is None
    assert directory.price("apimart") is None


def test_given_a_breaker_for_one_provider_when_asked_then_only_its_fields_are_set(
    settings: Settings,
) -> None:
    document = json.dumps({"breaker": {"apimart": {"failures": 3, "cooldown_seconds": 10}}})
    directory = ProviderDirectory(settings, FakeLoader(document))

    apimart = directory.breaker("apimart")

    assert (apimart.failures, apimart.window_seconds, apimart.cooldown_seconds) == (3, None, 10)
    assert directory.breaker("pmock").failures is None


def test_given_a_zero_ttl_when_asked_twice_then_the_document_is_read_again(
    settings: Settings,
) -> None:
    loader = FakeLoader({"order": ["apimart"]})
    directory = ProviderDirectory(settings, loader, ttl_seconds=0)

    first = directory.order()
    loader.document = {"order": ["pmock"], "disabled": ["apimart"]}
    second = directory.order()

    assert (first, second) == (["apimart"], ["pmock"])
    assert directory.enabled("apimart") is False
    assert loader.reads == 3


def test_given_a_long_ttl_when_asked_twice_then_the_document_is_read_once(
    settings: Settings,
) -> None:
    loader = FakeLoader({"order": ["apimart"]})
    directory = ProviderDirectory(settings, loader, ttl_seconds=3600)

    first = directory.order()
    loader.document = {"order": ["pmock"]}
    second = directory.order()

    assert (first, second, loader.reads) == (["apimart"], ["apimart"], 1)


def test_given_a_zero_ttl_when_the_options_change_then_a_fresh_adapter_carries_them(
    settings: Settings,
) -> None:
    loader = FakeLoader({"options": {"apimart": {"official_fallback": False}}})
    directory = ProviderDirectory(settings, loader, ttl_seconds=0)

    before = directory.provider("apimart")
    loader.document = {"options": {"apimart": {"official_fallback": True}}}
    after = directory.provider("apimart")

    assert isinstance(before, ApimartProvider)
    assert isinstance(after, ApimartProvider)
    assert (before.options.official_fallback, after.options.official_fallback) == (False, True)


def test_given_a_bad_edit_after_a_good_one_then_the_last_good_configuration_is_kept(
    settings: Settings,
) -> None:
    loader = FakeLoader({"order": ["pmock"]})
    directory = ProviderDirectory(settings, loader, ttl_seconds=0)
    assert directory.order() == ["pmock"]

    loader.document = {"order": ["no-such-provider"]}

    assert directory.order() == ["pmock"]  # an operator's typo does not take the API down


def test_given_a_bad_document_from_the_start_then_the_operator_error_is_raised(
    settings: Settings,
) -> None:
    directory = ProviderDirectory(settings, FakeLoader({"order": ["no-such-provider"]}))

    with pytest.raises(GatewayError) as caught:
        directory.order()

    assert caught.value.code == "providers_config_invalid"
