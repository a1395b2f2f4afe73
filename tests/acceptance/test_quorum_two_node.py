"""Guide ch. 2's two-host votequorum (lines 446-470: `expected_votes: 2`, `two_node: 1`, which implies wait_for_all),
on scenarios/qdevice.yaml's profile two-node: a lone survivor keeps quorum; after both nodes went down, one started
alone stays without quorum until its peer has been seen."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.fixtures import assert_checks, make_lab, scenario_for
from lab.session import Lab
from lab.wait import until
from provision import quorum as playbook
from tests.acceptance.quorum_view import (
    brief,
    membership_s,
    nodes,
    report_transitions,
    side_formed,
    views,
)
from tests.acceptance.two_node_start import one_started_alone

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
    """Both nodes down; one started: it forms a membership of its own and stays without quorum, nothing running
    (under this profile's policy), for as long as a quorate start would take; its peer's start makes both
    quorate (tests/acceptance/two_node_start.py)."""
    one_started_alone(lab, playbook.start_nodes, "two-node-wait-for-all")
