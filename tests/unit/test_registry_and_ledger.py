"""lab/registry.py (which labs are up) and lab/handrun.py's ledger (what `halab fault` applied), daemon-free."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lab import handrun, registry
from lab.scenario import load_scenario, renamed
from lab.targets import Live

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HALAB_STATE_DIR", str(tmp_path / "state"))


def test_registry_remembers_provider_profile_and_provisioning() -> None:
    sc = renamed(load_scenario("active-passive"), "ap2")
    registry.record(sc, "netns", "hardened")
    first = registry.load("ap2", "netns")
    assert first and (first.provider, first.profile, first.provisioned, first.topology) == (
        "netns", "hardened", False, "active-passive")  # fmt: skip
    registry.record(sc, "netns", "hardened", provisioned=True)
    again = registry.load("ap2", "netns")
    assert again and again.provisioned and again.since == first.since  # `since` is when it came up
    registry.record(sc, "netns", "guide")  # another profile: not provisioned for it
    assert not registry.load("ap2", "netns").provisioned  # type: ignore[union-attr]
    assert [e.lab for e in registry.find("ap2")] == ["ap2"] and Path(first.scenario).is_absolute()
    registry.forget("ap2", "netns")
    assert registry.entries() == []


class FakeProvider:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.calls: list[tuple[str, ...]] = []

    def crash(self, node: str) -> None:
        self.calls.append(("crash", node))

    def freeze(self, node: str) -> None:
        self.calls.append(("freeze", node))

    def thaw(self, node: str) -> None:
        self.calls.append(("thaw", node))


def fake_lab(tmp_path: Path) -> Any:
    sc = load_scenario("active-passive")
    provider = FakeProvider(tmp_path / "lab")
    lab = SimpleNamespace(scenario=sc, provider=provider, provider_name="netns")
    lab.live = lambda: Live(sc, lambda n: True, lambda: {"g_mysql": "node2"}, lambda n: [], random.Random(1))
    lab.restart_node = lambda node: provider.calls.append(("restart", node))
    return lab


def test_the_ledger_heals_exactly_the_fault_it_is_asked_to(tmp_path: Path) -> None:
    from lab.faults import make

    lab = fake_lab(tmp_path)
    ledger = handrun.Ledger(lab)
    crash_id, crash = ledger.apply(make("crash", "holder:g_mysql"))
    freeze_id, _ = ledger.apply(make("freeze", "node1"))
    assert crash.target == "node2" and crash.chosen_by == "holder:g_mysql"
    # a later `halab` process reads the same ledger back
    again = handrun.Ledger(lab)
    assert [(i, f.describe()) for i, f in again.applied()] == [
        (crash_id, "crash node2 (holder:g_mysql)"), (freeze_id, "freeze node1")]  # fmt: skip
    again.heal(crash_id)
    assert lab.provider.calls == [("crash", "node2"), ("freeze", "node1"), ("restart", "node2")]
    assert [i for i, _ in handrun.Ledger(lab).applied()] == [freeze_id]
    with pytest.raises(LookupError, match=f"no applied fault with id {crash_id}"):
        handrun.Ledger(lab).heal(crash_id)
    assert handrun.recording(lab) is None  # nothing records: faults are kept in the ledger only


def test_the_same_fault_twice_is_refused_until_healed(tmp_path: Path) -> None:
    from lab.faults import FaultError, make

    ledger = handrun.Ledger(fake_lab(tmp_path))
    ledger.apply(make("freeze", "node1"))
    with pytest.raises(FaultError, match="applied already"):
        ledger.apply(make("freeze", "node1"))
