import pytest

from lab.checks.ordering import group_order, parse

pytestmark = pytest.mark.unit

MEMBERS = ["p_ip_mysql", "p_fs_mysql", "p_mysql"]


def line(ts: str, op: str, rsc: str, node: str, result: str = "ok") -> str:
    return (
        f"Nov 25 {ts} {node} pacemaker-controld  [147] (log_executor_event) \tnotice: Result of {op} "
        f"operation for {rsc} on {node}: {result} | CIB update 26, graph action confirmed; call=18 rc=0"
    )


ORDERLY = [
    line("12:00:00.100", "stop", "p_mysql", "node1"),
    line("12:00:01.000", "stop", "p_fs_mysql", "node1"),
    line("12:00:01.100", "stop", "p_ip_mysql", "node1"),
    "Nov 25 12:00:01.150 node2 pacemaker-controld [9] (do_state_transition) info: unrelated",
    line("12:00:01.200", "start", "p_ip_mysql", "node2"),
    line("12:00:01.500", "start", "p_fs_mysql", "node2"),
    line("12:00:03.900", "start", "p_mysql", "node2"),
]


def test_parse_reads_only_result_lines() -> None:
    res = parse(ORDERLY)
    assert [(r.op, r.resource, r.node) for r in res][:2] == [
        ("stop", "p_mysql", "node1"),
        ("stop", "p_fs_mysql", "node1"),
    ]
    assert len(res) == 6


def test_orderly_migration_passes_with_span() -> None:
    c = group_order(parse(ORDERLY), MEMBERS, "node1", "node2")
    assert c.passed, c.detail
    assert "3800 ms" in c.detail


def test_start_out_of_order_fails() -> None:
    bad = ORDERLY[:4] + [ORDERLY[5], ORDERLY[4], ORDERLY[6]]
    bad[4] = line("12:00:01.200", "start", "p_fs_mysql", "node2")
    bad[5] = line("12:00:01.500", "start", "p_ip_mysql", "node2")
    c = group_order(parse(bad), MEMBERS, "node1", "node2")
    assert not c.passed and "starts on node2" in c.detail


def test_start_before_old_node_stopped_fails() -> None:
    bad = list(ORDERLY)
    bad[2] = line("12:00:02.000", "stop", "p_ip_mysql", "node1")  # after p_ip_mysql started on node2
    c = group_order(parse(bad), MEMBERS, "node1", "node2")
    assert not c.passed and "stopped on node1 after" in c.detail


def test_failed_stop_fails() -> None:
    bad = list(ORDERLY)
    bad[1] = line("12:00:01.000", "stop", "p_fs_mysql", "node1", result="error")
    c = group_order(parse(bad), MEMBERS, "node1", "node2")
    assert not c.passed and "error" in c.detail


def test_a_member_that_never_started_fails_instead_of_crashing() -> None:
    c = group_order(parse(ORDERLY[:-1]), MEMBERS, "node1", "node2")
    assert not c.passed and "2 starts on node2" in c.detail


def test_an_earlier_trials_moves_are_left_out_by_since() -> None:
    """Two standby trials in one log: the second one's order is judged on its own lines only."""
    from datetime import datetime

    earlier = [ln.replace("Nov 25 12:", "Nov 25 11:") for ln in ORDERLY]
    assert len(parse(earlier + ORDERLY)) == 12
    since = datetime(2000, 11, 25, 11, 30)
    assert [r.time.hour for r in parse(earlier + ORDERLY, since=since)] == [12] * 6
