"""LAB_SERVICES narrows an active/passive run, or ch. 3's half of an API scenario, to some of its services (the TCG
smoke runs MySQL alone)."""

from __future__ import annotations

import pytest

from lab.providers import ProviderError
from lab.scenario import load_scenario
from lab.session import only_services

pytestmark = pytest.mark.unit


def test_empty_means_every_service() -> None:
    assert only_services(load_scenario("active-passive"), "") is None
    assert only_services(load_scenario("active-passive"), " , ") is None


def test_names_are_kept_in_the_order_given() -> None:
    assert only_services(load_scenario("active-passive"), "mysql") == ("mysql",)
    assert only_services(load_scenario("active-passive"), "rabbitmq, mysql") == ("rabbitmq", "mysql")


def test_an_unknown_service_is_named_with_the_file_and_the_choices() -> None:
    with pytest.raises(ProviderError) as exc:
        only_services(load_scenario("active-passive"), "mysql,postgres")
    msg = str(exc.value)
    assert "postgres" in msg and "scenarios/active-passive.yaml" in msg and "mysql, rabbitmq" in msg


@pytest.mark.parametrize(
    ("value", "words"), [("rabbitmq", "keep mysql"), ("mysql,keystone-public", "leave keystone-public")]
)
def test_an_api_scenario_narrowed_past_ch3s_half_is_refused_before_anything_is_built(
    value: str, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lab.session import Lab

    monkeypatch.setenv("LAB_SERVICES", value)
    with pytest.raises(ProviderError) as exc:
        Lab("api-cluster", provider="netns")  # refused before a provider is made: nothing to tear down
    assert str(exc.value).startswith(f"LAB_SERVICES={value}: ") and words in str(exc.value), str(exc.value)
