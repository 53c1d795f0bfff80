"""Provider simulator, runtime profiles: ``/_sim/profile`` changes a provider's latency (real
seconds) and failure rate while the simulator runs; ``DELETE`` resets, ``GET`` shows."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.simulator import ProviderSimulator
from tests.devstack.support import API_KEY, mountsea_create, mountsea_query, mountsea_task_id


@pytest.fixture
def slow_sim() -> Iterator[ProviderSimulator]:
    """A simulator at documented latencies (a mountsea-async task takes 30 s or more)."""
    with ProviderSimulator(time_scale=1.0, api_key=API_KEY) as simulator:
        yield simulator


def profile_url(sim: ProviderSimulator) -> str:
    return f"{sim.base_url}/_sim/profile"


def test_a_profile_is_set_shown_and_reset(slow_sim: ProviderSimulator, http: httpx.Client) -> None:
    # Given no profile
    assert http.get(profile_url(slow_sim)).json() == {}
    # When apimart gets one
    body = {"provider": "apimart", "latency_seconds": 3, "fail_rate": 0.25}
    assert http.post(profile_url(slow_sim), json=body).status_code == 200
    # Then GET shows it, and DELETE forgets it
    shown = http.get(profile_url(slow_sim)).json()
    assert shown == {"apimart": {"latency_seconds": 3.0, "fail_rate": 0.25}}
    assert http.delete(profile_url(slow_sim)).json() == {}


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "nobody", "latency_seconds": 1},
        {"provider": "apimart", "latency_seconds": -1},
        {"provider": "apimart", "fail_rate": 2},
        {"provider": "apimart", "latency": 1},
        ["apimart"],
    ],
    ids=["unknown-provider", "negative-latency", "rate-over-1", "unknown-field", "not-object"],
)
def test_a_bad_profile_is_a_400_saying_why(
    slow_sim: ProviderSimulator, http: httpx.Client, body: object
) -> None:
    answer = http.post(profile_url(slow_sim), json=body)

    assert answer.status_code == 400 and answer.json()["error"]
    assert http.get(profile_url(slow_sim)).json() == {}


def test_a_profiled_latency_applies_to_new_tasks_in_real_seconds(
    slow_sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given mountsea-async profiled to finish at once (its documented latency is 30 s or more)
    http.post(profile_url(slow_sim), json={"provider": "mountsea-async", "latency_seconds": 0})
    # When a task is created and queried
    done = mountsea_task_id(http, slow_sim)
    # Then it is completed; after a reset, a new task runs its documented time again
    assert mountsea_query(http, slow_sim, done).json()["status"] == "completed"
    http.delete(profile_url(slow_sim))
    running = mountsea_task_id(http, slow_sim)
    assert mountsea_query(http, slow_sim, running).json()["status"] != "completed"


def test_a_fail_rate_of_one_makes_every_create_a_503_at_that_provider_only(
    slow_sim: ProviderSimulator, http: httpx.Client
) -> None:
    # Given mountsea-async failing every call
    http.post(profile_url(slow_sim), json={"provider": "mountsea-async", "fail_rate": 1})
    # When it and apimart are asked for a task
    failed = mountsea_create(http, slow_sim)
    apimart = http.post(
        f"{slow_sim.provider_base_url('apimart')}/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "a lighthouse"},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    # Then mountsea-async answers 503, apimart works
    assert failed.status_code == 503
    assert apimart.status_code == 200, apimart.text
