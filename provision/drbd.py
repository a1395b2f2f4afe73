"""Role drbd: guide ch. 3 "Configure DRBD", on providers with a DRBD kernel module (libvirt VMs).

The guide's sequence on each resource: `create-md` and `up` on both nodes, `primary --force` on one, `mkfs -t xfs`,
then `secondary` once the service's data directory is on it; Pacemaker's ms_drbd_* own the resource from then on.
One change, for time: the guide's `primary --force` starts a full initial sync of an empty device (minutes under
TCG); on brand-new backing devices the DRBD User's Guide's "skipping the initial resync" (`new-current-uuid
--clear-bitmap` while connected) makes both sides UpToDate at once, and `primary` then needs no force. Every later
resync (after a crash, a cut) is DRBD's own.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from lab.providers.base import ProviderError
from provision.context import Context, render

# DRBD 8.4's defaults: connect-int 10 s between connection attempts, ping-int 10 s between keep-alives,
# ping-timeout 0.5 s, timeout 6 s for any expected answer (a peer that stays silent that long is dead).
CONNECT_INT_S, PING_INT_S, PING_TIMEOUT_S, TIMEOUT_S = 10, 10, 0.5, 6
# Two connection attempts are enough for peers that are both up; a third absorbs a slow guest.
CONNECT_S = 3 * CONNECT_INT_S
# A dead link is noticed by the next keep-alive that goes unanswered, or by a write whose answer never comes.
DETECT_S = PING_INT_S + PING_TIMEOUT_S + TIMEOUT_S


@runtime_checkable
class DrbdDisks(Protocol):
    """A provider with a DRBD kernel module (`has_drbd`, libvirt VMs): the backing disk of each service's resource."""

    def drbd_backing(self, service: str) -> str: ...


def resource(ctx: Context, service: str, disk: str) -> str:
    svc = ctx.scenario.services[service]
    peers = [(n, str(ctx.scenario.nodes[n].addresses[replication_network(ctx)])) for n in ctx.cluster_nodes]
    return render("drbd.res.j2", name=service, minor=svc.drbd_minor, disk=disk, port=svc.drbd_port, peers=peers)


def replication_network(ctx: Context) -> str:
    """The guide replicates over its second ring: the scenario's network whose purpose is replication."""
    return ctx.scenario.network_for("replication")


def create(ctx: Context, services: list[str]) -> dict[str, str]:
    """Bring every service's resource up on every cluster node, make the first node Primary with an empty XFS on
    the device; return service -> DRBD device."""
    from lab.wait import until

    nodes, first = ctx.cluster_nodes, ctx.cluster_nodes[0]
    provider = ctx.provider
    if not isinstance(provider, DrbdDisks):
        raise ProviderError(f"the {provider.name} provider has no DRBD backing disks (drbd_backing)")
    disks = {s: provider.drbd_backing(s) for s in services}
    for n in nodes:
        for s in services:
            ctx.provider.put(n, f"/etc/drbd.d/{s}.res", resource(ctx, s, disks[s]))
            ctx.provider.run(n, f"drbdadm -- --force create-md {s}", check=True, timeout=120)
            ctx.provider.run(n, f"drbdadm up {s}", check=True, timeout=60)
    devices = {}
    for s in services:
        until(
            lambda s=s: ctx.provider.run(first, f"drbdadm cstate {s}", timeout=15).stdout.strip() == "Connected",
            timeout=CONNECT_S,
            interval=0.5,
            what=f"DRBD resource {s} to connect over {replication_network(ctx)}",
            seen=lambda s=s: ctx.provider.run(first, "cat /proc/drbd", timeout=15).stdout,
        )
        ctx.provider.run(first, f"drbdadm -- --clear-bitmap new-current-uuid {s}", check=True, timeout=60)
        ctx.provider.run(first, f"drbdadm primary {s}", check=True, timeout=60)
        dev = ctx.provider.shared_disk(s, ctx.scenario.services[s].disk_mb)
        ctx.provider.run(first, f"mkfs.xfs -q -f {dev}", check=True, timeout=120)
        devices[s] = dev
    return devices


def release(ctx: Context, services: list[str]) -> None:
    """The guide's `drbdadm secondary`, then down everywhere: Pacemaker's ocf:linbit:drbd brings them up."""
    for s in services:
        ctx.provider.run(ctx.cluster_nodes[0], f"drbdadm secondary {s}", check=True, timeout=60)
    for n in ctx.cluster_nodes:
        for s in services:
            ctx.provider.run(n, f"drbdadm down {s}", check=True, timeout=60)


def states(ctx: Context, service: str) -> dict[str, str]:
    """node -> `cstate role dstate` of the resource, for the nodes that answer."""
    out = {}
    for n in ctx.cluster_nodes:
        if ctx.provider.is_running(n):
            r = ctx.provider.run(n, f"echo $(drbdadm cstate {service}) $(drbdadm role {service}) "
                                 f"$(drbdadm dstate {service})", timeout=15)
            out[n] = r.stdout.strip()
    return out


# DRBD 8.4's resync controller never drops below c-min-rate (default 250 KiB/s) while the device is in use.
C_MIN_RATE_KIB_S = 250


def resync_deadline_s(ctx: Context, service: str) -> float:
    """Worst case for a returning peer: connect, then resync the whole backing device at the minimum rate (a
    crash normally leaves only the blocks written meanwhile out of sync)."""
    return CONNECT_S + ctx.scenario.services[service].disk_mb * 1024 / C_MIN_RATE_KIB_S


def cstate(ctx: Context, node: str, service: str) -> str:
    return ctx.provider.run(node, f"drbdadm cstate {service}", timeout=15).stdout.strip()


def synced(ctx: Context, service: str, primary: str) -> bool:
    """Connected, Primary where its group runs, Secondary elsewhere, UpToDate on both sides."""
    st = states(ctx, service)
    want = {n: f"Connected {'Primary' if n == primary else 'Secondary'}/" for n in ctx.cluster_nodes}
    return all(st.get(n, "").startswith(w) and st[n].endswith("UpToDate/UpToDate") for n, w in want.items())


def split_brain_log(ctx: Context) -> dict[str, list[str]]:
    """node -> the kernel's DRBD split-brain lines (DRBD logs `Split-Brain detected` when it refuses to connect)."""
    out = {}
    for n in ctx.cluster_nodes:
        r = ctx.provider.run(n, "dmesg | grep -i 'split-brain' || true", timeout=15)
        out[n] = [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]
    return out


def recover_split_brain(
    ctx: Context, service: str, keep: str, before: dict[str, list[str]]
) -> dict[str, list[str]]:
    """DRBD's manual split-brain recovery (DRBD User's Guide, "Manual split brain recovery"): the node that does not
    run the group discards what it wrote while alone and resyncs from `keep`. Returns the split-brain lines the
    kernel logged since `before` (an earlier split_brain_log()), after both sides are Connected and UpToDate again."""
    from lab.wait import until

    def new_lines() -> dict[str, list[str]]:
        return {n: lines[len(before.get(n, [])) :] for n, lines in split_brain_log(ctx).items()}

    victim = next(n for n in ctx.cluster_nodes if n != keep)
    until(
        lambda: any(new_lines().values()) or synced(ctx, service, keep),
        timeout=CONNECT_S,
        interval=1,
        what=f"DRBD {service} to reconnect or to report a split-brain",
        seen=lambda: states(ctx, service),
    )
    evidence = new_lines()
    if any(evidence.values()):
        ctx.provider.run(victim, f"drbdadm disconnect {service}; drbdadm secondary {service}", timeout=60)
        ctx.provider.run(victim, f"drbdadm -- --discard-my-data connect {service}", check=True, timeout=60)
        if cstate(ctx, keep, service) == "StandAlone":
            ctx.provider.run(keep, f"drbdadm connect {service}", check=True, timeout=60)
    until(
        lambda: synced(ctx, service, keep),
        timeout=resync_deadline_s(ctx, service),
        interval=1,
        what=f"DRBD {service} Connected and UpToDate again, Primary on {keep}",
        seen=lambda: states(ctx, service),
    )
    return evidence
