"""The observer must admit when it was blind: a checker that saw no sample cannot have seen a double VIP."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.history import History, JsonlRecorder, Op
from lab.observer import MAX_GAP_PERIODS, QUORUM_CALL_PERIODS, QUORUM_CMD, QUORUM_PERIODS, Observer
from lab.providers.base import Result

pytestmark = pytest.mark.unit


def observer(tmp_path) -> Observer:
    return Observer(SimpleNamespace(), ["192.168.42.101"], [], tmp_path, period_s=0.1)


def samples(*times: float) -> list[Op]:
    return [Op(t, "observer", "info", "vip-holders", {"192.168.42.101": ["node1"]}) for t in times]


def test_regular_samples_cover_the_trial(tmp_path) -> None:
    ok, detail = observer(tmp_path).coverage(History(samples(*[10 + i * 0.1 for i in range(50)])), since=11)
    assert ok, detail


def test_a_long_gap_after_the_fault_fails(tmp_path) -> None:
    gap = MAX_GAP_PERIODS * 0.1 + 1
    ok, detail = observer(tmp_path).coverage(History(samples(10, 10.1, 10.2, 10.2 + gap, 10.3 + gap)), since=10.15)
    assert not ok and "longest gap" in detail


def test_an_observer_error_fails(tmp_path) -> None:
    ops = samples(10, 10.1, 10.2, 10.3) + [Op(10.25, "observer", "info", "observer-error", None, error="EINVAL")]
    ok, detail = observer(tmp_path).coverage(History(sorted(ops, key=lambda o: o.time)), since=10)
    assert not ok and "EINVAL" in detail


def test_no_sample_after_the_fault_fails(tmp_path) -> None:
    ok, _ = observer(tmp_path).coverage(History(samples(10, 10.1)), since=20)
    assert not ok


# --- quorum samples ---------------------------------------------------------------------------------


class QuorumProvider:
    """node1 answers with a captured `corosync-quorumtool -s`; node2 hangs until released (a frozen corosync);
    node3 is powered off; node4's corosync is down."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.release = threading.Event()
        self.calls: dict[str, int] = {}
        self.scenario = SimpleNamespace(
            nodes_with_role=lambda role: [SimpleNamespace(name=n) for n in ("node1", "node2", "node3", "node4")]
        )

    def is_running(self, node: str) -> bool:
        return node != "node3"

    def run(self, node: str, cmd: str, *, timeout: float = 60.0, **_: object) -> Result:
        assert cmd == QUORUM_CMD and timeout == 0.2 * QUORUM_CALL_PERIODS
        self.calls[node] = self.calls.get(node, 0) + 1
        if node == "node2":
            self.release.wait()
            return Result(node, cmd, 124, "", "\n(timed out after 1s)")
        if node == "node4":
            return Result(node, cmd, 1, "", "Cannot initialize CMAP service\n")
        return Result(node, cmd, 0, self.text, "")


def test_a_node_that_does_not_answer_costs_its_own_sample_only(tmp_path) -> None:
    text = (Path(__file__).parent / "data" / "quorum" / "quorumtool-two-node.txt").read_text()
    provider = QuorumProvider(text)
    obs = Observer(provider, [], [], tmp_path, period_s=0.1, quorum_period_s=0.2)  # type: ignore[arg-type]
    obs.quorum_nodes = ["node1", "node2", "node3", "node4"]
    obs._qrec = JsonlRecorder(tmp_path / "observer-quorum.jsonl", "observer")
    obs._qpool = ThreadPoolExecutor(max_workers=4)
    try:
        began = time.monotonic()
        obs.sample_quorum()
        obs.sample_quorum()
        took = time.monotonic() - began
    finally:
        provider.release.set()
        obs._qpool.shutdown(wait=True)
        obs._qrec.close()
    assert took < 2 * 0.2 + 1.0  # two rounds of one period each, not held up by node2's hung call
    assert provider.calls == {"node1": 2, "node2": 1, "node4": 2}  # node2 not asked again while its call hangs
    ops = History.load(tmp_path / "observer-quorum.jsonl").select(f="quorum")
    assert len(ops) == 2 and all(o.process == "observer" for o in ops)
    first = ops[0].value
    assert list(first) == ["node1", "node2", "node3", "node4"]
    assert first["node1"]["quorate"] is True and first["node1"]["members"] == ["node1", "node2"]
    assert first["node2"] == {"error": "no answer within 200 ms"}
    assert first["node3"] == {"error": "not running"}
    assert first["node4"] == {"error": "rc 1: Cannot initialize CMAP service"}


def test_quorum_nodes_default_to_the_cluster_nodes_and_a_topology_without_any_samples_none(tmp_path) -> None:
    provider = QuorumProvider("")
    provider.release.set()
    provider.scenario = SimpleNamespace(nodes=[], nodes_with_role=lambda role: [])  # active/active: no corosync
    obs = Observer(provider, [], [], tmp_path, period_s=0.05)  # type: ignore[arg-type]
    obs.start()
    obs.stop()
    assert obs.quorum_nodes == [] and obs.quorum_samples == 0
    assert not (tmp_path / "observer-quorum.jsonl").exists()
    assert obs.quorum_period_s == 0.05 * QUORUM_PERIODS


# --- VIP and mount samples: each node on its own -----------------------------------------------------------

VIP = "192.168.42.101"


class LookProvider:
    """node1 answers at once holding the VIP; node2 hangs until released (a guest libvirtd is destroying); node3 is
    powered off; node4's look fails."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.off = {"node3"}
        self.looks: dict[str, int] = {}
        self.scenario = SimpleNamespace(nodes={n: None for n in ("node1", "node2", "node3", "node4")})

    def is_running(self, node: str) -> bool:
        return node not in self.off

    def observe(self, node: str) -> tuple[list[str], list[tuple[str, str]]]:
        self.looks[node] = self.looks.get(node, 0) + 1
        if node == "node2" and self.looks[node] > 1:
            self.release.wait()
            return [], []
        if node == "node4":
            raise RuntimeError("node4: could not read addresses and mounts")
        return ([VIP] if node in ("node1", "node2") else []), []


def test_a_node_whose_look_hangs_or_fails_costs_its_own_sample_only(tmp_path) -> None:
    """The sample goes on after look_wait_s without node2 (hung) and node4 (failed): node1's holding is recorded,
    node2 is carried as last seen and named unanswered, not asked twice; once node2 answers, the stretch it went
    unanswered is recorded; a second holder carried from a silent node is no sighting of a double VIP."""
    from lab.checks.split_brain import vip_holders, vip_timeline

    p = LookProvider()
    obs = Observer(p, [VIP], [], tmp_path, period_s=0.02)  # type: ignore[arg-type]
    obs.sample()  # node2 answers the first look: it holds the VIP too (a double VIP, seen)
    began = time.monotonic()
    for _ in range(3):
        obs.sample()
    assert time.monotonic() - began < 3 * obs.look_wait_s + 1  # never stalled behind node2
    assert p.looks["node2"] == 2  # asked once since the first look, waited for since
    p.release.set()
    time.sleep(0.05)
    obs.sample()
    obs.stop()
    h = History([Op.from_dict(json.loads(ln)) for ln in (tmp_path / "observer.jsonl").read_text().splitlines()])
    holders = [o.value[VIP] for o in h.select(f="vip-holders")]
    assert holders[:4] == [["node1", "node2"]] * 4, holders  # node2 carried as last seen while silent
    assert holders[4] == ["node1"]
    silent = [o.value for o in h.select(f="unanswered")]
    assert len(silent) >= 4 and all("node4" in s for s in silent) and "node2" in silent[1]
    gaps = {o.value["node"]: o.value for o in h.select(f="look-gap")}
    assert gaps["node2"]["ended"] == "answered" and gaps["node4"]["ended"] == "never answered"
    # the double VIP: seen once (the first sample), never from node2's silence
    assert not vip_holders(h).passed and "1 samples" in vip_holders(h).detail
    assert [nodes for _, nodes in vip_timeline(h, VIP)] == [("node1", "node2"), ("node1",)]


def look_gap(t: float, node: str, ms: int, ended: str) -> Op:
    return Op(t, "observer", "info", "look-gap", {"node": node, "ms": ms, "ended": ended, "why": "no answer"})


@pytest.mark.parametrize("ended, ok", [("answered", False), ("never answered", False), ("powered off", True)])
def test_a_node_unanswered_past_the_limit_fails_coverage_unless_it_was_found_off(tmp_path, ended, ok) -> None:
    long_ms = int(MAX_GAP_PERIODS * 0.1 * 1000) + 500
    ops = samples(*[10 + i * 0.1 for i in range(50)]) + [look_gap(14.0, "node2", long_ms, ended)]
    passed, detail = observer(tmp_path).coverage(History(sorted(ops, key=lambda o: o.time)), since=10)
    assert passed is ok and f"node2 {long_ms} ms ({ended}" in detail
