"""Guide ch. 2's two-node cluster with a quorum device in place of `two_node: 1` (scenarios/qdevice.yaml):
corosync-qdevice on both nodes, corosync-qnetd on an arbiter. Every expectation from the scenario's qdevice
options, every figure from corosync-quorumtool, qnetd's own status and the recorded history."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.fixtures import assert_checks, make_lab, scenario_for
from lab.scenario_quorum import voters
from lab.session import Lab
from lab.wait import until
from provision import corosync, qdevice
from tests.acceptance.quorum_view import (
    brief,
    device_counted,
    device_timeout_s,
    membership_s,
    nodes,
    qnetd_rule,
    qnetd_votes,
    report_transitions,
    running_on,
    side_formed,
    transitions_done,
    views,
    whole_again,
)

pytestmark = pytest.mark.quorum


@pytest.fixture(scope="module")
def lab(provider: str) -> Iterator[Lab]:
    sc = scenario_for("quorum", "qdevice")
    if sc.options().qdevice is None:  # before bringing a lab up for nothing
        pytest.skip(f"the qdevice tests: {sc.path.name} configures no quorum device")
    yield from make_lab("quorum", None, provider, shipped="qdevice")


def arbiter(lab: Lab) -> str:
    dev = lab.opts.qdevice
    if dev is None or len(nodes(lab)) != 2:
        pytest.skip("a two-node cluster with a qdevice's test: this scenario has none")
    return dev.host


def qnetd_status(lab: Lab) -> str:
    return lab.provider.run(arbiter(lab), qdevice.QNETD_STATUS, check=True, timeout=15).stdout


@pytest.mark.smoke
def test_the_qdevice_casts_the_third_vote(lab: Lab) -> None:
    host = arbiter(lab)
    assert lab.opts.qdevice is not None
    votes, status = device_counted(lab)
    if lab.opts.qdevice.algorithm == "ffsplit":  # qnetd's own name for it
        assert "Algorithm: Fifty-Fifty split" in qnetd_rule(status), status
    lab.report.notes.append(f"qdevice: {host} runs qnetd ({qnetd_rule(status)}); every node quorate with {votes} votes")


@pytest.mark.smoke
def test_split_between_the_nodes_leaves_exactly_the_side_qnetd_votes_for(lab: Lab) -> None:
    """ffsplit: in a 50:50 split both sides still reach qnetd, which sends its vote to exactly one (its
    tie-breaker); that side stays quorate and runs the group, the other loses quorum and stops everything."""
    host, members = arbiter(lab), nodes(lab)
    if lab.opts.qdevice is None or lab.opts.qdevice.algorithm != "ffsplit":
        pytest.skip("ffsplit's test: the scenario's qdevice runs another algorithm")
    ids = corosync.nodeids(lab.ctx)
    with lab.trial("qdevice-split") as t:
        one, two = members
        # between the nodes only, on every cluster link: each still reaches the arbiter on its own network
        cuts = [t.fault("partition", one, others=two, network=net) for net in corosync.links(lab.ctx)]
        at = cuts[-1]

        def decided() -> tuple[str, str] | None:
            vs = views(lab, members)
            up = [n for n, v in vs.items() if v is not None and v["quorate"] and v["members"] == [n]]
            down = [n for n, v in vs.items() if v is not None and not v["quorate"] and v["members"] == [n]]
            return (up[0], down[0]) if len(up) == 1 and len(down) == 1 else None

        winner, loser = until(
            decided,
            timeout=3 * membership_s(lab) + device_timeout_s(lab),
            what="each node alone in its membership, exactly one quorate",
            seen=lambda: brief(views(lab, members)),
        )
        status = qnetd_status(lab)
        votes = qnetd_votes(status, ids)
        assert votes.get(winner) == "ACK" and votes.get(loser) == "NACK", f"qnetd's votes {votes}: {status}"
        lab.report.notes.append(
            f"{t.name}: qnetd on {host} voted for {winner} (ACK) and not {loser} (NACK): {qnetd_rule(status)}"
        )
        t.settle(on=winner)
        transitions_done(lab, loser)
        left = running_on(lab, loser, [loser])
        assert not left, f"{loser} without quorum still runs {left} (no-quorum-policy={lab.opts.no_quorum_policy})"
        for net in corosync.links(lab.ctx):
            t.heal("partition", one, network=net)
        whole_again(lab)
        res = t.finish()
    report_transitions(t, at, f"split {one} | {two}", res.history)
    assert_checks(res, may_fail=("vip-holders",), lab=lab)  # no fencing: the winner may start before the loser stops


def test_losing_qnetd_keeps_quorum_until_a_node_is_lost_too(lab: Lab) -> None:
    """The arbiter alone lost: both nodes keep quorum (2 of 3 votes). Then a node: the survivor has 1 of 3, no
    quorum, and stops what it runs."""
    host, members = arbiter(lab), nodes(lab)
    votes = voters(lab.opts, len(members))
    with lab.trial("qnetd-lost") as t:
        at = t.fault("crash", host)
        until(
            lambda: all(v and v["quorate"] and v["total"] == votes - 1 for v in views(lab, members).values()),
            timeout=device_timeout_s(lab) + 3 * membership_s(lab),
            what=f"{members} quorate on their own {votes - 1} votes once the device's is gone",
            seen=lambda: brief(views(lab, members)),
        )
        placed = t.settle()
        survivor = next(iter(placed.values()))  # keep the group's node: its loss of quorum is what stops it
        gone = next(n for n in members if n != survivor)
        t.fault("crash", gone)
        until(
            lambda: side_formed(lab, [survivor], quorate=False),
            timeout=3 * membership_s(lab) + 15,
            what=f"{survivor} alone without quorum",
            seen=lambda: brief(views(lab, [survivor])),
        )
        transitions_done(lab, survivor)
        assert not running_on(lab, survivor, [survivor]), f"{survivor} runs {running_on(lab, survivor, [survivor])}"
        t.heal("crash", host)
        t.heal("crash", gone)
        until(
            lambda: all(v and v["total"] == votes for v in views(lab, members).values()),
            timeout=device_timeout_s(lab) + 3 * membership_s(lab),
            what=f"the device's vote back: {votes} votes on {members}",
            seen=lambda: brief(views(lab, members)),
        )
        whole_again(lab)
        t.settle()
        res = t.finish(membership_change=True)
    report_transitions(t, at, f"lost {host}, then {gone}", res.history)
    assert_checks(res)
