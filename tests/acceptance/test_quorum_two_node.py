"""Guide ch. 2's two-host votequorum (lines 446-470: `expected_votes: 2`, `two_node: 1`, which implies wait_for_all),
on scenarios/qdevice.yaml's profile two-node: a lone survivor keeps quorum; after both nodes went down, one started
alone stays without quorum until its peer has been seen."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from lab.checks.base import Check
from lab.checks.quorum import wait_for_all
from lab.fixtures import assert_checks, make_lab, scenario_for
from lab.scenario_quorum import wait_for_all as wfa_on
from lab.session import Lab
from lab.wait import holds, until
from provision import pacemaker
from provision import quorum as playbook
from tests.acceptance.quorum_view import (
    brief,
    membership_s,
    nodes,
    report_transitions,
    running_on,
    side_formed,
    views,
)

pytestmark = pytest.mark.quorum

SHIPPED, PROFILE = "qdevice", "two-node"


@pytest.fixture(scope="module")
def lab(provider: str) -> Iterator[Lab]:
    sc = scenario_for("quorum", SHIPPED)
    if PROFILE not in sc.profiles or not sc.options(PROFILE).two_node:
        pytest.skip(f"the two_node tests: {sc.path.name} has no profile {PROFILE} with two_node")
    yield from make_lab("quorum", PROFILE, provider, shipped=SHIPPED)


def test_a_lone_survivor_keeps_quorum(lab: Lab) -> None:
    """two_node: either node alone is quorate (the guide's reason for `no-quorum-policy=ignore` is gone)."""
    members = nodes(lab)
    with lab.trial("two-node-survivor") as t:
        placed = t.settle()
        victim = next(iter(placed.values()))
        survivor = next(n for n in members if n != victim)
        at = t.fault("crash", victim)
        until(
            lambda: side_formed(lab, [survivor], quorate=True),
            timeout=3 * membership_s(lab) + 15,
            what=f"{survivor} alone and quorate",
            seen=lambda: brief(views(lab, [survivor])),
        )
        assert {"2Node", "WaitForAll"} <= set((views(lab, [survivor])[survivor] or {}).get("flags", []))
        moved = t.settle(on=survivor, avoid=victim)
        assert set(moved.values()) == {survivor}
        t.heal("crash", victim)
        t.settle()
        res = t.finish(membership_change=True)
    report_transitions(t, at, f"lost {victim}", res.history)
    assert_checks(res)


def test_one_node_started_alone_waits_for_its_peer(lab: Lab) -> None:
    """Both nodes down; one started: it forms a membership of its own and stays without quorum, nothing running,
    for as long as a quorate start would take; its peer's start makes both quorate."""
    if not wfa_on(lab.opts):
        pytest.skip("the scenario turns wait_for_all off")
    members = nodes(lab)
    first, late = members
    deadline = pacemaker.stack_deadline_s(lab.ctx)
    with lab.trial("two-node-wait-for-all") as t:
        for n in members:
            t.fault("crash", n)
        t.heal_crashes([first], rejoin=False)
        started = time.time()
        playbook.start_nodes(lab.ctx, [first])
        until(
            lambda: side_formed(lab, [first], quorate=False),
            timeout=deadline,
            what=f"{first} up alone without quorum",
            seen=lambda: brief(views(lab, [first])),
        )
        holds(
            lambda: side_formed(lab, [first], quorate=False) and not running_on(lab, first, [first]),
            duration=deadline,
            what=f"no quorum and nothing running on {first} while {late} is down",
            seen=lambda: f"{brief(views(lab, [first]))}; running {running_on(lab, first, [first])}",
        )
        t.heal_crashes([late])
        t.settle()
        res = t.finish()
    report_transitions(t, started, f"{first} started alone, {late} after {deadline:.0f} s", res.history)
    check = wait_for_all(res.history, members, since=started)
    lab.report.checks.append(Check(f"two-node-wait-for-all: {check.name}", check.passed, check.detail))
    assert check.passed, check.detail
    assert_checks(res)
