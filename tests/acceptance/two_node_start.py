"""Guide ch. 2's two-host votequorum (lines 446-470: `two_node: 1` implies `wait_for_all`): both nodes down, one
started alone. It forms a membership of its own and has no quorum until its peer has been seen; what Pacemaker then
runs follows the scenario's no-quorum-policy: nothing under stop/freeze/demote, the whole cluster's groups under
`ignore` (the guide's ch. 3 setting: the lone node runs everything without quorum, which is why the hardened profile
adds fencing). Shared by the quorum suite's two-node profile and the active/passive suite."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from lab.checks.base import Check
from lab.checks.quorum import wait_for_all
from lab.fixtures import assert_checks
from lab.scenario_quorum import wait_for_all as wfa_on
from lab.session import Lab
from lab.wait import holds, until
from provision import pacemaker
from provision.context import Context
from tests.acceptance.quorum_view import brief, nodes, report_transitions, running_on, side_formed, views


def one_started_alone(lab: Lab, start: Callable[[Context, list[str]], None], name: str) -> None:
    """`start` brings up the stacks of the nodes it is given as their init would at boot, without waiting."""
    if not (lab.opts.two_node and wfa_on(lab.opts)):
        pytest.skip(f"{lab.scenario.path.name}: not a two_node cluster with wait_for_all")
    members = nodes(lab)
    first, late = members
    policy = lab.opts.no_quorum_policy
    deadline = pacemaker.stack_deadline_s(lab.ctx)
    with lab.trial(name) as t:
        for n in members:  # a power cut of the whole cluster
            t.fault("crash", n)
        t.heal_crashes([first], rejoin=False)
        started = time.time()
        start(lab.ctx, [first])
        until(
            lambda: side_formed(lab, [first], quorate=False),
            timeout=deadline,
            what=f"{first} up alone without quorum",
            seen=lambda: brief(views(lab, [first])),
        )
        if policy == "ignore":
            # the lone node elects itself DC and starts every group though it has no quorum
            alone = t.settle(on=first)
            assert side_formed(lab, [first], quorate=False), brief(views(lab, [first]))
            assert set(alone.values()) == {first}, f"no-quorum-policy=ignore, {first} alone: placed {alone}"
        else:  # as long as a quorate start would take (dc-deadtime twice, knet's links)
            holds(
                lambda: side_formed(lab, [first], quorate=False) and not running_on(lab, first, [first]),
                duration=deadline,
                what=f"no quorum and nothing running on {first} while {late} is down (no-quorum-policy={policy})",
                seen=lambda: f"{brief(views(lab, [first]))}; running {running_on(lab, first, [first])}",
            )
        t.heal_crashes([late])  # its stack starts; restart_nodes waits for both online with quorum
        t.settle()
        res = t.finish()
    report_transitions(t, started, f"{first} started alone, {late} after it", res.history)
    check = wait_for_all(res.history, members, since=started)
    lab.report.checks.append(Check(f"{name}: {check.name}", check.passed, check.detail))
    assert check.passed, check.detail
    assert_checks(res)
