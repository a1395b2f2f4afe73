"""The fenced contrast of the guide profile's freeze (a split-brain there): the peer loses the frozen node, powers it
off through fence_virsh, and only then starts its groups; no double VIP, no double mount. Shared by the hardened
suite (its profile fences from the start) and the guide suite's libvirt smoke, where `stonith_on` switches the
hardened profile's fence devices on for one trial: the contrast on the same cluster, without a second pair of VMs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager

from lab import bounds
from lab.checks.placement import resource_nodes
from lab.fixtures import assert_checks
from lab.session import Lab
from lab.wait import until
from provision import fencing, pacemaker


def fenced_freeze(lab: Lab, name: str) -> None:
    """Freeze the node running the MySQL group: the peer fences it (powered off, and it stays off until the test
    powers it on) before it starts the group, and the checkers see no double VIP or mount. Whatever happens once the
    freeze is on its way, the node is brought back (`_bring_back`) before this returns or raises: the tests after
    this one share the lab (and `stonith_on` switches STONITH off only after this)."""
    group = lab.scenario.services["mysql"].group or ""
    node = lab.settle()[group]
    other = next(n for n in lab.cluster_nodes if n != node)
    bound_ms = lab.pcmk.failover_bound_ms("mysql") + fencing.STONITH_TIMEOUT_S * 1000
    froze = False
    try:
        with lab.trial(name) as t:
            froze = True  # from here on the node may be paused or powered off
            t.fault("freeze", node)
            until(
                lambda: not lab.provider.is_running(node),
                timeout=_fence_s(lab),
                what=f"{other} to fence frozen {node} (fence_virsh powers its domain off)",
                seen=lambda: lab.status(),
            )
            placed = lab.settle(on=other, avoid=node, timeout=bound_ms / 1000)
            res = t.finish(bounds_ms={"mysql": bound_ms}, settle_avoid=node, membership_change=True)
        history = lab.provider.run(other, "stonith_admin --history '*'", timeout=30).stdout
    except BaseException as exc:
        if froze:  # the trial has undone its freeze (a thaw): a fenced node is still off
            _recover(lab, name, node, other, exc)
        raise
    _bring_back(lab, node, other)  # fenced = powered off: power it on again for whatever runs next
    assert placed[group] == other
    # Pacemaker asks for `reboot`; pcmk_reboot_action=off makes fence_virsh power the domain off (it stayed off).
    assert f"of {node} successful" in history, f"no successful fencing of {node} in the history: {history}"
    lab.report.notes.append(f"{name}: {node} fenced by {other}; {history.strip()[:200]}")
    assert_checks(res)  # vip-holders and double-mounts among them: the frozen node never held on while the peer ran


def _fence_s(lab: Lab) -> float:
    """How long the peer may take to fence a frozen node: losing it (token + consensus), then fence_virsh's op."""
    return bounds.membership_ms(lab.opts) / 1000 + fencing.STONITH_TIMEOUT_S


def _recover(lab: Lab, name: str, node: str, other: str, exc: BaseException) -> None:
    """Bring the node back after the trial failed, without hiding why it failed: a recovery that fails too is a note
    on the trial's exception (and in the report), and the trial's exception is what the caller re-raises."""
    try:
        how = _bring_back(lab, node, other)
    except Exception as rec:
        why = f"{name}: could not bring {node} back after the trial failed: {type(rec).__name__}: {rec}"
        exc.add_note(why)
        lab.report.notes.append(why)
    else:
        lab.report.notes.append(f"{name}: {node} {how} after the trial failed")


def _bring_back(lab: Lab, node: str, other: str) -> str:
    """The frozen node as the tests after this one need it: running, and a clean member of the cluster. Powered off
    (fenced): powered on and its cluster stack started, as a crashed node is (Lab.restart_node). Still running (the
    trial failed before the peer fenced it): thawed, a no-op unless still paused, then given a fence's bound and a
    rejoin's to either be a clean member again in the peer's crm_mon or be fenced after all, and then powered on.
    Returns what it did."""
    p = lab.provider
    if p.is_running(node):
        p.thaw(node)
        until(
            lambda: not p.is_running(node) or _clean_member(lab, node, other),
            timeout=_fence_s(lab) + pacemaker.stack_deadline_s(lab.ctx),
            interval=0.5,
            what=f"thawed {node} to rejoin {other}'s cluster, or to be fenced (powered off) after all",
            seen=lambda: lab.status(),
        )
        if p.is_running(node):
            return "thawed; it rejoined without being fenced"
    lab.restart_node(node)
    return "powered on again and its cluster stack started"


def _clean_member(lab: Lab, node: str, other: str) -> bool:
    """`node` online in `other`'s crm_mon, neither unclean (a fence still owed) nor pending (joining)."""
    xml = pacemaker.crm_mon_xml(lab.ctx, other)
    try:
        nodes = ET.fromstring(xml).find("nodes") if xml else None
    except ET.ParseError:
        return False
    n = next((n for n in (nodes if nodes is not None else ()) if n.get("name") == node), None)
    return n is not None and n.get("online") == "true" and "true" not in (n.get("unclean"), n.get("pending"))


@contextmanager
def stonith_on(lab: Lab) -> Iterator[None]:
    """The hardened profile's fence devices (provision/fencing.py) and stonith-enabled=true on the running cluster
    for the block, once Pacemaker has started them; then the guide's configuration again: stonith-enabled=false and
    the devices deleted (their location constraints with them)."""
    ctx, nodes = lab.ctx, lab.cluster_nodes
    for n in nodes:
        fencing.install(ctx, n)
    pacemaker.configure(ctx, nodes[0], fencing.crm(ctx) + "\nproperty stonith-enabled=true\n")
    lab.report.notes.append(f"STONITH switched on for one trial: {', '.join(f'st_{n}' for n in nodes)} (fence_virsh)")
    try:
        lab.settle()  # no transition pending: the devices started where they may run
        yield
    finally:
        _switch_off(lab, [f"st_{n}" for n in nodes])
        lab.report.notes.append("STONITH switched off again: the guide's stonith-enabled=false")


def _switch_off(lab: Lab, devices: list[str]) -> None:
    """stonith-enabled=false, the devices stopped, and only once no node runs them deleted. crmsh's own
    `delete -F` waits for the stop it asks for, yet CI saw it refuse anyway ("resource st_node2 is running"): the
    fenced node had just rejoined and the transition that started st_node2 there was still running. Stopping first
    and polling where crm_mon sees each device closes that race (Pacemaker records a pending start, record-pending
    being true by default, so a device still starting counts as running). The wait is bounded by two op timeouts,
    a start still in flight and then its stop, plus a membership change."""
    on = next(n for n in lab.cluster_nodes if lab.provider.is_running(n))
    run = lab.provider.run
    run(on, "crm configure property stonith-enabled=false", check=True, timeout=60)
    for d in devices:
        run(on, f"crm_resource --resource {d} --meta --set-parameter target-role --parameter-value Stopped",
            check=True, timeout=60)  # fmt: skip

    def running() -> dict[str, list[str]]:
        xml = pacemaker.crm_mon_xml(lab.ctx, on)
        where = resource_nodes(xml) if xml else {d: ["(crm_mon did not answer)"] for d in devices}
        return {d: where[d] for d in devices if where.get(d)}

    stop_s = pacemaker.DEFAULT_OP_TIMEOUT_S * pacemaker.timeout_scale(lab.ctx)
    deadline_s = 2 * stop_s + bounds.membership_ms(lab.opts) / 1000
    until(lambda: not running(), timeout=deadline_s, what=f"{', '.join(devices)} stopped on every node before "
          "they are deleted", seen=lambda: f"still running: {running()}")  # fmt: skip
    run(on, f"crm configure delete {' '.join(devices)}", check=True, timeout=120)
