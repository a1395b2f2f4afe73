"""A heal that moves things back (no stickiness, VRRP preemption) is an outage with a floor of its own: the group's
orderly move onto the returned node, or a preemption's zero; a move that is not onto the healed node has none."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lab.floors import REQUEST, STOPPED
from lab.history import History, Op
from provision import active_active, keepalived
from provision.pacemaker_floor import group_floor

pytestmark = pytest.mark.unit

OPS = (Path(__file__).parent / "data" / "crm_mon_ops.xml").read_text()  # real crm_mon -1 -o: node1's starts
CIB = (
    '<resources><group id="g_mysql"><primitive id="p_ip_mysql"/><primitive id="p_fs_mysql"/>'
    '<primitive id="p_mysql"/></group></resources>'
)
HEAL_AT = 1796125400.0


def _line(epoch: float, node: str, text: str) -> str:
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime(epoch)) + f".{round(epoch % 1 * 1000):03d}"
    return f"{stamp} {node} pacemaker-controld  [76] (do_lrm_rsc_op) \tnotice: {text} | op_key=x"


class FakeCtx:
    """What group_floor reads of a lab: crm_mon and the CIB, and each node's pacemaker.log by grep."""

    def __init__(self, logs: dict[str, list[str]], shared_clock: bool = True) -> None:
        self.logs = logs
        self.opts = SimpleNamespace(token_ms=3000, consensus_ms=3600, token_coefficient_ms=650)
        self.provider = SimpleNamespace(shared_clock=shared_clock, run=self._run)

    def ask(self, command: str) -> str:
        return OPS if command.startswith("crm_mon") else CIB

    def _run(self, node: str, command: str, timeout: float) -> Any:
        needle = command.split("'")[1]
        return SimpleNamespace(stdout="\n".join(x for x in self.logs.get(node, []) if needle in x))


def _ok(t: float) -> Op:
    return Op(t, "mysql-writer", "ok", "write", service="mysql")


def _failback_logs() -> dict[str, list[str]]:
    return {
        "node2": [_line(HEAL_AT + 20.0, "node2", STOPPED.format(resource="p_mysql", node="node2"))],
        "node1": [_line(HEAL_AT + 21.0, "node1", REQUEST.format(resource="p_mysql", node="node1"))],
    }


def test_a_group_moved_back_onto_the_healed_node_has_an_orderly_floor() -> None:
    h = History([_ok(HEAL_AT + 19.5), _ok(HEAL_AT + 22.0)])  # last answer on node2, first on node1
    heal = [("heal:crash", "node1", HEAL_AT)]
    fl = group_floor(FakeCtx(_failback_logs()), "mysql", "g_mysql", None, {"g_mysql": "node2"},
                     {"g_mysql": "node1"}, True, heal, h)  # fmt: skip
    assert fl is not None and fl.complete
    assert fl.membership_ms == 0  # the node rejoined before anything moved back: no membership change on the path
    assert set(fl.chain_ms) == {"node1:p_ip_mysql:start", "node1:p_fs_mysql:start"}  # node2 recorded no stops
    assert (fl.stop_ms, fl.answer_ms) == (500, 1000)
    assert fl.method.startswith("a move back onto the returned node")


def test_a_move_that_is_not_onto_the_healed_node_is_no_failback() -> None:
    heal = [("heal:crash", "node2", HEAL_AT)]  # node2 healed, yet the group went to node1
    ctx = FakeCtx(_failback_logs())
    assert group_floor(ctx, "mysql", "g_mysql", None, {"g_mysql": "node2"}, {"g_mysql": "node1"}, False, heal,
                       History([])) is None  # fmt: skip
    # a fault's move is still off its target only
    crash = [("crash", "node1", HEAL_AT)]
    assert group_floor(ctx, "mysql", "g_mysql", None, {"g_mysql": "node2"}, {"g_mysql": "node1"}, True, crash,
                       History([])) is None  # fmt: skip


def test_a_vrrp_preemption_onto_the_healed_node_has_a_floor_of_zero() -> None:
    ctx: Any = SimpleNamespace(opts=SimpleNamespace())
    before, after = {"vip": "haproxy2"}, {"vip": "haproxy1"}
    fl = active_active.floor(ctx, "api", before, after, False, [("heal:crash", "haproxy1", HEAL_AT)], History([]))
    assert fl is not None and fl.total_ms == 0 and fl.complete
    assert fl.limit_ms(3050) == 3050  # a preemption is allowed the history's resolution, no more
    # healed elsewhere, or the VIP stayed: nothing to floor
    assert active_active.floor(ctx, "api", before, after, False, [("heal:crash", "haproxy2", 1.0)], History([])) is None
    assert active_active.floor(ctx, "api", after, after, False, [("heal:crash", "haproxy1", 1.0)], History([])) is None


def test_a_fault_that_moved_the_vip_keeps_its_vrrp_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keepalived, "vrrp_bounds_ms", lambda opts: {"silent_floor_ms": 2000})
    ctx: Any = SimpleNamespace(opts=SimpleNamespace())
    fl = active_active.floor(ctx, "api", {"vip": "haproxy1"}, {"vip": "haproxy2"}, True,
                             [("crash", "haproxy1", 1.0)], History([]))  # fmt: skip
    assert fl is not None and fl.total_ms == 2000
