"""tests/acceptance/fenced_freeze.py brings the frozen node back whatever its trial does: powered on again (once) when
it was fenced, thawed when the trial failed before the fence, and the trial's own exception is what propagates even
when that recovery fails too. A fake lab stands in for the VMs and the cluster."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from lab.providers.base import Result
from lab.scenario_model import ClusterOptions
from tests.acceptance.fenced_freeze import fenced_freeze

pytestmark = pytest.mark.unit

NODE, OTHER, GROUP = "node1", "node2", "g_mysql"


def crm_mon(node_attrs: str) -> str:
    return (
        f'<pacemaker-result><nodes><node name="{NODE}" {node_attrs}/>'
        f'<node name="{OTHER}" online="true" unclean="false" pending="false"/></nodes></pacemaker-result>'
    )


class FakeProvider:
    """Two VMs: `fences` says whether the peer powers the frozen one off (at once)."""

    emulated = False

    def __init__(self, fences: bool) -> None:
        self.fences = fences
        self.running = {NODE: True, OTHER: True}
        self.paused: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    def is_running(self, node: str) -> bool:
        return self.running[node]

    def freeze(self, node: str) -> None:
        self.paused.add(node)
        if self.fences:
            self.running[node] = False
            self.paused.discard(node)

    def thaw(self, node: str) -> None:
        self.calls.append(("thaw", node))
        self.paused.discard(node)

    def run(self, node: str, cmd: str, *, timeout: float = 60.0, check: bool = False) -> Result:
        if cmd.startswith("crm_mon"):
            up = self.running[NODE] and NODE not in self.paused
            out = crm_mon('online="true" unclean="false" pending="false"' if up else 'online="false" unclean="true"')
        elif cmd.startswith("stonith_admin"):
            out = f"reboot of {NODE} successful: delegate={OTHER}"
        else:
            out = ""
        return Result(node, cmd, 0, out, "")


class FakeTrial:
    def __init__(self, lab: FakeLab) -> None:
        self.lab = lab
        self.applied: list[str] = []

    def fault(self, name: str, node: str) -> float:
        assert name == "freeze"
        self.lab.provider.freeze(node)
        self.applied.append(node)
        if self.lab.fail_at == "fault":
            raise AssertionError("boom: the fault")
        return 0.0

    def finish(self, **_: Any) -> Any:
        if self.lab.fail_at == "finish":
            raise AssertionError("boom: finish")
        return SimpleNamespace(checks=[])


class FakeLab:
    def __init__(self, *, fences: bool = True, fail_at: str = "", restart_fails: bool = False) -> None:
        self.provider = FakeProvider(fences)
        self.fail_at, self.restart_fails = fail_at, restart_fails
        self.opts = ClusterOptions(token_ms=1000, consensus_ms=1200, two_node=True, no_quorum_policy="ignore",
                                   stonith=True)  # fmt: skip
        self.ctx = SimpleNamespace(provider=self.provider, opts=self.opts, measured={})
        self.scenario = SimpleNamespace(services={"mysql": SimpleNamespace(group=GROUP)})
        self.cluster_nodes = [NODE, OTHER]
        self.pcmk = SimpleNamespace(failover_bound_ms=lambda service: 30_000)
        self.report = SimpleNamespace(notes=[])
        self.restarted: list[str] = []

    def settle(self, *, on: str | None = None, avoid: str | None = None, timeout: float | None = None) -> dict:
        if self.fail_at == "settle" and avoid:
            raise AssertionError("boom: settle")
        return {GROUP: on or NODE}

    def status(self) -> str:
        return "status"

    @contextmanager
    def trial(self, name: str) -> Iterator[FakeTrial]:
        t = FakeTrial(self)
        try:
            yield t
        except BaseException:
            for n in t.applied:  # as Trial.__exit__ heals a freeze: a thaw
                self.provider.thaw(n)
            raise

    def restart_node(self, node: str) -> None:
        self.restarted.append(node)
        if self.restart_fails:
            raise RuntimeError("restart failed too")
        self.provider.running[node] = True


def test_success_brings_the_fenced_node_back_once() -> None:
    lab = FakeLab()
    fenced_freeze(lab, "freeze-fenced")  # type: ignore[arg-type]
    assert lab.restarted == [NODE]
    assert lab.provider.running[NODE]


def test_failure_after_the_fence_brings_it_back_and_keeps_the_error() -> None:
    lab = FakeLab(fail_at="settle")
    with pytest.raises(AssertionError, match="boom: settle"):
        fenced_freeze(lab, "freeze-fenced")  # type: ignore[arg-type]
    assert lab.restarted == [NODE]
    assert lab.provider.running[NODE]
    assert any(f"{NODE} powered on again" in n for n in lab.report.notes)


def test_failure_in_finish_brings_it_back_once() -> None:
    lab = FakeLab(fail_at="finish")
    with pytest.raises(AssertionError, match="boom: finish"):
        fenced_freeze(lab, "freeze-fenced")  # type: ignore[arg-type]
    assert lab.restarted == [NODE]


def test_failure_before_the_fence_thaws_it_and_powers_nothing_on() -> None:
    lab = FakeLab(fences=False, fail_at="fault")
    with pytest.raises(AssertionError, match="boom: the fault"):
        fenced_freeze(lab, "freeze-fenced")  # type: ignore[arg-type]
    assert NODE not in lab.provider.paused and lab.provider.running[NODE]
    assert ("thaw", NODE) in lab.provider.calls
    assert lab.restarted == []
    assert any("thawed" in n for n in lab.report.notes)


def test_a_failed_recovery_does_not_mask_the_trial_error() -> None:
    lab = FakeLab(fail_at="settle", restart_fails=True)
    with pytest.raises(AssertionError, match="boom: settle") as info:
        fenced_freeze(lab, "freeze-fenced")  # type: ignore[arg-type]
    assert lab.restarted == [NODE]
    assert any("restart failed too" in n for n in info.value.__notes__)
    assert any("could not bring" in n for n in lab.report.notes)


def test_a_failed_recovery_on_the_success_path_raises() -> None:
    lab = FakeLab(restart_fails=True)
    with pytest.raises(RuntimeError, match="restart failed too"):
        fenced_freeze(lab, "freeze-fenced")  # type: ignore[arg-type]
    assert lab.restarted == [NODE]
