"""Guide ch. 2 (line 441), auto_tie_breaker on an even-sized cluster (scenarios/quorum-atb.yaml, one lab per
profile: the tie breaker named lowest, highest, or as a list): an exact half split leaves quorum with the half that
holds the tie breaker node, and only with it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from lab.fixtures import assert_checks, make_lab, scenario_for
from lab.scenario import ScenarioError, load_scenario
from lab.session import Lab
from lab.wait import until
from provision import corosync
from tests.acceptance.quorum_view import (
    brief,
    membership_s,
    nodes,
    report_transitions,
    running_on,
    side_formed,
    tie_breaker,
    transitions_done,
    views,
    whole_again,
)

pytestmark = pytest.mark.quorum

SHIPPED = "quorum-atb"


def _profiles() -> list[str]:
    """The scenario's profiles that name a tie breaker on an even number of cluster nodes (none: one lab that
    skips, saying why)."""
    wanted = os.environ.get("LAB_SCENARIO", "").strip()
    try:  # collected by every suite: a LAB_SCENARIO of another topology is theirs (make_lab says so when run here)
        sc = load_scenario(wanted or SHIPPED)
    except ScenarioError:
        return ["(none)"]
    if sc.topology != "quorum":
        return ["(none)"]
    even = len(sc.nodes_with_role("pacemaker")) % 2 == 0
    found = [p for p in sc.profiles if even and sc.options(p).auto_tie_breaker is not None]
    return found or ["(none)"]


@pytest.fixture(scope="module", params=_profiles())
def lab(provider: str, request: pytest.FixtureRequest) -> Iterator[Lab]:
    if request.param == "(none)":
        scenario_for("quorum", SHIPPED)  # a LAB_SCENARIO of another topology fails here, as in every suite
        pytest.skip("auto_tie_breaker's test: the scenario names no tie breaker on an even number of nodes")
    yield from make_lab("quorum", request.param, provider, shipped=SHIPPED)


def test_an_exact_half_split_leaves_quorum_with_the_tie_breakers_half(lab: Lab) -> None:
    members = nodes(lab)
    half = len(members) // 2
    first, second = members[:half], members[half:]
    breaker = tie_breaker(lab, members)
    win, lose = (first, second) if breaker in first else (second, first)
    for n, v in views(lab, members).items():
        assert v is not None and "AutoTieBreaker" in v["flags"], f"{n}: {brief({n: v})}"
    with lab.trial(f"atb-{lab.profile}") as t:
        cuts = [
            t.fault("partition", first[0], side=first[1:], others=second, network=net)
            for net in corosync.links(lab.ctx)
        ]
        until(
            lambda: side_formed(lab, win, quorate=True) and side_formed(lab, lose, quorate=False),
            timeout=3 * membership_s(lab) + 15,
            what=f"{win} (holding the tie breaker {breaker}) quorate and {lose} without quorum",
            seen=lambda: brief(views(lab, members)),
        )
        placed = t.settle(on=win[0])
        assert set(placed.values()) <= set(win), f"the group runs on {placed}, outside the quorate half {win}"
        transitions_done(lab, lose[0])
        left = running_on(lab, lose[0], lose)
        assert not left, f"{lose} without quorum still run {left} (no-quorum-policy={lab.opts.no_quorum_policy})"
        lab.report.notes.append(
            f"{t.name}: auto_tie_breaker {lab.opts.auto_tie_breaker}: the tie breaker is {breaker} "
            f"(nodeids {corosync.nodeids(lab.ctx)}); {win} kept quorum, {lose} lost it"
        )
        for net in corosync.links(lab.ctx):
            t.heal("partition", first[0], network=net)
        whole_again(lab)
        res = t.finish()
    report_transitions(t, cuts[-1], f"split {first} | {second}", res.history)
    assert_checks(res, may_fail=("vip-holders",), lab=lab)  # no fencing: the winners may start before losers stop
