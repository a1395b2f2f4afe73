from __future__ import annotations

import pytest

from lab.checks import double_mounts, vip_holders, vip_moves, vip_timeline
from lab.checks.split_brain import split_brain_in_window
from lab.history import History, Op

pytestmark = pytest.mark.unit

VIP, VIP2 = "192.168.42.101", "192.168.42.100"


def holders(*samples: tuple[float, dict[str, list[str]]]) -> History:
    return History([Op(t, "observer", "info", "vip-holders", v) for t, v in samples])


def mounts(*samples: tuple[float, dict[str, list[list[str]]]]) -> History:
    return History([Op(t, "observer", "info", "mounts", v) for t, v in samples])


FAILOVER = holders(
    (10.0, {VIP: ["node1"], VIP2: ["node2"]}),
    (10.2, {VIP: ["node1"], VIP2: ["node2"]}),
    (10.4, {VIP: [], VIP2: ["node2"]}),
    (10.6, {VIP: [], VIP2: ["node2"]}),
    (10.8, {VIP: ["node2"], VIP2: ["node2"]}),
    (11.0, {VIP: ["node2"], VIP2: ["node2"]}),
)


def test_single_holders_pass() -> None:
    c = vip_holders(FAILOVER)
    assert c.passed and c.name == "vip-holders"
    assert "6 samples" in c.detail and "2 VIPs" in c.detail


def test_double_vip_fails_with_vip_nodes_time_and_duration() -> None:
    h = holders(
        (10.0, {VIP: ["node1"], VIP2: ["node2"]}),
        (10.2, {VIP: ["node2", "node1"], VIP2: ["node2"]}),
        (10.4, {VIP: ["node1", "node2"], VIP2: ["node2"]}),
        (10.6, {VIP: ["node1", "node2"], VIP2: ["node2"]}),
        (10.8, {VIP: ["node2"], VIP2: ["node2"]}),
    )
    c = vip_holders(h)
    assert not c.passed
    assert f"{VIP} on [node1, node2] first seen at 10.200 for 400 ms (3 samples)" in c.detail
    assert VIP2 not in c.detail.split("(")[0]


def test_separate_episodes_are_reported_separately() -> None:
    h = holders(
        (1.0, {VIP: ["node1", "node2"]}),
        (1.2, {VIP: ["node1"]}),
        (1.4, {VIP: ["node1", "node3"]}),
    )
    c = vip_holders(h)
    assert not c.passed and c.detail.startswith("2 episodes")
    assert "on [node1, node2] first seen at 1.000 for 0 ms (1 samples)" in c.detail
    assert "on [node1, node3] first seen at 1.400" in c.detail


def test_no_samples_fails_unless_allowed() -> None:
    assert not vip_holders(History()).passed
    assert vip_holders(History(), require_samples=False).passed


def test_timeline_keeps_only_changes() -> None:
    assert vip_timeline(FAILOVER, VIP) == [(10.0, ("node1",)), (10.4, ()), (10.8, ("node2",))]
    assert vip_timeline(FAILOVER, VIP2) == [(10.0, ("node2",))]


def test_vip_moves() -> None:
    assert vip_moves(FAILOVER, VIP, since=10.3) == ("node1", "node2", 10.8)
    assert vip_moves(FAILOVER, VIP2, since=10.3) == ("node2", None, None)
    assert vip_moves(FAILOVER, VIP, since=5.0) == (None, "node1", 10.0)


def test_vip_moves_skips_double_holders() -> None:
    h = holders((1.0, {VIP: ["node1"]}), (2.0, {VIP: ["node1", "node2"]}), (2.2, {VIP: ["node2"]}))
    assert vip_moves(h, VIP, since=1.5) == ("node1", "node2", 2.2)


MYSQL, RABBIT = ["/dev/loop0", "/var/lib/mysql"], ["/dev/loop1", "/var/lib/rabbitmq"]


def test_single_mounts_pass() -> None:
    h = mounts(
        (10.0, {"node1": [MYSQL], "node2": [RABBIT]}),
        (10.2, {"node1": [], "node2": [RABBIT]}),
        (10.4, {"node1": [], "node2": [MYSQL, RABBIT]}),
    )
    c = double_mounts(h)
    assert c.passed and c.name == "double-mounts" and "2 devices" in c.detail


def test_double_mount_fails() -> None:
    both = {"node1": [["/dev/loop0", "/var/lib/mysql"]], "node2": [["/dev/loop0", "/var/lib/mysql"]]}
    h = mounts((10.0, {"node1": [["/dev/loop0", "/var/lib/mysql"]], "node2": []}), (10.2, both), (10.4, both))
    c = double_mounts(h)
    assert not c.passed
    assert "/dev/loop0 on [node1, node2] first seen at 10.200 for 200 ms (2 samples)" in c.detail


def test_two_mountpoints_on_one_node_is_not_double() -> None:
    h = mounts((1.0, {"node1": [["/dev/loop0", "/var/lib/mysql"], ["/dev/loop0", "/mnt/x"]]}))
    assert double_mounts(h).passed


def test_a_one_sample_handover_overlap_is_reported_not_failed_only_when_allowed() -> None:
    v = "10.0.0.10"
    handover = holders((1.0, {v: ["lb1"]}), (1.1, {v: ["lb1", "lb2"]}), (1.2, {v: ["lb2"]}))
    strict = vip_holders(handover)
    assert not strict.passed  # the checker's default: any sample on two nodes fails
    vrrp = vip_holders(handover, transient=1)
    assert vrrp.passed and "1 handover overlap(s)" in vrrp.detail and "lb1, lb2" in vrrp.detail
    longer = holders((1.0, {v: ["lb1", "lb2"]}), (1.1, {v: ["lb1", "lb2"]}), (1.2, {v: ["lb2"]}))
    assert not vip_holders(longer, transient=1).passed  # two samples: a double VIP, not a handover


def _vip(t: float, *nodes: str) -> tuple[float, dict[str, list[str]]]:
    return (t, {"10.0.0.10": list(nodes)})


def test_an_expected_split_brain_counts_only_inside_the_fault_window() -> None:
    h = holders(_vip(1.0, "a"), _vip(2.0, "a"), _vip(3.0, "a", "b"), _vip(4.0, "a", "b"), _vip(5.0, "b"))
    c = split_brain_in_window(h, since=2.5, until=4.5)
    assert c.passed and "first seen at 3.000" in c.detail
    assert not split_brain_in_window(h, since=1.5, until=2.5).passed  # only after the window: not this fault's
    assert "only after it" in split_brain_in_window(h, since=1.5, until=2.5).detail


def test_a_split_already_there_before_the_fault_is_no_detection() -> None:
    h = holders(_vip(1.0, "a", "b"), _vip(2.0, "a", "b"), _vip(3.0, "a", "b"))
    c = split_brain_in_window(h, since=1.5)
    assert not c.passed and "already split before the fault" in c.detail


def test_no_samples_after_the_fault_is_a_failure_never_a_detection() -> None:
    h = holders(_vip(1.0, "a", "b"))
    c = split_brain_in_window(h, since=2.0)
    assert not c.passed and "too few" in c.detail


def test_a_handover_overlap_is_not_a_split_brain() -> None:
    h = holders(_vip(1.0, "a"), _vip(2.0, "a", "b"), _vip(3.0, "b"), _vip(4.0, "b"))
    assert not split_brain_in_window(h, since=1.5, transient=1).passed
    assert split_brain_in_window(h, since=1.5, transient=0).passed


def test_a_double_mount_is_a_split_brain_when_asked() -> None:
    h = mounts((1.0, {"a": [["/dev/loop0", "/m"]]}), (2.0, {"a": [["/dev/loop0", "/m"]], "b": [["/dev/loop0", "/m"]]}))
    h.extend(holders(_vip(1.0, "a"), _vip(2.0, "a")).ops)
    assert not split_brain_in_window(h, since=1.5).passed
    assert split_brain_in_window(h, since=1.5, mounts=True).passed


def test_an_expected_split_must_end_after_the_heal() -> None:
    ends = holders(_vip(1.0, "a"), _vip(3.0, "a", "b"), _vip(4.0, "a", "b"), _vip(5.0, "a", "b"), _vip(6.0, "b"))
    assert split_brain_in_window(ends, since=2.5, until=4.5, outlive_s=1.0).passed  # last seen 0.5 s after
    stuck = split_brain_in_window(ends, since=2.5, until=4.5, outlive_s=0.2)
    assert not stuck.passed and "still split 0.5 s after the heal (allowed 0.2 s)" in stuck.detail
    again = holders(_vip(1.0, "a"), _vip(3.0, "a", "b"), _vip(4.0, "a", "b"), _vip(5.0, "b"), _vip(6.0, "a", "b"),
                    _vip(7.0, "a", "b"), _vip(8.0, "b"))  # fmt: skip
    assert split_brain_in_window(again, since=2.5, until=4.5, outlive_s=3.0).passed  # a re-split resolved in time
    assert not split_brain_in_window(again, since=2.5, until=4.5, outlive_s=2.0).passed


def test_vip_and_mount_samples_make_episodes_of_their_own() -> None:
    """The observer records VIP holders and mounts as separate samples: interleaved, neither ends the other's
    episode (each sample of one kind lacks the other's keys)."""
    both = {"node1": [["/dev/loop0", "/m"]], "node2": [["/dev/loop0", "/m"]]}
    ops = []
    for t in (3.0, 3.1, 3.2, 3.3):
        ops += holders(_vip(t, "a", "b")).ops + mounts((t + 0.05, both)).ops
    c = split_brain_in_window(History(ops), since=2.5, until=4.5, mounts=True, transient=2)
    assert c.passed and "(4 samples)" in c.detail
