"""The fenced contrast of the guide profile's freeze (a split-brain there): the peer loses the frozen node, powers it
off through fence_virsh, and only then starts its groups; no double VIP, no double mount. Shared by the hardened
suite (its profile fences from the start) and the guide suite's libvirt smoke, where `stonith_on` switches the
hardened profile's fence devices on for one trial: the contrast on the same cluster, without a second pair of VMs."""

from __future__ import annotations

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
    powers it on) before it starts the group, and the checkers see no double VIP or mount."""
    group = lab.scenario.services["mysql"].group or ""
    node = lab.settle()[group]
    other = next(n for n in lab.cluster_nodes if n != node)
    bound_ms = lab.pcmk.failover_bound_ms("mysql") + fencing.STONITH_TIMEOUT_S * 1000
    with lab.trial(name) as t:
        t.fault("freeze", node)
        until(
            lambda: not lab.provider.is_running(node),
            timeout=(bounds.membership_ms(lab.opts) / 1000) + fencing.STONITH_TIMEOUT_S,
            what=f"{other} to fence frozen {node} (fence_virsh powers its domain off)",
            seen=lambda: lab.status(),
        )
        placed = lab.settle(on=other, avoid=node, timeout=bound_ms / 1000)
        res = t.finish(bounds_ms={"mysql": bound_ms}, settle_avoid=node, membership_change=True)
    history = lab.provider.run(other, "stonith_admin --history '*'", timeout=30).stdout
    lab.restart_node(node)  # fenced = powered off: power it on again for whatever runs next
    assert placed[group] == other
    # Pacemaker asks for `reboot`; pcmk_reboot_action=off makes fence_virsh power the domain off (it stayed off).
    assert f"of {node} successful" in history, f"no successful fencing of {node} in the history: {history}"
    lab.report.notes.append(f"{name}: {node} fenced by {other}; {history.strip()[:200]}")
    assert_checks(res)  # vip-holders and double-mounts among them: the frozen node never held on while the peer ran


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
