"""provision/pacemaker_groups.pending: what a settle that timed out says was still to do (a fake provider's canned
outputs, in the formats Pacemaker 2.1.5 prints); provision/pacemaker.scaled_timeouts on crm text, and emulated_s;
wait_online against a node whose crm_mon answers change over time."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from provision import pacemaker
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


# crm_mon --output-as=xml, cut to what wait_online reads, in Pacemaker 2.1.5's attribute order
STARTING = '<pacemaker-result><pacemakerd sys_from="pacemakerd" state="starting_daemons"/></pacemaker-result>'
RUNNING_NO_DC = (
    '<pacemaker-result><pacemakerd sys_from="pacemakerd" state="running"/>'
    '<summary><current_dc present="false"/></summary><nodes/></pacemaker-result>'
)
ONLINE = (
    '<pacemaker-result><pacemakerd sys_from="pacemakerd" state="running"/>'
    '<summary><current_dc present="true" with_quorum="true"/></summary>'
    '<nodes><node name="node1" online="true"/><node name="node2" online="true"/></nodes></pacemaker-result>'
)


def test_daemons_running_reads_pacemakerds_state() -> None:
    from provision.pacemaker import daemons_running

    assert not daemons_running(None)
    assert not daemons_running(STARTING)
    assert daemons_running(RUNNING_NO_DC) and daemons_running(ONLINE)


def quorumtool(members: list[str]) -> str:
    """`corosync-quorumtool -s` as corosync 3.1.7 prints it (the fields parse_quorumtool needs)."""
    rows = "".join(f"         {i}          1 {n}\n" for i, n in enumerate(members, 1))
    return (
        "Quorum information\n------------------\nQuorate:          No\n\nVotequorum information\n"
        "----------------------\nExpected votes:   2\nHighest expected: 2\nTotal votes:      1\nQuorum:           2\n"
        "Flags:            2Node WaitForAll\n\nMembership information\n----------------------\n"
        f"    Nodeid      Votes Name\n{rows}"
    )


def staged(stages: list[tuple[float, str | None, list[str] | None]]) -> SimpleNamespace:
    """A node whose crm_mon answers `xml` from `after` seconds on (None: crm_mon fails, pacemakerd not up), and
    whose corosync lists `members` (None: corosync does not answer)."""
    import time

    t0 = time.monotonic()

    def run(node: str, cmd: str, timeout: float = 0) -> SimpleNamespace:
        _, xml, members = [st for st in stages if time.monotonic() - t0 >= st[0]][-1]
        if cmd.startswith("corosync-quorumtool"):
            out = quorumtool(members) if members is not None else ""
            err = "" if members is not None else "Cannot initialize QUORUM service"
            return SimpleNamespace(ok=members is not None, stdout=out, stderr=err)
        return SimpleNamespace(ok=xml is not None, stdout=xml or "", stderr="")

    # timers alone allow 2*(4*10+12)+10*10+12 = 216 ms for the election, 10*10+12 = 112 ms for the membership
    opts = SimpleNamespace(token_ms=10, consensus_ms=12, nodelist_size=2)
    return SimpleNamespace(provider=SimpleNamespace(run=run, emulated=False), opts=opts, measured={})


def test_the_daemons_start_is_not_charged_to_the_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow machine: pacemakerd takes longer than the timers' deadlines to start its daemons; the wait still
    succeeds, since the membership's and the election's deadlines count from the step before; it records both
    figures."""
    from provision import pacemaker

    monkeypatch.setattr(pacemaker, "DAEMONS_START_S", 5)
    both = ["node1", "node2"]
    c = staged(
        [(0.0, None, None), (0.3, STARTING, ["node1"]), (0.6, RUNNING_NO_DC, ["node1"]),
         (0.7, RUNNING_NO_DC, both), (0.8, ONLINE, both)]
    )  # fmt: skip
    assert pacemaker.wait_online(c, "node1", ["node2", "node1"]) == ONLINE  # type: ignore[arg-type]
    assert 0.6 <= c.measured["daemons_start_s"] < 0.8 <= c.measured["stack_online_s"] < 5


@pytest.mark.parametrize(
    "stages, expect_what",
    [
        ([(0.0, STARTING, None)], "pacemakerd on node1 to report its daemons running"),
        ([(0.0, RUNNING_NO_DC, ["node1"])], r"list \['node1', 'node2'\] as members; last seen: \['node1'\]"),
        ([(0.0, RUNNING_NO_DC, ["node1", "node2"])], "online with a DC and quorum"),
    ],
)  # fmt: skip
def test_each_step_past_its_deadline_is_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, stages: list[tuple[float, str | None, list[str] | None]], expect_what: str
) -> None:
    from lab.wait import WaitTimeout
    from provision import pacemaker

    monkeypatch.setattr(pacemaker, "DAEMONS_START_S", 0.3)
    with pytest.raises(WaitTimeout, match=expect_what):
        pacemaker.wait_online(staged(stages), "node1", ["node1", "node2"])  # type: ignore[arg-type]


def test_the_stacks_deadline_scales_with_an_emulated_cpu() -> None:
    from provision import pacemaker

    native = staged([(0.0, None, None)])
    emulated = staged([(0.0, None, None)])
    emulated.provider.emulated = True
    assert pacemaker.stack_deadline_s(native) == pytest.approx(0.216)  # type: ignore[arg-type]
    assert pacemaker.stack_deadline_s(emulated) == pytest.approx(0.216 * pacemaker.EMULATED_TIMEOUT_SCALE)  # type: ignore[arg-type]


def test_provisioning_commands_wait_as_much_longer_on_an_emulated_cpu_as_pacemakers_ops_do() -> None:
    native = SimpleNamespace(provider=SimpleNamespace(emulated=False))
    emulated = SimpleNamespace(provider=SimpleNamespace(emulated=True))
    assert pacemaker.emulated_s(native, 120) == 120  # type: ignore[arg-type]
    assert pacemaker.emulated_s(emulated, 120) == 120 * pacemaker.EMULATED_TIMEOUT_SCALE > 120  # type: ignore[arg-type]
