"""Guide ch. 2's votequorum, built: corosync + pacemaker on every cluster node (a full-size cluster, or two nodes
and a qdevice), a VIP + memcached group and a promotable ocf:pacemaker:Stateful for quorum to protect."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab import progress
from lab.checks.base import Check
from lab.checks.placement import placement, role_nodes
from lab.floors import Floor
from lab.history import History
from lab.workload.config import Endpoint, WorkloadConfig
from provision import memcached, pacemaker, pacemaker_groups, qdevice
from provision.context import Context, render

PACKAGES = ["corosync", "pacemaker", "crmsh", "resource-agents", "memcached", "corosync-qdevice", "corosync-qnetd"]
HONOURS_LAB_SERVICES = False  # one small group: nothing to narrow
VIP_HANDOVER_SAMPLES = 0  # Pacemaker stops a VIP before it starts it elsewhere
STATEFUL = "p_stateful"  # the promotable resource (no-quorum-policy=demote acts on it)
STATEFUL_CLONE = "ms_stateful"
MEMCACHED_ID = "p_memcached"


def services(ctx: Context) -> list[str]:
    return [s for s, svc in ctx.scenario.services.items() if svc.group is not None]


def groups(ctx: Context) -> dict[str, str]:
    """service -> its Pacemaker group (the loader refuses a service of this topology without one)."""
    return {s: str(ctx.scenario.services[s].group) for s in services(ctx)}


def _options(ctx: Context, vip: str, port: int) -> str:
    # memcached listens on the VIP alone: it cannot start where the group's IP is not (the group's order)
    return f"-u memcache -l {vip} -p {port} -U 0 -m {memcached.MEMORY_MB}"


def crm(ctx: Context) -> str:
    (service,) = services(ctx)  # the loader lets this topology have exactly one
    vip = ctx.scenario.vip_for(service)
    port = ctx.scenario.services[service].port
    return render(
        "quorum.crm.j2",
        ip_id=vip.resource,
        vip=vip.address,
        prefixlen=ctx.scenario.networks[vip.network].cidr.prefixlen,
        service_id=MEMCACHED_ID,
        options=_options(ctx, str(vip.address), port),
        group=groups(ctx)[service],
        stateful_id=STATEFUL,
        clone_id=STATEFUL_CLONE,
    )


def _start(ctx: Context, node: str) -> None:
    if node == qdevice.host(ctx):  # the arbiter: qnetd, no cluster stack
        qdevice.start_qnetd(ctx)
        return
    ctx.provider.run(node, "mkdir -p /var/log/halab", check=True, timeout=15)
    pacemaker.start_stack(ctx, node)
    qdevice.start_qdevice(ctx, node)


def start_nodes(ctx: Context, nodes: list[str]) -> None:
    """corosync + pacemakerd on `nodes`, all at once (what their init systems would do at boot), without waiting."""
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        list(pool.map(lambda n: _start(ctx, n), nodes))


def _one_promoted(xml: str) -> bool:
    return len(role_nodes(xml, STATEFUL)) == 1


def converge(ctx: Context) -> None:
    nodes = ctx.cluster_nodes
    first = nodes[0]
    arbiter = qdevice.host(ctx)
    if arbiter:
        progress.note(f"corosync-qnetd on {arbiter}")
        qdevice.start_qnetd(ctx)
    progress.note(f"corosync + pacemaker{' + corosync-qdevice' if arbiter else ''} on {', '.join(nodes)}")
    start_nodes(ctx, nodes)
    pacemaker.wait_online(ctx, first, nodes)
    progress.note(f"crm configure, then {', '.join(groups(ctx).values())} and {STATEFUL_CLONE} starting")
    pacemaker.configure(ctx, first, pacemaker.properties(ctx) + "\n" + crm(ctx))
    settle(ctx, on=first)


# ---------------------------------------------------------------- the playbook interface (provision/playbook.py)
def workload(ctx: Context, out_dir: Path, run_id: int) -> WorkloadConfig:
    """A memcached client through the group's VIP (set, then get it back), and a TCP probe of the VIP."""
    (service,) = services(ctx)
    vip, port = str(ctx.scenario.vip_for(service).address), ctx.scenario.services[service].port
    cache = Endpoint(service, vip, port, hosts=[vip])
    return WorkloadConfig(out_dir=str(out_dir), run_id=run_id, cache=cache, probes=[Endpoint(service, vip, port)])


def vip_of(ctx: Context, service: str) -> str | None:
    return str(ctx.scenario.vip_for(service).address)


def settle(
    ctx: Context, *, on: str | None = None, avoid: str | None = None, timeout: float | None = None
) -> dict[str, str]:
    """Every group whole on one node, one promoted Stateful instance, no transition pending; group -> node."""
    return pacemaker_groups.settle(
        ctx, groups(ctx).values(), on=on, avoid=avoid, timeout=timeout, also=_one_promoted,
        also_what=f"{STATEFUL} promoted on one node",
    )  # fmt: skip


def recovered_on(ctx: Context, service: str, placed: dict[str, str]) -> str | None:
    return placed.get(groups(ctx)[service])


def recovery_deadline_s(ctx: Context) -> float:
    return pacemaker_groups.start_deadline_s(ctx, groups(ctx).values())


def restart_node(ctx: Context, node: str) -> None:
    start_nodes(ctx, [node])
    if node == qdevice.host(ctx):
        return  # qnetd: the nodes' qdevices reconnect on their own (heartbeats every timeout x 0.8)
    pacemaker.wait_online(ctx, node, [n for n in ctx.cluster_nodes if ctx.provider.is_running(n)])


def restart_nodes(ctx: Context, nodes: list[str]) -> str:
    start_nodes(ctx, nodes)
    up = [n for n in ctx.cluster_nodes if ctx.provider.is_running(n)]
    for n in (n for n in nodes if n in ctx.cluster_nodes):
        pacemaker.wait_online(ctx, n, up)
    return f"corosync and pacemaker started on {', '.join(nodes)}"


def start_service(ctx: Context, node: str, service: str) -> None:
    """corosync and pacemaker start as the node's init would; memcached is Pacemaker's to restart."""
    if service in ("corosync", "pacemaker"):
        restart_node(ctx, node)


def floor(
    ctx: Context,
    service: str,
    before: dict[str, str],
    after: dict[str, str],
    membership_change: bool,
    faults: list[tuple[str, str, float]],
    history: History,
) -> Floor | None:
    """No floor: this topology's trials judge quorum (who may run what), not how fast a group moves."""
    return None


def audits(ctx: Context) -> list[Check]:
    return [placement(ctx.ask("crm_mon -1 --output-as=xml") or "")]


def status(ctx: Context) -> str:
    return ctx.ask("crm_mon -1 -r") or "no cluster node answers crm_mon"


def notes(ctx: Context) -> list[str]:
    return pacemaker.timeout_note(ctx)
