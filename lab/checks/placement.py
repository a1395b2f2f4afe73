"""Where Pacemaker says resources run, from `crm_mon --output-as=xml` (Pacemaker 2.1 schema)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

from lab.checks.base import Check


def _root(crm_mon_xml: str) -> ET.Element:
    try:
        return ET.fromstring(crm_mon_xml)
    except ET.ParseError as e:
        raise ValueError(f"crm_mon output is not XML: {e}") from e


def _on(resource: ET.Element) -> list[str]:
    return [n.get("name", "?") for n in resource.findall("node")]


def _true(el: ET.Element, attr: str) -> bool:
    return el.get(attr, "false") == "true"


def resource_nodes(crm_mon_xml: str) -> dict[str, list[str]]:
    """Resource id -> nodes it is active on; clone instances share an id, so theirs are merged."""
    out: dict[str, list[str]] = {}
    resources = _root(crm_mon_xml).find("resources")
    for r in resources.iter("resource") if resources is not None else ():
        nodes = out.setdefault(r.get("id", "?"), [])
        for n in _on(r):
            if n not in nodes:
                nodes.append(n)
    return out


def online_nodes(crm_mon_xml: str) -> list[str]:
    nodes = _root(crm_mon_xml).find("nodes")
    return [n.get("name", "?") for n in (nodes if nodes is not None else ()) if _true(n, "online")]


def _resource_problems(r: ET.Element, in_clone: bool, all_online: bool = True) -> list[str]:
    rid, on = r.get("id", "?"), _on(r)
    running = int(r.get("nodes_running_on", len(on)))
    problems = []
    if running > 1:
        problems.append(f"{rid} active on {running} nodes [{', '.join(on)}]")
    if _true(r, "failed") and not _true(r, "failure_ignored"):
        problems.append(f"{rid} failed on [{', '.join(on)}]")
    if _true(r, "blocked"):
        problems.append(f"{rid} blocked (a failed stop without fencing?)")
    # A fence device never runs on the node it fences: with its peer down it has nowhere to run, as configured.
    idle_fence_device = r.get("resource_agent", "").startswith("stonith:") and not all_online
    if running == 0 and not in_clone and not idle_fence_device:
        problems.append(f"{rid} not running (role {r.get('role', '?')})")
    return problems


def _in_clone(r: ET.Element, parents: dict[ET.Element, ET.Element]) -> bool:
    p = parents.get(r)
    while p is not None:
        if p.tag in ("clone", "bundle"):
            return True
        p = parents.get(p)
    return False


def _colocated(label: str, members: Mapping[str, list[str]]) -> str | None:
    nodes = {n for on in members.values() for n in on}
    if len(nodes) <= 1:
        return None
    where = ", ".join(f"{rid}@{'+'.join(on) or '-'}" for rid, on in members.items())
    return f"group {label} split across nodes: {where}"


def placement(crm_mon_xml: str, groups: Mapping[str, Sequence[str]] | None = None) -> Check:
    """Fails if a resource runs on 2+ nodes, is failed or blocked, is not running, or a group is split.

    Groups are the `<group>` elements of the output plus `groups` (name -> resource ids that must
    all run, together on one node). A stopped clone instance is fine while another one runs.
    """
    try:
        root = _root(crm_mon_xml)
    except ValueError as e:
        return Check("placement", False, str(e))
    status = root.find("status")
    resources = root.find("resources")
    empty = resources is None or resources.find(".//resource") is None
    if empty or (status is not None and status.get("code", "0") != "0"):
        msg = "?" if status is None else f"{status.get('code')} {status.get('message', '')}".strip()
        return Check("placement", False, f"crm_mon reported no resources (status {msg})")
    assert resources is not None  # `empty` above returned when it was missing
    parents = {child: parent for parent in resources.iter() for child in parent}
    nodes = root.find("nodes")
    all_online = all(_true(n, "online") for n in (nodes if nodes is not None else ()))
    problems: list[str] = []
    clone_running: dict[str, bool] = {}
    for r in resources.iter("resource"):
        in_clone = _in_clone(r, parents)
        problems += _resource_problems(r, in_clone, all_online)
        if in_clone:
            clone_running[r.get("id", "?")] = clone_running.get(r.get("id", "?"), False) or bool(_on(r))
    problems += [f"{rid} not running on any node (clone)" for rid, up in clone_running.items() if not up]
    split: dict[str, str] = {}
    for g in resources.iter("group"):
        found = _colocated(g.get("id", "?"), {r.get("id", "?"): _on(r) for r in g.findall("resource")})
        if found:
            split[g.get("id", "?")] = found
    where = resource_nodes(crm_mon_xml)
    for name, members in (groups or {}).items():
        problems += [f"group {name}: {m} not in crm_mon output" for m in members if m not in where]
        found = _colocated(name, {m: where[m] for m in members if m in where})
        if found:
            split.setdefault(name, found)
    problems += list(split.values())
    online = online_nodes(crm_mon_xml)
    summary = f"{len(where)} resources, online nodes [{', '.join(online)}]"
    if problems:
        return Check("placement", False, "; ".join(dict.fromkeys(problems)) + f" ({summary})")
    return Check("placement", True, f"every resource running once, groups together ({summary})")


def group_nodes(crm_mon_xml: str) -> dict[str, str | None]:
    """Group id -> the node where every member is started, or None while it is not whole anywhere
    (stopped, starting, split, or a member failed)."""
    resources = _root(crm_mon_xml).find("resources")
    out: dict[str, str | None] = {}
    for g in resources.iter("group") if resources is not None else ():
        members = g.findall("resource")
        nodes = {tuple(_on(r)) for r in members}
        whole = (
            len(nodes) == 1
            and len(next(iter(nodes))) == 1
            and all(r.get("role") == "Started" and not _true(r, "failed") for r in members)
        )
        out[g.get("id", "?")] = next(iter(nodes))[0] if whole else None
    return out


PROMOTED = ("Promoted", "Master")  # crm_mon 2.1 writes Promoted; older schemas (and some outputs) Master


def role_nodes(crm_mon_xml: str, resource_id: str, roles: Sequence[str] = PROMOTED) -> list[str]:
    """Nodes where instances of `resource_id` (a clone's primitive) run in one of `roles`, e.g. the promoted."""
    resources = _root(crm_mon_xml).find("resources")
    out: list[str] = []
    for r in resources.iter("resource") if resources is not None else ():
        if r.get("id") == resource_id and r.get("role") in roles and not _true(r, "failed"):
            out += [n for n in _on(r) if n not in out]
    return out
