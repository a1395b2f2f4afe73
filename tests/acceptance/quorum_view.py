"""What the quorum suites read from a running lab: each node's `corosync-quorumtool -s`, a side's membership, what
runs where as one side's crm_mon sees it, and the report's lines for quorum transitions (tests/acceptance/
test_quorum*.py)."""

from __future__ import annotations

from typing import Any

import pytest

from lab import bounds
from lab.checks.placement import online_nodes, resource_nodes, role_nodes
from lab.checks.quorum import describe_transition, grouped, quorum_transitions
from lab.checks.quorum_parse import QuorumParseError, parse_quorumtool
from lab.history import History
from lab.observer import QUORUM_CMD
from lab.scenario_quorum import voters
from lab.session import Lab
from lab.trial import Trial
from lab.wait import until
from provision import corosync, pacemaker, pacemaker_groups, qdevice
from provision import quorum as playbook

UNPROMOTED = ("Unpromoted", "Slave")


def nodes(lab: Lab) -> list[str]:
    return lab.ctx.cluster_nodes


def majority(votes: int) -> int:
    """votequorum's quorum of `votes` one-vote members: more than half."""
    return votes // 2 + 1


def ask(lab: Lab, node: str) -> dict[str, Any] | None:
    """The node's `corosync-quorumtool -s`, parsed; None where corosync does not answer."""
    r = lab.provider.run(node, QUORUM_CMD, timeout=15)
    try:
        return parse_quorumtool(r.stdout)
    except QuorumParseError:
        return None


def views(lab: Lab, on: list[str]) -> dict[str, dict[str, Any] | None]:
    return {n: ask(lab, n) for n in on}


def brief(vs: dict[str, dict[str, Any] | None]) -> str:
    return "; ".join(
        f"{n}: " + ("no answer" if v is None else f"quorate={v['quorate']} expected={v['expected']} "
                    f"quorum={v['quorum']} members={len(v['members'])}")
        for n, v in vs.items()
    )  # fmt: skip


def side_formed(lab: Lab, side: list[str], quorate: bool) -> bool:
    """Every node of `side` lists exactly `side` as members and is (or is not) quorate."""
    vs = views(lab, side)
    return all(v is not None and set(v["members"]) == set(side) and v["quorate"] is quorate for v in vs.values())


def running_on(lab: Lab, viewer: str, among: list[str]) -> dict[str, list[str]]:
    """Resource id -> the nodes of `among` it runs on, as `viewer`'s crm_mon sees it (its side's view)."""
    xml = pacemaker.crm_mon_xml(lab.ctx, viewer) or "<crm_mon/>"
    return {r: [n for n in on if n in among] for r, on in resource_nodes(xml).items() if set(on) & set(among)}


def promoted(lab: Lab, viewer: str, roles: tuple[str, ...] = ("Promoted", "Master")) -> list[str]:
    return role_nodes(pacemaker.crm_mon_xml(lab.ctx, viewer) or "<crm_mon/>", playbook.STATEFUL, roles)


def membership_s(lab: Lab) -> float:
    return bounds.membership_ms(lab.opts) / 1000


def device_timeout_s(lab: Lab) -> float:
    """How long the nodes keep the device's vote without qnetd: its timeout, then its sync timeout at worst
    (corosync-qdevice(8) defaults 10000 and 30000 ms)."""
    dev = lab.opts.qdevice
    assert dev is not None
    return ((dev.timeout_ms or 10_000) + (dev.sync_timeout_ms or 30_000)) / 1000


def device_counted(lab: Lab) -> tuple[int, str]:
    """Every cluster node quorate with all the votes there are (its own and the device's: expected = total, quorum
    their majority, flag Qdevice), and qnetd ACKing every node; (the votes, qnetd's status)."""
    members, dev = nodes(lab), lab.opts.qdevice
    assert dev is not None
    votes = voters(lab.opts, len(members))
    vs = views(lab, members)
    for n, v in vs.items():
        assert v is not None and v["quorate"], f"{n}: {brief(vs)}"
        assert (v["expected"], v["total"], v["quorum"]) == (votes, votes, majority(votes)), brief(vs)
        assert "Qdevice" in v["flags"], f"{n}: flags {v['flags']}"
    status = lab.provider.run(dev.host, qdevice.QNETD_STATUS, check=True, timeout=15).stdout
    assert qnetd_votes(status, corosync.nodeids(lab.ctx)) == dict.fromkeys(members, "ACK"), status
    return votes, status


def report_transitions(t: Trial, since: float, what: str, history: History | None = None) -> list[dict[str, Any]]:
    """Quorum transitions per node since `since`, from the observer's samples (`history`: the finished trial's, else
    read now); noted in the report."""
    found = quorum_transitions(history or t.history(), since)
    t.lab.report.notes += [f"{t.name}: {what}: {describe_transition(tr, since)}" for tr in grouped(found)]
    return found


def group(lab: Lab) -> str:
    return next(iter(playbook.groups(lab.ctx).values()))


def whole_again(lab: Lab) -> None:
    """One quorate membership of every cluster node, and the DC's crm_mon showing them all online (joined)."""
    members = nodes(lab)

    def joined() -> bool:
        xml = pacemaker.crm_mon_xml(lab.ctx, members[0])
        return side_formed(lab, members, quorate=True) and bool(xml) and sorted(online_nodes(xml or "")) == members

    until(
        joined,
        timeout=3 * membership_s(lab) + pacemaker.stack_deadline_s(lab.ctx),
        what=f"{members} in one quorate membership, all online in crm_mon",
        seen=lambda: brief(views(lab, members)),
    )


def transitions_done(lab: Lab, node: str) -> None:
    """`node`'s side has nothing left to do (crm_resource --wait), within the worst case the CIB's timeouts give for
    moving its groups (a stop then a start, after a membership change); on expiry, what was still pending."""
    deadline = pacemaker_groups.start_deadline_s(lab.ctx, list(playbook.groups(lab.ctx).values()))
    r = lab.provider.run(node, f"crm_resource --wait --timeout={int(deadline)}s", timeout=deadline + 10)
    assert r.ok, f"{node}: transitions not done within {deadline:.0f} s: {pacemaker_groups.pending(lab.ctx, node)}"


def set_policy(lab: Lab, policy: str) -> None:
    lab.provider.run(
        nodes(lab)[0], f"crm_attribute -t crm_config -n no-quorum-policy -v {policy}", check=True, timeout=30
    )


def needs_full_size(lab: Lab) -> None:
    if lab.opts.two_node or lab.opts.qdevice is not None or len(nodes(lab)) < 3:
        pytest.skip("a full-size cluster's test: this scenario runs two nodes (two_node or a qdevice)")


def group_members(lab: Lab, g: str) -> list[str]:
    return bounds.group_members(lab.pcmk.cib_resources(), g)


def qnetd_votes(text: str, ids: dict[str, int]) -> dict[str, str]:
    """`corosync-qnetd-tool -l -v` -> node name -> the vote qnetd last sent it (ACK, NACK, ...): its lines read
    `Node ID 1:` ... `Vote: No change (ACK)`, the last vote in parentheses after a change-less poll."""
    names = {i: n for n, i in ids.items()}
    out: dict[str, str] = {}
    node: str | None = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("Node ID ") and s.endswith(":"):
            node = names.get(int(s.removeprefix("Node ID ").rstrip(":")))
        elif s.startswith("Vote:") and node is not None:
            vote = s.removeprefix("Vote:").strip()
            out[node] = vote[vote.rfind("(") + 1 : -1] if vote.endswith(")") else vote
    return out


def qnetd_rule(text: str) -> str:
    """qnetd's own words on how it decides: its Algorithm and Tie-breaker lines."""
    keep = [ln.strip() for ln in text.splitlines() if ln.strip().startswith(("Algorithm:", "Tie-breaker:"))]
    return "; ".join(" ".join(ln.split()) for ln in dict.fromkeys(keep))


def tie_breaker(lab: Lab, among: list[str]) -> str:
    """The node votequorum's auto_tie_breaker_node names among `among`: lowest or highest nodeid, or the first of
    the list that is there."""
    ids = corosync.nodeids(lab.ctx)
    atb = lab.opts.auto_tie_breaker
    if atb == "highest":
        return max(among, key=ids.__getitem__)
    if isinstance(atb, tuple):
        return next(n for n in atb if n in among)
    return min(among, key=ids.__getitem__)
