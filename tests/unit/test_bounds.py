from pathlib import Path

import pytest

from lab.bounds import (
    duration_ms,
    failover_bound_ms,
    group_members,
    latest_exec_ms,
    monitor_recovery_bound_ms,
    monitor_restart_limit_ms,
    op_exec_ms,
    op_ms,
)
from lab.scenario import ClusterOptions

pytestmark = pytest.mark.unit

CIB = """<resources><group id="g_mysql">
  <primitive id="p_ip_mysql"><operations><op name="monitor" interval="30s"/></operations></primitive>
  <primitive id="p_fs_mysql"><operations><op name="start" timeout="60s" interval="0"/>
    <op name="stop" timeout="180s" interval="0"/></operations></primitive>
  <primitive id="p_mysql"><operations><op name="monitor" interval="20s" timeout="10s"/>
    <op name="start" timeout="120s" interval="0"/><op name="stop" timeout="2min" interval="0"/></operations></primitive>
</group></resources>"""

OPTS = ClusterOptions(token_ms=1000, consensus_ms=1200, two_node=True, no_quorum_policy="ignore", stonith=False)


@pytest.mark.parametrize("text,ms", [("20s", 20000), ("2min", 120000), ("500ms", 500), ("7", 7000), (None, 20000)])
def test_durations(text: str | None, ms: int) -> None:
    assert duration_ms(text) == ms


def test_bad_duration_names_the_text() -> None:
    with pytest.raises(ValueError, match="'soon'"):
        duration_ms("soon")


def test_members_in_order() -> None:
    assert group_members(CIB, "g_mysql") == ["p_ip_mysql", "p_fs_mysql", "p_mysql"]


def test_missing_start_timeout_is_pacemakers_default() -> None:
    assert op_ms(CIB, "p_ip_mysql", "start") == 20000


def test_failover_bound_adds_membership_and_start_timeouts() -> None:
    assert failover_bound_ms(OPTS, CIB, "g_mysql") == 1000 + 1200 + 20000 + 60000 + 120000
    assert failover_bound_ms(OPTS, CIB, "g_mysql", stop_first=True) == 202200 + 20000 + 180000 + 120000


def test_monitor_recovery_bound() -> None:
    assert monitor_recovery_bound_ms(CIB, "p_mysql") == 20000 + 10000 + 120000 + 120000


OPS = (Path(__file__).parent / "data" / "crm_mon_ops.xml").read_text()  # real crm_mon -1 -o output


def test_op_exec_ms_reads_the_latest_start() -> None:
    assert op_exec_ms(OPS, "node1", "p_ip_mysql", "start") == 185
    assert op_exec_ms(OPS, "node2", "p_ip_mysql", "start") is None


def test_the_restart_limit_takes_each_ops_latest_exec_time_else_its_timeout() -> None:
    """p_mysql started on node1 in 4123 ms and never stopped anywhere: monitor interval + timeout + that start + the
    stop's timeout, the detail saying which figure is measured where and which configured; node2, which never ran
    it, is limited by node1's start."""
    ms, how = monitor_restart_limit_ms(CIB, OPS, "node1", "p_mysql")
    assert ms == 20000 + 10000 + 120000 + 4123
    assert "start 4123 ms (measured on node1)" in how and "stop 120000 ms (its timeout" in how
    ms, how = monitor_restart_limit_ms(CIB, OPS, "node2", "p_mysql")
    assert ms == 20000 + 10000 + 120000 + 4123 and "measured on node1" in how


def test_the_latest_exec_time_says_where_it_came_from() -> None:
    assert latest_exec_ms(CIB, OPS, "node2", "p_mysql", "start") == (4123, "measured on node1")
    assert latest_exec_ms(CIB, OPS, "node1", "p_mysql", "stop") == (120000, "its timeout: none on record")
