"""A quorum device of algorithm lms (scenarios/qdevice-lms.yaml: three nodes and a qnetd arbiter): the device casts
one vote less than the nodes together, so the last node standing keeps quorum as long as it reaches qnetd, and
loses it once it does not. Every expectation from the scenario's qdevice options, every figure from
corosync-quorumtool, qnetd's own status and the recorded history."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.fixtures import assert_checks, make_lab, scenario_for
from lab.scenario_quorum import voters
from lab.session import Lab
from lab.wait import until
from tests.acceptance.quorum_view import (
    ask,
    brief,
    device_counted,
    device_timeout_s,
    group,
    group_members,
    majority,
    membership_s,
    nodes,
    qnetd_rule,
    report_transitions,
    running_on,
    side_formed,
    transitions_done,
    views,
    whole_again,
)

pytestmark = pytest.mark.quorum

SHIPPED = "qdevice-lms"


@pytest.fixture(scope="module")
def lab(provider: str) -> Iterator[Lab]:
    sc = scenario_for("quorum", SHIPPED)
    dev = sc.options().qdevice
    if dev is None or dev.algorithm != "lms":  # before bringing a lab up for nothing
        pytest.skip(f"the lms tests: {sc.path.name} configures no quorum device of algorithm lms")
    yield from make_lab("quorum", None, provider, shipped=SHIPPED)


def device_votes(lab: Lab) -> int:
    assert lab.opts.qdevice is not None
    return lab.opts.qdevice.votes(len(nodes(lab)))


def test_the_lms_device_casts_one_vote_less_than_the_nodes(lab: Lab) -> None:
    members = nodes(lab)
    votes, status = device_counted(lab)
    assert "Algorithm: LMS" in qnetd_rule(status), status
    lab.report.notes.append(
        f"qdevice lms: {len(members)} node votes + {device_votes(lab)} from qnetd = {votes}, quorum "
        f"{majority(votes)} ({qnetd_rule(status)})"
    )


def test_the_last_node_keeps_quorum_while_it_reaches_qnetd(lab: Lab) -> None:
    """Lose the other nodes one at a time: each time the nodes left keep quorum on their votes and the device's;
    the last one too (1 + the device's of the votes' majority), and it keeps the group. Then cut it from the
    arbiter: without the device's vote it loses quorum and stops what it runs."""
    members, dev = nodes(lab), lab.opts.qdevice
    assert dev is not None
    votes, extra = voters(lab.opts, len(members)), device_votes(lab)
    if 1 + extra < majority(votes):
        pytest.skip(f"the device's {extra} votes do not keep a lone node quorate (of {votes}): not lms's case")
    with lab.trial("lms-last-node") as t:
        survivor = t.settle()[group(lab)]
        lost = [n for n in members if n != survivor]
        first = None
        for i, victim in enumerate(lost):
            at = t.fault("crash", victim)
            first = first if first is not None else at
            left = [n for n in members if n not in lost[: i + 1]]
            until(
                lambda left=left: (
                    side_formed(lab, left, quorate=True)
                    and all((v or {}).get("total") == len(left) + extra for v in views(lab, left).values())
                ),
                timeout=3 * membership_s(lab) + device_timeout_s(lab),
                what=f"{left} quorate on {len(left)} node votes + the device's {extra}",
                seen=lambda left=left: brief(views(lab, left)),
            )
        t.settle(on=survivor)
        alone = ask(lab, survivor)
        assert alone is not None and alone["quorate"] and alone["members"] == [survivor], brief({survivor: alone})
        held = running_on(lab, survivor, [survivor])
        assert all(r in held for r in group_members(lab, group(lab))), f"{survivor} alone runs only {held}"
        lab.report.notes.append(
            f"{t.name}: {survivor} alone kept quorum with {alone['total']} of {alone['expected']} votes "
            f"(quorum {alone['quorum']}) and ran {sorted(held)}"
        )
        # then the arbiter out of its reach, on every network they share
        reach = lab.scenario.nodes[survivor].addresses
        shared = [net for net in lab.scenario.nodes[dev.host].addresses if net in reach]
        for net in shared:
            t.fault("partition", survivor, others=dev.host, network=net)
        until(
            lambda: side_formed(lab, [survivor], quorate=False),
            timeout=device_timeout_s(lab) + 3 * membership_s(lab),
            what=f"{survivor} without quorum once qnetd is out of reach",
            seen=lambda: brief(views(lab, [survivor])),
        )
        transitions_done(lab, survivor)
        left_running = running_on(lab, survivor, [survivor])
        assert not left_running, f"{survivor} without quorum still runs {left_running}"
        for net in shared:
            t.heal("partition", survivor, network=net)
        t.heal_crashes(lost)
        whole_again(lab)
        t.settle()
        res = t.finish(membership_change=True)
    assert first is not None
    report_transitions(t, first, f"lost {', '.join(lost)}, then qnetd out of {survivor}'s reach", res.history)
    assert_checks(res)
