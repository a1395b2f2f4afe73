"""LAB_SERVICES narrows an active/passive run to some of its services (the TCG smoke runs MySQL alone)."""

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
