"""provision/pacemaker_groups.pending: what a settle that timed out says was still to do (a fake provider's canned
outputs, in the formats Pacemaker 2.1.5 prints); provision/pacemaker.scaled_timeouts on crm text."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from provision.pacemaker_groups import pending

pytestmark = pytest.mark.unit

SIMULATE = """Current cluster status:
  * Node List:
    * Online: [ node1 node2 ]

  * Full List of Resources:
    * Resource Group: g_mysql:
      * p_mysql\t(ocf:heartbeat:mysql):\t FAILED node1

Transition Summary:
  * Recover    p_mysql     ( node1 )
"""
MON = """Cluster Summary:
  * 2 nodes configured

Failed Resource Actions:
  * p_mysql 20s-interval monitor on node1 could not be executed (Timed Out: Resource agent did not complete within 10s)
"""


def ctx(outputs: dict[str, tuple[bool, str, str]]) -> SimpleNamespace:
    def run(node: str, cmd: str, timeout: float = 0) -> SimpleNamespace:
        ok, out, err = outputs[cmd.split()[0]]
        return SimpleNamespace(ok=ok, stdout=out, stderr=err)

    return SimpleNamespace(provider=SimpleNamespace(run=run))


def test_pending_names_the_planned_actions_and_the_failures() -> None:
    said = pending(ctx({"crm_simulate": (True, SIMULATE, ""), "crm_mon": (True, MON, "")}), "node1")
    assert "still to do: * Recover    p_mysql     ( node1 )" in said
    assert "failed actions: * p_mysql 20s-interval monitor on node1 could not be executed" in said


def test_pending_says_nothing_and_none_when_the_cluster_has_neither() -> None:
    calm = SIMULATE.split("Transition Summary:")[0] + "Transition Summary:\n"
    said = pending(ctx({"crm_simulate": (True, calm, ""), "crm_mon": (True, "Cluster Summary:\n", "")}), "node1")
    assert said == "still to do: nothing; failed actions: none"


def test_pending_passes_on_why_the_scheduler_could_not_be_asked() -> None:
    down = {
        "crm_simulate": (False, "", "Could not connect to the CIB: Transport endpoint is not connected"),
        "crm_mon": (False, "", ""),
    }
    assert "Could not connect to the CIB" in pending(ctx(down), "node1")


def test_scaled_timeouts_multiplies_op_timeouts_and_sets_a_default() -> None:
    from provision.pacemaker import scaled_timeouts

    crm = 'primitive p ocf:pacemaker:ping params timeout="1" \\\n    op monitor interval="10s" timeout="20s"\n'
    assert scaled_timeouts(crm, 1) == crm
    out = scaled_timeouts(crm, 6)
    assert 'timeout="120s"' in out and 'params timeout="1"' in out and 'interval="10s"' in out
    assert out.rstrip().endswith("op_defaults timeout=120s")
