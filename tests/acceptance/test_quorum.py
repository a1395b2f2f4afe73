"""Guide ch. 2, votequorum for a full-size cluster (scenarios/quorum.yaml, lines 411-451): what the options say,
wait_for_all at a start, a majority and a minority under each no-quorum-policy, and last man standing. Every
expectation comes from the scenario's options, every figure from corosync-quorumtool and the recorded history."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from lab import bounds
from lab.checks.base import Check
from lab.checks.quorum import quorum_transitions, wait_for_all
from lab.checks.split_brain import vip_timeline
from lab.fixtures import assert_checks, make_lab
from lab.scenario_quorum import wait_for_all as wfa_on
from lab.session import Lab
from lab.trial import Trial
from lab.wait import holds, until
from provision import corosync, pacemaker
from provision import quorum as playbook
from tests.acceptance.quorum_view import (
    UNPROMOTED,
    ask,
    brief,
    group,
    group_members,
    majority,
    membership_s,
    needs_full_size,
    nodes,
    promoted,
    report_transitions,
    running_on,
    set_policy,
    side_formed,
    tie_breaker,
    transitions_done,
    views,
    whole_again,
)

pytestmark = pytest.mark.quorum


@pytest.fixture(scope="module")
def lab(provider: str) -> Iterator[Lab]:
    yield from make_lab("quorum", "guide", provider)


# ------------------------------------------------------------------------------------------------ tests
@pytest.mark.smoke
def test_votequorum_runs_as_the_scenario_configures_it(lab: Lab) -> None:
    """Guide lines 425-444: every node quorate with the expected votes, quorum and flags the options give."""
    opts, members = lab.opts, nodes(lab)
    expected = opts.expected_votes or len(members)
    wanted = {"Quorate": True, "WaitForAll": wfa_on(opts), "LastManStanding": opts.last_man_standing,
              "AutoTieBreaker": opts.auto_tie_breaker is not None, "2Node": opts.two_node}  # fmt: skip
    want_flags = {f for f, on in wanted.items() if on}
    vs = views(lab, members)
    for n, v in vs.items():
        assert v is not None, f"{n}: corosync-quorumtool -s did not answer"
        assert v["quorate"] and sorted(v["members"]) == sorted(members), f"{n}: {brief({n: v})}"
        assert (v["expected"], v["total"], v["quorum"]) == (expected, len(members), majority(expected)), brief(vs)
        assert want_flags <= set(v["flags"]), f"{n}: flags {v['flags']}, the scenario gives {sorted(want_flags)}"
        conf = lab.provider.run(n, "cat /etc/corosync/corosync.conf", check=True, timeout=15).stdout
        assert conf == corosync.config(lab.ctx), f"{n}: corosync.conf is not what the scenario renders"
    placed = lab.settle()
    assert group(lab) in placed and len(promoted(lab, members[0])) == 1


@pytest.mark.smoke
def test_wait_for_all_keeps_quorum_until_every_node_was_seen(lab: Lab) -> None:
    """Guide line 440: with wait_for_all, a cluster started with one node missing never becomes quorate and
    starts nothing, however many of the others are up; the last one's arrival makes it quorate."""
    needs_full_size(lab)
    if not wfa_on(lab.opts):
        pytest.skip("the scenario turns wait_for_all off")
    members = nodes(lab)
    late, first = members[-1], members[:-1]
    deadline = pacemaker.stack_deadline_s(lab.ctx)
    with lab.trial("wait-for-all") as t:
        for n in members:  # a power cut of the whole cluster
            t.fault("crash", n)
        t.heal_crashes(first, rejoin=False)
        started = time.time()
        playbook.start_nodes(lab.ctx, first)
        until(
            lambda: side_formed(lab, first, quorate=False),
            timeout=deadline,
            what=f"{first} to form one membership without quorum",
            seen=lambda: brief(views(lab, first)),
        )
        # as long as a quorate cluster's first election and starts would take (dc-deadtime twice, knet's links)
        holds(
            lambda: side_formed(lab, first, quorate=False) and not running_on(lab, first[0], first),
            duration=deadline,
            what=f"no quorum and nothing running on {first} while {late} is down",
            seen=lambda: f"{brief(views(lab, first))}; running {running_on(lab, first[0], first)}",
        )
        t.heal_crashes([late])  # its stack starts; restart_nodes waits for all of them online with quorum
        t.settle()
        res = t.finish()
    found = report_transitions(t, started, f"{late} started after {deadline:.0f} s", res.history)
    check = wait_for_all(res.history, members, since=started)
    lab.report.checks.append(Check(f"wait-for-all: {check.name}", check.passed, check.detail))
    assert check.passed, check.detail
    went = [tr for tr in found if tr["changes"].get("quorate") == [False, True]]
    assert {tr["node"] for tr in went} >= set(first), f"quorate transitions: {went}"
    assert_checks(res)


@pytest.mark.parametrize("policy", [pytest.param("stop", marks=pytest.mark.smoke), "freeze", "ignore", "demote"])
def test_partition_majority_keeps_quorum_minority_obeys_no_quorum_policy(lab: Lab, policy: str) -> None:
    """Guide lines 439 and 575-582: a split on every ring into a majority and a minority. The majority stays quorate
    and runs the group; the minority loses quorum and does what no-quorum-policy says (Pacemaker Explained:
    stop its resources; freeze: keep them, start nothing; ignore: carry on as if quorate; demote: demote
    promotable resources, stop the others). The minority holds the group and the promoted instance."""
    needs_full_size(lab)
    members, g = nodes(lab), group(lab)
    placed = lab.settle()
    holder, top = placed[g], promoted(lab, members[0])[0]
    # the largest minority, holding the group and (room allowing: not in a 1-node minority) the promoted instance
    small = list(dict.fromkeys([holder, top, *reversed(members)]))[: (len(members) - 1) // 2]
    big = [n for n in members if n not in small]
    ours = top in small  # what the minority's policy does to the promoted instance, judged where it is there
    vip = lab.playbook.vip_of(lab.ctx, playbook.services(lab.ctx)[0])
    set_policy(lab, policy)
    split = policy in ("freeze", "ignore")  # the minority keeps the group while the majority starts it
    try:
        with lab.trial(f"partition-{policy}") as t:
            cut = [t.fault("partition", small[0], side=small[1:], network=net) for net in corosync.links(lab.ctx)]
            at = cut[-1]  # split on every ring from here
            until(
                lambda: side_formed(lab, big, quorate=True) and side_formed(lab, small, quorate=False),
                timeout=3 * membership_s(lab) + 15,
                what=f"{big} quorate and {small} without quorum",
                seen=lambda: brief(views(lab, members)),
            )
            after = t.settle(on=big[0])  # the majority runs the group and promotes an instance of its own
            assert after[g] in big and set(promoted(lab, big[0])) <= set(big)
            # the minority's own transitions done: what it runs now is what its policy left
            transitions_done(lab, small[0])
            left = running_on(lab, small[0], small)
            if policy == "stop":
                assert not left, f"{small} still run {left} under no-quorum-policy=stop"
            elif policy == "demote":
                if ours:
                    assert top not in promoted(lab, small[0]), f"{top} still promoted under demote"
                    assert top in promoted(lab, small[0], UNPROMOTED), f"{top} not left Unpromoted: {left}"
                assert g not in left and not any(m in left for m in group_members(lab, g)), f"{small} run {left}"
            else:  # freeze and ignore keep what runs; the group stays on its holder
                assert holder in left.get(group_members(lab, g)[-1], []), f"{holder} no longer runs {g}: {left}"
                assert not ours or top in promoted(lab, small[0]), f"{top} was demoted under {policy}"
            for net in corosync.links(lab.ctx):
                t.heal("partition", small[0], network=net)
            whole_again(lab)  # else the majority's view settles before the sides merge (and find what both ran)
            res = t.finish(expect_split_brain=split)
        timeline = vip_timeline(res.history, vip) if vip else []
        gone = [tm for tm, holders in timeline if tm > at and holder not in holders]
        if policy in ("stop", "demote"):
            assert gone, f"the VIP {vip} never left {holder}"
            lab.report.notes.append(
                f"{t.name}: the minority {small} lost quorum and {holder} gave up the VIP "
                f"{round((gone[0] - at) * 1000)} ms after the partition (token + consensus: "
                f"{bounds.membership_ms(lab.opts)} ms, then the group's stops)"
            )
        report_transitions(t, at, f"partition {small} | {big}", res.history)
        # each change of the VIP's holders, until the next: the spans where two nodes held it
        spans = [(tm, nxt[0]) for (tm, h), nxt in zip(timeline, timeline[1:], strict=False) if tm > at and len(h) > 1]
        if spans:  # the minority's stop and the majority's start race: nothing orders them without fencing
            lab.report.notes.append(
                f"{t.name}: {vip} on two nodes for {round(sum(b - a for a, b in spans) * 1000)} ms, from "
                f"{round((spans[0][0] - at) * 1000)} ms after the partition (no fencing: the majority starts the "
                "group without waiting for the minority to stop it)"
            )
        assert_checks(res, may_fail=("vip-holders",) if policy in ("stop", "demote") else (), lab=lab)
    finally:
        set_policy(lab, lab.opts.no_quorum_policy)


@pytest.mark.smoke
def test_last_man_standing_recalculates_quorum_down_to_two(lab: Lab) -> None:
    """Guide lines 441-444: nodes lost a few at a time, each loss leaving exactly a quorum, each followed by
    last_man_standing_window: the expected votes drop to the nodes left each time, and the cluster stays quorate
    down to two; the step from two to one loses quorum unless auto_tie_breaker keeps it on the tie breaker."""
    needs_full_size(lab)
    opts = lab.opts
    if not opts.last_man_standing:
        pytest.skip("the scenario turns last_man_standing off")
    window_s = (opts.last_man_standing_window_ms or 10000) / 1000
    left, lost = list(nodes(lab)), []
    with lab.trial("last-man-standing") as t:
        while len(left) > 2:
            keep = majority(len(left))
            victims, left = left[keep:], left[:keep]
            lost += victims
            step_down(t, left, victims, window_s)
        last = left[-1]
        atb_keeps = opts.auto_tie_breaker is not None and left[0] == tie_breaker(lab, left)
        at = t.fault("crash", last)
        lost.append(last)
        survivor = left[0]
        until(
            lambda: (v := ask(lab, survivor)) is not None and v["members"] == [survivor] and v["quorate"] is atb_keeps,
            timeout=3 * membership_s(lab) + 15,
            what=f"{survivor} alone, {'quorate (tie breaker)' if atb_keeps else 'without quorum'}",
            seen=lambda: brief(views(lab, [survivor])),
        )
        report_transitions(t, at, f"lost {last}, {survivor} left alone")
        t.heal_crashes(lost)
        t.settle()
        res = t.finish(membership_change=True)
    assert_checks(res)


def step_down(t: Trial, left: list[str], victims: list[str], window_s: float) -> None:
    """Crash `victims`; `left` (exactly a quorum) stays quorate, then once the window has passed with quorum the
    expected votes are recalculated to the nodes left: not before the window (a true lower bound), measured."""
    lab = t.lab
    at = time.time()
    for n in victims:
        t.fault("crash", n)
    until(
        lambda: side_formed(lab, left, quorate=True),
        timeout=3 * membership_s(lab) + 15,
        what=f"{left} quorate after losing {victims}",
        seen=lambda: brief(views(lab, left)),
    )

    def dropped() -> float | None:
        """When the observer first saw a node of `left` with the expected votes recalculated, once all had."""
        found = quorum_transitions(t.history(), at)
        moved = [tr for tr in found if tr["changes"].get("expected", [0, 0])[1] == len(left)]
        return min(tr["time"] for tr in moved) if {tr["node"] for tr in moved} >= set(left) else None

    first = until(
        dropped,
        timeout=window_s + 3 * membership_s(lab) + 15,
        interval=t.observer.quorum_period_s,  # each poll reads the whole history: no faster than it gains samples
        what=f"expected votes recalculated to {len(left)} on {left} after the window ({window_s:g} s), in the history",
        seen=lambda: brief(views(lab, left)),
    )
    report_transitions(t, at, f"lost {victims}")
    assert first - at >= window_s, f"expected votes dropped {first - at:.1f} s after the loss, within the window"


def test_losing_past_quorum_before_the_window_loses_quorum(lab: Lab) -> None:
    """Guide line 444: the cluster must have held quorum for the whole window before it recalculates: lose down
    to exactly a quorum, then one more before the window ends: the rest are without quorum."""
    needs_full_size(lab)
    opts = lab.opts
    window_s = (opts.last_man_standing_window_ms or 10000) / 1000
    members = nodes(lab)
    keep = majority(len(members))
    left, victims = members[: keep - 1], members[keep - 1 :]
    with lab.trial("lms-too-soon") as t:
        at = time.time()
        for n in victims[1:]:
            t.fault("crash", n)
        until(
            lambda: side_formed(lab, [*left, victims[0]], quorate=True),
            timeout=3 * membership_s(lab) + 15,
            what=f"{[*left, victims[0]]} quorate, exactly a quorum",
            seen=lambda: brief(views(lab, members)),
        )
        second = t.fault("crash", victims[0])
        # the window runs from the membership change, after the first losses: less of it than this has passed
        assert second - at < window_s, "the second loss came after the window: the test would prove nothing"
        until(
            lambda: side_formed(lab, left, quorate=False),
            timeout=3 * membership_s(lab) + 15,
            what=f"{left} without quorum",
            seen=lambda: brief(views(lab, left)),
        )
        assert all(v and v["expected"] == len(members) for v in views(lab, left).values()), brief(views(lab, left))
        report_transitions(t, at, f"lost {victims[1:]}, then {victims[0]} within the window")
        t.heal_crashes(victims)
        t.settle()
        res = t.finish(membership_change=True)
    assert_checks(res)
