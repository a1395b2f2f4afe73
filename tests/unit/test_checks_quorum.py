"""lab/checks/quorum.py on synthetic histories, and lab/checks/quorum_parse.py on real corosync-quorumtool output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab.checks.quorum import resources_in_quorum, wait_for_all
from lab.checks.quorum_parse import QuorumParseError, parse_quorumtool
from lab.checks.quorum_partitions import partitions, quorum_partitions, ring_sequence, superseded
from lab.history import History, Op

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data" / "quorum"
SEVEN = [f"node{i}" for i in range(1, 8)]
VIP = "192.168.42.101"


def answer(quorate: bool, members: list[str]) -> dict[str, Any]:
    return {"quorate": quorate, "members": members, "expected": 7, "total": len(members), "quorum": 4, "flags": []}


def q(t: float, **nodes: dict[str, Any]) -> Op:
    return Op(t, "observer", "info", "quorum", nodes)


def held(t: float, *nodes: str) -> Op:
    return Op(t, "observer", "info", "vip-holders", {VIP: list(nodes)})


def history(*ops: Op) -> History:
    return History(sorted(ops, key=lambda o: o.time))


def split(t: float, left: list[str], right: list[str], right_quorate: bool = False) -> Op:
    """`left` quorate among themselves, `right` among themselves (quorate only if asked)."""
    return q(t, **{n: answer(True, left) for n in left}, **{n: answer(right_quorate, right) for n in right})


# --- the parser, on output captured from live nodes (tests/unit/data/quorum/*.txt) ----------------------------


def test_parse_a_quorate_two_node_cluster() -> None:
    v = parse_quorumtool((DATA / "quorumtool-two-node.txt").read_text())
    assert v["quorate"] is True
    assert (v["expected"], v["highest_expected"], v["total"], v["quorum"]) == (2, 2, 2, 1)
    assert v["flags"] == ["2Node", "Quorate", "WaitForAll"]
    assert v["members"] == ["node1", "node2"] and v["member_ids"] == [1, 2] and v["node_id"] == 1
    assert isinstance(v["ring_id"], str) and v["ring_id"]


def test_parse_the_survivor_of_a_two_node_cluster() -> None:
    v = parse_quorumtool((DATA / "quorumtool-two-node-alone.txt").read_text())
    assert v["quorate"] is True and v["total"] == 1 and v["quorum"] == 1
    assert v["members"] == ["node1"] and v["member_ids"] == [1]
    assert "Quorate" in v["flags"] and "2Node" in v["flags"]


def test_parse_a_node_waiting_for_all() -> None:
    """node1's corosync restarted while node2 was down: wait_for_all keeps it inquorate ("Activity blocked")."""
    v = parse_quorumtool((DATA / "quorumtool-wait-for-all.txt").read_text())
    assert v["quorate"] is False and v["total"] == 1 and v["members"] == ["node1"]
    assert "WaitForAll" in v["flags"] and "Quorate" not in v["flags"]


def test_parse_the_guides_full_size_cluster() -> None:
    """Seven nodes on the rendered tests/unit/data/quorum/full-size.yaml (corosync 3.1.7 on netns), all joined."""
    v = parse_quorumtool((DATA / "quorumtool-full-size.txt").read_text())
    assert v["quorate"] is True and (v["expected"], v["total"], v["quorum"]) == (7, 7, 4)
    assert v["flags"] == ["Quorate", "WaitForAll", "LastManStanding"]
    assert v["members"] == SEVEN and v["member_ids"] == list(range(1, 8))


def test_parse_last_man_standing_after_its_window() -> None:
    """Three of the seven killed: 10 s later (the window) votequorum recalculated expected votes and quorum."""
    v = parse_quorumtool((DATA / "quorumtool-full-size-lms.txt").read_text())
    assert v["quorate"] is True and (v["expected"], v["highest_expected"], v["total"], v["quorum"]) == (4, 4, 4, 3)
    assert v["members"] == SEVEN[:4] and "LastManStanding" in v["flags"]


def test_parse_the_qdevice_row_is_no_member() -> None:
    text = (DATA / "quorumtool-two-node.txt").read_text()
    head, _, _ = text.partition("Membership information")
    table = (
        "Membership information\n----------------------\n    Nodeid      Votes    Qdevice Name\n"
        "         1          1    A,V,NMW node1 (local)\n         2          1    A,V,NMW node2\n"
        "         0          1            Qdevice\n"
    )
    v = parse_quorumtool(head + table)
    assert v["members"] == ["node1", "node2"] and v["member_ids"] == [1, 2]


def test_parse_a_node_the_qdevice_withholds_its_vote_from() -> None:
    """Captured on node2 of scenarios/qdevice.yaml cut off from node1, qnetd voting for node1: the device's row
    reads `Qdevice (votes 1)` and is still no member."""
    v = parse_quorumtool((DATA / "quorumtool-qdevice-nack.txt").read_text())
    assert v["members"] == ["node2"] and v["member_ids"] == [2]
    assert (v["quorate"], v["total"], v["quorum"], v["flags"]) == (False, 1, 2, ["Qdevice"])


@pytest.mark.parametrize("text", ["", "Cannot initialize CMAP service\n", "Quorum information\nQuorate: Yes\n"])
def test_parse_refuses_what_is_not_quorumtool_output(text: str) -> None:
    with pytest.raises(QuorumParseError):
        parse_quorumtool(text)


# --- at most one quorate partition -------------------------------------------------------------------


def test_no_quorum_samples_is_a_failure() -> None:
    c = quorum_partitions(History([held(1.0, "node1")]))
    assert not c.passed and "no quorum samples" in c.detail


def test_samples_nobody_answered_are_a_failure() -> None:
    c = quorum_partitions(history(q(1.0, node1={"error": "not running"}), q(1.5, node1={"error": "not running"})))
    assert not c.passed and "no node ever answered" in c.detail


def test_a_minority_without_quorum_is_one_partition() -> None:
    ops = [q(1.0, **{n: answer(True, SEVEN) for n in SEVEN})]
    ops += [split(1.5 + i / 2, SEVEN[:4], SEVEN[4:]) for i in range(4)]
    c = quorum_partitions(history(*ops))
    assert c.passed, c.detail
    assert "at most one current quorate partition" in c.detail and "[node1, node2, node3, node4]" in c.detail


def test_two_quorate_halves_fail_naming_nodes_and_time() -> None:
    both = {"node1": answer(True, ["node1", "node2"]), "node2": answer(True, ["node1", "node2"])}
    ops = [q(1.0, **both)] + [split(2.0 + i / 2, ["node1"], ["node2"], right_quorate=True) for i in range(3)]
    ops += [q(3.5, **both)]
    c = quorum_partitions(history(*ops))
    assert not c.passed
    assert "1 episodes" in c.detail
    assert "split (quorate partitions on rings none supersedes) [node1] and [node2]" in c.detail
    assert "first seen at 2.000 for 1000 ms (3 samples)" in c.detail


def test_a_stale_view_is_reported_within_stale_s_and_fails_past_it() -> None:
    """node1 just thawed still lists node2, which has formed its own membership without it."""
    stale = {"node1": answer(True, ["node1", "node2"]), "node2": answer(True, ["node2"])}
    ops = [q(1.0, **stale), q(1.5, **stale), q(2.0, node1=answer(False, ["node1"]), node2=answer(True, ["node2"]))]
    strict = quorum_partitions(history(*ops))
    assert not strict.passed and "stale view (a superseded ring)" in strict.detail
    tolerant = quorum_partitions(history(*ops), stale_s=1.0)
    assert tolerant.passed and "1 stale view(s) within 1.0 s" in tolerant.detail
    assert not quorum_partitions(history(*ops), stale_s=0.4).passed


def test_a_split_is_never_excused_as_stale() -> None:
    ops = [split(1.0, ["node1"], ["node2"], right_quorate=True)]
    assert not quorum_partitions(history(*ops), stale_s=60).passed


def on(ring: str, quorate: bool, members: list[str]) -> dict[str, Any]:
    return answer(quorate, members) | {"ring_id": ring}


def test_ring_sequence_reads_corosync_3_ring_ids() -> None:
    assert ring_sequence("1.2c") == 44 and ring_sequence("7.d") == 13
    assert ring_sequence(None) is None and ring_sequence("1/8") is None and ring_sequence("1.zz") is None


def test_a_view_on_a_superseded_ring_is_stale_until_it_lasts_past_stale_s() -> None:
    """node1 still answers from its old ring, which lists node2; node2 and node3 have formed a newer one."""
    newer = {"node2": on("2.14", True, ["node2", "node3"]), "node3": on("2.14", True, ["node2", "node3"])}
    ops = [q(1.0 + i / 2, node1=on("1.10", True, ["node1", "node2"]), **newer) for i in range(5)]
    ops += [q(3.5, node1=on("2.14", False, ["node1"]), **newer)]
    c = quorum_partitions(history(*ops), stale_s=3.0)
    assert c.passed, c.detail
    assert "stale view (a superseded ring)" in c.detail and "node1 on ring 1.10 for 2000 ms" in c.detail
    c = quorum_partitions(history(*ops), stale_s=1.0)
    assert not c.passed and "node1 on ring 1.10 for 2000 ms" in c.detail


def test_a_node_moving_through_rings_while_others_join_is_never_stale_long() -> None:
    """Six nodes booting at once: the survivor takes part in one membership after another, each newer than the
    last, and each time answers a moment behind the joiners. The episode lasts long; no ring is held long."""
    ops = []
    for i, seq in enumerate(range(0x10, 0x30, 4)):
        joiners = {n: on(f"3.{seq + 4:x}", True, ["node3", "node4"]) for n in ("node3", "node4")}
        ops.append(q(1.0 + i, node1=on(f"1.{seq:x}", True, ["node1", "node3"]), **joiners))
    c = quorum_partitions(history(*ops), stale_s=1.0)
    assert c.passed, c.detail
    assert "for 7000 ms (8 samples)" in c.detail and "for 0 ms" in c.detail


def test_a_newer_ring_holding_a_partitions_node_supersedes_it() -> None:
    """node2's answer is from before it joined node3's newer ring, which lists it: [node1, node2] is behind."""
    view = {
        "node1": on("1.10", True, ["node1", "node2"]),
        "node2": on("1.10", True, ["node1", "node2"]),
        "node3": on("3.14", True, ["node2", "node3"]),
    }
    parts = partitions(view)
    assert parts == [frozenset({"node1", "node2"}), frozenset({"node3"})]
    assert superseded(view, parts) == [frozenset({"node1", "node2"})]


def test_a_quorate_flag_its_own_rings_members_no_longer_share_is_behind() -> None:
    """CI's sample (test_quorum.py, partition-demote): the partition made rings 1.3e and 2.3e, of one sequence;
    node3 on 1.3e still said quorate while node1 and node7 on 1.3e said not, and node6 still answered from the old
    ring 1.3a. One sample later node3 said not quorate: a stale flag, not a second cluster."""
    minority, majority, everyone = ["node1", "node3", "node7"], ["node2", "node4", "node5", "node6"], SEVEN
    view = {n: on("1.3e", n == "node3", minority) for n in minority}
    view |= {n: on("2.3e", True, majority) for n in ("node2", "node4", "node5")} | {"node6": on("1.3a", True, everyone)}
    parts = partitions(view)
    assert parts == [frozenset(majority), frozenset({"node3"})]
    assert superseded(view, parts) == [frozenset({"node3"})]
    after = {n: on("1.3e", False, minority) for n in minority} | {n: on("2.3e", True, majority) for n in majority}
    c = quorum_partitions(history(q(1.0, **view), q(1.45, **after)), stale_s=1.0)
    assert c.passed and "node3 on ring 1.3e for 0 ms" in c.detail, c.detail
    held_on = [q(1.0 + i / 2, **view) for i in range(4)]  # the flag held past stale_s: fails
    assert not quorum_partitions(history(*held_on), stale_s=1.0).passed
    # both quorate with a member of neither ring dissenting: still a split, never excused
    both = {n: on("1.3e", True, minority) for n in minority} | {n: on("2.3e", True, majority) for n in majority}
    c = quorum_partitions(history(q(1.0, **both)), stale_s=60)
    assert not c.passed and "split (quorate partitions on rings none supersedes)" in c.detail


def test_two_quorate_rings_that_list_nothing_of_each_other_are_a_split() -> None:
    halves = {"node1": on("1.14", True, ["node1"]), "node2": on("2.14", True, ["node2"])}
    c = quorum_partitions(history(q(1.0, **halves), q(1.5, **halves)), stale_s=60)
    assert not c.passed and "split (quorate partitions on rings none supersedes)" in c.detail


def test_nodes_that_did_not_answer_are_not_judged() -> None:
    ops = [q(1.0 + i / 2, node1=answer(True, ["node1"]), node2={"error": "no answer within 500 ms"}) for i in range(3)]
    c = quorum_partitions(history(*ops))
    assert c.passed and "1 answering nodes" in c.detail


def test_partitions_group_nodes_that_list_each_other() -> None:
    view = {
        "a": answer(True, ["a", "b"]),
        "b": answer(True, ["a", "b"]),
        "c": answer(True, ["c", "a"]),  # lists a, but a does not list c
        "d": answer(False, ["d"]),
    }
    assert partitions(view) == [frozenset({"a", "b"}), frozenset({"c"})]


def test_since_leaves_out_what_came_before() -> None:
    ops = [split(1.0, ["node1"], ["node2"], right_quorate=True), q(5.0, node1=answer(True, ["node1", "node2"]))]
    assert quorum_partitions(history(*ops), since=2.0).passed


# --- resources only in a quorate partition -----------------------------------------------------------


def lose_quorum_at(t_loss: float, vip_until: float, *, gain_at: float | None = None, end: float = 20.0) -> History:
    """node1 quorate with node2 until `t_loss`, then alone and inquorate; it holds the VIP until `vip_until`
    (or, with `gain_at`, gets it only then). Quorum sampled every 0.5 s, VIPs every 0.1 s."""
    ops = []
    t = 0.0
    while t <= end:
        alone = t >= t_loss
        ops.append(q(t, node1=answer(not alone, ["node1"] if alone else ["node1", "node2"])))
        t = round(t + 0.5, 3)
    t = 0.0
    while t <= end:
        holds = (t < vip_until) if gain_at is None else (gain_at <= t < vip_until)
        ops.append(held(t, *(["node1"] if holds else ["node2"] if gain_at is not None and t < gain_at else [])))
        t = round(t + 0.1, 3)
    return history(*ops)


def test_resources_need_samples_of_both() -> None:
    c = resources_in_quorum(History([held(1.0, "node1")]), no_quorum_policy="stop", grace_s=5)
    assert not c.passed and "no quorum samples" in c.detail
    c = resources_in_quorum(History([q(1.0, node1=answer(True, ["node1"]))]), no_quorum_policy="stop", grace_s=5)
    assert not c.passed and "no vip-holders samples" in c.detail


def test_a_vip_released_within_the_grace_passes() -> None:
    c = resources_in_quorum(lose_quorum_at(10.0, 12.0), no_quorum_policy="stop", grace_s=5)
    assert c.passed, c.detail
    assert "no VIP held past 5 s or gained on an inquorate node (no-quorum-policy=stop)" in c.detail


def test_a_vip_held_past_the_grace_fails_naming_node_and_times() -> None:
    c = resources_in_quorum(lose_quorum_at(10.0, 18.0), no_quorum_policy="stop", grace_s=5)
    assert not c.passed
    assert f"{VIP} still held on node1 while inquorate (since 10.000): from 15.100" in c.detail


def test_a_vip_gained_without_quorum_fails_at_once() -> None:
    c = resources_in_quorum(lose_quorum_at(10.0, 13.0, gain_at=11.0), no_quorum_policy="stop", grace_s=30)
    assert not c.passed
    assert f"{VIP} gained on node1 while inquorate (since 10.000): from 11.000 for 1900 ms (20 samples)" in c.detail


def test_freeze_keeps_what_runs_but_starts_nothing() -> None:
    assert resources_in_quorum(lose_quorum_at(10.0, 20.0), no_quorum_policy="freeze", grace_s=1).passed
    c = resources_in_quorum(lose_quorum_at(10.0, 13.0, gain_at=11.0), no_quorum_policy="freeze", grace_s=1)
    assert not c.passed and "gained on node1" in c.detail


def test_ignore_reports_the_split_brain_as_found() -> None:
    h = lose_quorum_at(10.0, 18.0)
    c = resources_in_quorum(h, no_quorum_policy="ignore", grace_s=5)
    assert c.passed and c.detail.startswith("no-quorum-policy=ignore: resources run without quorum as configured")
    assert "still held on node1 while inquorate (since 10.000): from 10.000" in c.detail  # no grace under ignore
    assert not resources_in_quorum(h, no_quorum_policy="ignore", grace_s=5, fail_when_ignored=True).passed
    quiet = resources_in_quorum(lose_quorum_at(10.0, 9.0), no_quorum_policy="ignore", grace_s=5)
    assert quiet.passed and "none on an inquorate node" in quiet.detail


def test_holders_whose_quorum_is_unknown_are_counted_not_judged() -> None:
    ops = [q(0.0, node1={"error": "not running"}), held(0.5, "node1"), held(0.6, "node1")]
    c = resources_in_quorum(history(*ops), no_quorum_policy="stop", grace_s=0)
    assert c.passed and "2 holdings on nodes that had not answered, not judged" in c.detail


# --- wait_for_all ------------------------------------------------------------------------------------


def test_wait_for_all_needs_samples_and_nodes() -> None:
    assert not wait_for_all(History([]), SEVEN).passed
    assert not wait_for_all(history(q(1.0, node1=answer(False, ["node1"]))), []).passed


def test_a_partial_start_stays_inquorate() -> None:
    ops = [q(1.0 + i / 2, **{n: answer(False, SEVEN[:4]) for n in SEVEN[:4]}) for i in range(6)]
    c = wait_for_all(history(*ops), SEVEN)
    assert c.passed and "never all members together" in c.detail and "no node quorate before" in c.detail


def test_quorate_before_all_were_seen_fails() -> None:
    ops = [q(1.0, **{n: answer(False, SEVEN[:3]) for n in SEVEN[:3]})]
    ops += [q(1.5 + i / 2, **{n: answer(True, SEVEN[:4]) for n in SEVEN[:4]}) for i in range(3)]
    ops += [q(3.5, **{n: answer(True, SEVEN) for n in SEVEN})]
    c = wait_for_all(history(*ops), SEVEN)
    assert not c.passed
    assert "[node1, node2, node3, node4] quorate at 1.500" in c.detail
    assert "missing [node5, node6, node7], in 3 samples before all 7" in c.detail
    assert "first members together at 3.500" in c.detail


def test_quorate_once_all_were_seen_passes() -> None:
    ops = [q(1.0, **{n: answer(False, SEVEN[:5]) for n in SEVEN[:5]})]
    ops += [q(1.5, **{n: answer(True, SEVEN) for n in SEVEN})]
    ops += [split(2.0 + i / 2, SEVEN[:4], SEVEN[4:]) for i in range(3)]  # a later split keeps quorum: fine
    c = wait_for_all(history(*ops), SEVEN)
    assert c.passed and "first members together at 1.500 (node1's view)" in c.detail


def test_wait_for_all_since_the_restart() -> None:
    before = q(1.0, **{n: answer(True, SEVEN) for n in SEVEN})  # the cluster before the power cut
    after = [q(10.0 + i / 2, **{n: answer(True, SEVEN[:4]) for n in SEVEN[:4]}) for i in range(2)]
    assert wait_for_all(history(before, *after), SEVEN).passed  # seen together before: vacuous
    assert not wait_for_all(history(before, *after), SEVEN, since=5.0).passed


# --- a live history: the full-size cluster's start-up and last_man_standing (tests/unit/data/quorum) -------------

LIVE = History.load(DATA / "full-size-start.jsonl")  # the observer's samples: 4 of 7 started, then 3 more, 3 killed


def test_live_start_up_four_of_seven_were_held_inquorate_until_all_were_seen() -> None:
    c = wait_for_all(LIVE, SEVEN)
    assert c.passed and "all 7 of" in c.detail and "no node quorate before" in c.detail
    four = [o for o in LIVE.select(f="quorum") if len(o.value["node1"].get("members") or ()) == 4]
    assert four and not any(e.get("quorate") for o in four[:5] for e in o.value.values())
    # the checker judges by the nodes it is given: with an eighth that never came, the seven were quorate too early
    assert wait_for_all(LIVE, [*SEVEN, "node8"]).passed is False


def test_live_history_has_one_quorate_partition_and_the_lms_recalculation() -> None:
    assert quorum_partitions(LIVE).passed
    last = LIVE.select(f="quorum")[-1].value["node1"]
    assert (last["expected"], last["quorum"], last["members"]) == (4, 3, SEVEN[:4])


# --- transitions: what the report lists per node ---------------------------------------------------------------


def test_transitions_name_each_change_per_node_and_group_alike_ones() -> None:
    from lab.checks.quorum import describe_transition, grouped, quorum_transitions

    ops = [q(1.0, **{n: answer(True, SEVEN) for n in SEVEN})]
    ops += [q(1.5, **{n: answer(True, SEVEN) for n in SEVEN})]  # no change: nothing listed
    ops += [split(2.0, SEVEN[:4], SEVEN[4:])]
    ops += [q(2.5, node1={"error": "rc 1: corosync down"}, **{n: answer(True, SEVEN[:4]) for n in SEVEN[1:4]})]
    ops += [q(3.0, **{n: answer(True, SEVEN) for n in SEVEN})]
    found = quorum_transitions(history(*ops))
    at_2 = [tr for tr in found if tr["time"] == 2.0]
    assert {tr["node"] for tr in at_2} == set(SEVEN)
    minority = next(tr for tr in at_2 if tr["node"] == "node5")
    assert minority["changes"] == {"quorate": [True, False], "total": [7, 3], "members": [SEVEN, SEVEN[4:]]}
    assert "quorate" not in next(tr for tr in at_2 if tr["node"] == "node1")["changes"]
    assert not [tr for tr in found if tr["time"] in (1.5, 2.5)]  # node1's silence is no transition
    # node1 answered again at 3.0: its change is across the gap, from what it said last
    assert next(tr for tr in found if tr["node"] == "node1" and tr["time"] == 3.0)["changes"]["members"][0] == SEVEN[:4]
    g = grouped(at_2)
    assert sorted(len(x["nodes"]) for x in g) == [3, 4]
    text = describe_transition(next(x for x in g if "node5" in x["nodes"]), origin=1.0)
    assert text == "node5, node6, node7 +1000 ms: quorate yes -> no, total 7 -> 3, members 7 -> 3"


def test_a_sample_that_heard_from_no_one_is_no_release_and_the_next_no_gain() -> None:
    """Under freeze the minority keeps its VIP; a sample in which every look timed out (the host loaded) shows no
    holder: node1 seen again with the VIP has gained nothing (CI: "gained ... for 0 ms (1 samples)")."""
    ops = [q(t / 2, node1=answer(t / 2 < 2.0, ["node1"])) for t in range(20)]
    ops += [held(t / 10, "node1") for t in range(100)]
    ops.append(Op(5.0, "observer", "info", "unanswered", {"node1": "no answer within 1000 ms"}))
    c = resources_in_quorum(history(*ops), no_quorum_policy="freeze", grace_s=5)
    assert c.passed, c.detail
    gains = [*ops, Op(7.05, "observer", "info", "vip-holders", {VIP: ["node1", "node2"]})]
    gains += [q(t / 2, node2=answer(False, ["node2"])) for t in range(20)]
    c = resources_in_quorum(history(*gains), no_quorum_policy="freeze", grace_s=5)
    assert not c.passed and "gained on node2" in c.detail, c.detail
