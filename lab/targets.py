"""Fault targets as selectors, resolved when the fault is applied (the node that holds a group *now*).

    node1                a node by name
    holder:g_mysql       the node running every member of a Pacemaker group
    service:mysql        the node running the group of a scenario service (whatever the scenario calls the group)
    vip:mysql            the node holding a scenario VIP (by the VIP's name in `vips:`)
    master               the keepalived MASTER: the keepalived node holding its VIP
    role:pacemaker:2     the 2nd node (1-based, scenario order) with a role
    random:pacemaker     a running node of a role, drawn from the run's seeded random source

`check` validates a selector against the scenario before anything runs; `resolve` needs the live lab."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from lab.scenario import KNOWN_ROLES, Scenario

KINDS = ("holder", "service", "vip", "master", "role", "random")


class TargetError(ValueError):
    """A selector that cannot name a node; the message says which and how to fix it."""


@dataclass
class Live:
    """What resolving a selector may look at, supplied by the running lab."""

    scenario: Scenario
    running: Callable[[str], bool]
    group_holders: Callable[[], dict[str, str | None]]
    addresses: Callable[[str], list[str]]
    rng: random.Random


def check(selector: str, scenario: Scenario) -> None:
    """Raise TargetError unless `selector` can name a node of `scenario` (before the lab exists)."""
    kind, _, arg = selector.partition(":")
    if kind == "master" and arg:
        raise TargetError(f"{selector}: write master alone (the keepalived node holding the VIP)")
    if not arg and kind != "master":
        if selector not in scenario.nodes:
            raise TargetError(
                f"no node {selector!r}: use a node of {', '.join(scenario.nodes)} or a selector ({', '.join(KINDS)})"
            )
        return
    if kind == "holder":
        groups = sorted({s.group for s in scenario.services.values() if s.group})
        if arg not in groups:
            raise TargetError(f"holder:{arg}: no group {arg!r} in the scenario; use one of: {', '.join(groups) or '-'}")
    elif kind == "service":
        grouped = [n for n, s in scenario.services.items() if s.group]
        if arg not in grouped:
            raise TargetError(f"service:{arg}: no service {arg!r} runs in a group; use one of: {', '.join(grouped)}")
    elif kind == "vip":
        if arg not in scenario.vips:
            raise TargetError(f"vip:{arg}: no VIP {arg!r}; use one of: {', '.join(scenario.vips)}")
    elif kind == "master":
        if not scenario.nodes_with_role("keepalived"):
            raise TargetError("master: the scenario has no keepalived node")
    elif kind in ("role", "random"):
        role, _, nth = arg.partition(":")
        if role not in KNOWN_ROLES:
            raise TargetError(f"{selector}: unknown role {role!r}; use one of: {', '.join(sorted(KNOWN_ROLES))}")
        have = scenario.nodes_with_role(role)
        if not have:
            raise TargetError(f"{selector}: no node has the role {role}")
        if kind == "role":
            if not (nth.isascii() and nth.isdigit()) or not 1 <= int(nth) <= len(have):
                raise TargetError(f"{selector}: write role:{role}:N with N from 1 to {len(have)}")
        elif nth:
            raise TargetError(f"{selector}: write random:{role} (no index)")
    else:
        raise TargetError(f"{selector!r}: unknown selector kind {kind!r}; use a node name or one of {', '.join(KINDS)}")


def resolve(selector: str, live: Live) -> str:
    """The node `selector` names now; TargetError if none does (a group not running anywhere, a VIP on no node)."""
    check(selector, live.scenario)
    kind, _, arg = selector.partition(":")
    sc = live.scenario
    if not arg and kind != "master":
        return selector
    if kind in ("holder", "service"):
        group = arg if kind == "holder" else str(sc.services[arg].group)
        node = live.group_holders().get(group)
        if not node:
            raise TargetError(f"{selector}: {group} is not running whole on any node right now")
        return node
    if kind in ("vip", "master"):
        name = arg if kind == "vip" else _keepalived_vip(sc)
        address = str(sc.vips[name].address)
        holders = [n for n in sc.nodes if live.running(n) and address in live.addresses(n)]
        if len(holders) != 1:
            raise TargetError(f"{selector}: VIP {address} is held by {', '.join(holders) or 'no node'}, not one node")
        return holders[0]
    role, _, nth = arg.partition(":")
    nodes = [n.name for n in sc.nodes_with_role(role)]
    if kind == "role":
        return nodes[int(nth) - 1]
    up = [n for n in nodes if live.running(n)]
    if not up:
        raise TargetError(f"{selector}: no node with the role {role} is running")
    return live.rng.choice(up)


def _keepalived_vip(sc: Scenario) -> str:
    """The VIP keepalived holds: one whose resource is not a Pacemaker IPaddr2 (none of the groups' VIPs)."""
    grouped = {s.vip for s in sc.services.values() if s.group}
    return next(v for v in sc.vips if v not in grouped)
