"""lab/play.py (harness only, a fake lab): a schedule whose cluster never comes back still ends in a report that
judges what was recorded (Trial.finish_unrecovered, with the wait's own words as the failed recovery check); one
that recovers is finished as a test would."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lab import play
from lab.schedule import Schedule, Wait
from lab.wait import WaitTimeout

pytestmark = pytest.mark.unit


class FakeTrial:
    def __init__(self, lab: Any) -> None:
        self.lab, self.fault_log, self.applied, self.calls = lab, [], [], []  # type: ignore[var-annotated]

    def __enter__(self) -> FakeTrial:
        return self

    def __exit__(self, *exc: object) -> None:
        self.calls.append("exit")

    def finish(self, **kw: Any) -> None:
        self.calls.append(("finish", kw))

    def finish_unrecovered(self, reason: str, **kw: Any) -> None:
        self.calls.append(("finish_unrecovered", reason, kw))
        self.lab.report.checks.append(SimpleNamespace(name="schedule-x: recovery", passed=False, detail=reason))


def fake_lab(settles: bool) -> Any:
    report = SimpleNamespace(notes=[], checks=[], timings_s={}, summary_table=lambda: "table", verdict=None)
    lab: Any = SimpleNamespace(report=report, seed=7, provider_name="netns", provider_reason="test")
    lab.scenario = SimpleNamespace(name="never-a-real-lab-name")
    lab.provider = SimpleNamespace(is_up=lambda: True)
    lab.up = lab.provision = lambda: None
    lab.ctx = None
    lab.playbook = SimpleNamespace(services=lambda ctx: ["mysql"], recovery_deadline_s=lambda ctx: 1.5)
    lab.profile = "guide"
    trial = FakeTrial(lab)
    lab.trial = lambda name: trial

    def settle(timeout: float | None = None) -> None:
        if not settles:
            raise WaitTimeout("timed out after 1.5s waiting for groups to run whole")

    lab.settle = settle
    lab.write_report = lambda: Path("report.json")
    return lab


@pytest.mark.parametrize("settles", [True, False])
def test_a_schedule_that_never_recovers_is_still_judged(settles: bool, tmp_path: Path) -> None:
    lab = fake_lab(settles)
    sched = Schedule(tmp_path / "x.yaml", "one wait", 1, ())
    out: list[str] = []
    play.run(lab, sched, [Wait("settled")], echo=out.append)
    calls = lab.trial("x").calls
    if settles:
        assert [c[0] for c in calls[:-1]] == ["finish"] and calls[-1] == "exit"
        assert calls[0][1]["bounds_ms"] == {"mysql": 1500}
    else:
        assert calls[0][0] == "finish_unrecovered" and "timed out after 1.5s" in calls[0][1]
        assert calls[0][2]["bounds_ms"] == {"mysql": 1500} and calls[-1] == "exit"
        assert any(line.startswith("FAIL schedule-x: recovery") for line in out)
        assert any("not recovered" in line for line in out)


def test_a_cluster_that_never_settles_is_a_wait_that_gave_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pacemaker's own wait (crm_resource --wait) timing out is the same kind of failure as a condition's: the
    schedule run above judges it instead of ending in a traceback."""
    from provision import pacemaker_groups

    monkeypatch.setattr(pacemaker_groups, "wait_settled", lambda *a, **kw: {"g_mysql": "node1"})
    monkeypatch.setattr(pacemaker_groups, "pending", lambda ctx, node: "still to do: Move p_mysql")
    failed = SimpleNamespace(ok=False, stderr="Timed out waiting for transition")
    provider = SimpleNamespace(run=lambda node, cmd, timeout: failed, is_running=lambda n: True)
    ctx: Any = SimpleNamespace(cluster_nodes=["node1", "node2"], provider=provider)
    with pytest.raises(WaitTimeout, match="did not settle within 5s: Timed out.*Move p_mysql"):
        pacemaker_groups.settle(ctx, ["g_mysql"], timeout=5)
