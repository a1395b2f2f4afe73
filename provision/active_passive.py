"""Guide ch. 2-3 end to end: corosync + pacemaker on the cluster nodes, then g_mysql and g_rabbitmq."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab import progress
from lab.checks.base import Check
from lab.checks.placement import placement
from lab.floors import Floor
from lab.history import History
from lab.scenario import ScenarioError
from lab.workload.config import Endpoint, WorkloadConfig
from provision import drbd, fencing, mysql, pacemaker, pacemaker_floor, pacemaker_groups, rabbitmq
from provision.context import Context

SERVICES = {"mysql": mysql, "rabbitmq": rabbitmq}
HONOURS_LAB_SERVICES = True  # LAB_SERVICES=mysql runs the MySQL half of the chapter (the TCG smoke)
VIP_HANDOVER_SAMPLES = 0  # Pacemaker stops a VIP before it starts it elsewhere
NO_GROUP_FIX = "Pacemaker runs {s} as a group here: name it, e.g. `group: g_{s}`"


def services(ctx: Context) -> list[str]:
    return [
        s
        for s in ctx.scenario.services
        if s in SERVICES and ctx.scenario.nodes_with_role(s) and (ctx.only is None or s in ctx.only)
    ]


def groups(ctx: Context) -> dict[str, str]:
    """service -> Pacemaker group name (g_mysql, g_rabbitmq)."""
    out: dict[str, str] = {}
    for s in services(ctx):
        group = ctx.scenario.services[s].group
        if group is None:
            raise ScenarioError(ctx.scenario.path, f"services.{s}.group", "not set", NO_GROUP_FIX.format(s=s))
        out[s] = group
    return out


def devices(ctx: Context) -> dict[str, str]:
    """The block device of each service: DRBD where the provider has it, else the provider's shared-disk stand-in
    (both carry an empty XFS, mountable on the first cluster node)."""
    if ctx.drbd:
        return drbd.create(ctx, services(ctx))
    return {s: ctx.provider.shared_disk(s, ctx.scenario.services[s].disk_mb) for s in services(ctx)}


def converge(ctx: Context) -> None:
    # the role boundaries below are what `halab provision` shows as it goes (lab/progress.py)
    nodes = ctx.cluster_nodes
    first = nodes[0]
    on = ", ".join(nodes)
    progress.note(f"{' + '.join(services(ctx))} configuration on {on}")
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        list(pool.map(lambda n: _configure_node(ctx, n), nodes))
    progress.note(f"DRBD resources on {on}" if ctx.drbd else "shared disks")
    devs = devices(ctx)
    for s, dev in devs.items():
        SERVICES[s].prepare_disk(ctx, first, dev)
    if ctx.drbd:
        drbd.release(ctx, services(ctx))
    crm = pacemaker.stack_up(ctx)
    if ctx.opts.ping_check:
        crm.append(pacemaker.connectivity(ctx, list(groups(ctx).values())))
    crm += [SERVICES[s].crm(ctx, dev) for s, dev in devs.items()]
    progress.note(f"crm configure, then {', '.join(groups(ctx).values())} starting")
    pacemaker.configure(ctx, first, "\n".join(crm))
    placed = wait_settled(ctx, first)
    progress.note("client accounts")
    for s, group in groups(ctx).items():
        SERVICES[s].create_client_account(ctx, placed[group])


def _configure_node(ctx: Context, node: str) -> None:
    for s in services(ctx):
        SERVICES[s].configure_node(ctx, node)


def start_node(ctx: Context, node: str) -> None:
    """Bring a restarted node back into the cluster (what its init system would do at boot)."""
    _configure_node(ctx, node)
    pacemaker.start_stack(ctx, node)


def start_nodes(ctx: Context, nodes: list[str]) -> None:
    """start_node on each, without waiting for the cluster (a test watching a lone node's start)."""
    for n in nodes:
        start_node(ctx, n)


def start_deadline_s(ctx: Context) -> float:
    return pacemaker_groups.start_deadline_s(ctx, groups(ctx).values())


def wait_settled(ctx: Context, node: str, *, timeout: float | None = None, avoid: str | None = None) -> dict[str, str]:
    """Wait until every group runs, whole, on one node (not `avoid`); return group -> node."""
    return pacemaker_groups.wait_settled(ctx, node, groups(ctx).values(), timeout=timeout, avoid=avoid)


# ---------------------------------------------------------------- the playbook interface (provision/playbook.py)
PACKAGES = [
    "corosync",
    "pacemaker",
    "crmsh",
    "resource-agents",
    "mariadb-server",
    "rabbitmq-server",
    "xfsprogs",
    "drbd-utils",
]


def workload(ctx: Context, out_dir: Path, run_id: int) -> WorkloadConfig:
    """A MySQL writer through p_ip_mysql, an AMQP publisher + consumer through p_ip_rabbitmq, a TCP probe
    of each VIP."""
    sc, secrets = ctx.scenario, ctx.secrets
    present = services(ctx)
    sql = amqp = None
    if "mysql" in present:
        sql = Endpoint(
            "mysql", str(sc.vip_for("mysql").address), sc.services["mysql"].port, "halab", secrets.mysql_password
        )
    if "rabbitmq" in present:
        amqp = Endpoint(
            "rabbitmq",
            str(sc.vip_for("rabbitmq").address),
            sc.services["rabbitmq"].port,
            "halab",
            secrets.rabbitmq_password,
        )
    probes = [Endpoint(e.service, e.host, e.port) for e in (sql, amqp) if e]
    return WorkloadConfig(out_dir=str(out_dir), run_id=run_id, sql=sql, amqp=amqp, probes=probes)


def vip_of(ctx: Context, service: str) -> str | None:
    return str(ctx.scenario.vip_for(service).address)


def settle(
    ctx: Context, *, on: str | None = None, avoid: str | None = None, timeout: float | None = None
) -> dict[str, str]:
    """Wait until every group runs whole on one node and no transition is pending; group -> node."""
    return pacemaker_groups.settle(ctx, groups(ctx).values(), on=on, avoid=avoid, timeout=timeout)


def recovered_on(ctx: Context, service: str, placed: dict[str, str]) -> str | None:
    return placed.get(groups(ctx)[service])


recovery_deadline_s = start_deadline_s


def restart_node(ctx: Context, node: str) -> None:
    start_node(ctx, node)
    pacemaker.wait_online(ctx, node, ctx.cluster_nodes)


def restart_nodes(ctx: Context, nodes: list[str]) -> str:
    start_nodes(ctx, nodes)
    for n in nodes:
        pacemaker.wait_online(ctx, n, ctx.cluster_nodes)
    return f"corosync and pacemaker started on {', '.join(nodes)}"


def floor(
    ctx: Context,
    service: str,
    before: dict[str, str],
    after: dict[str, str],
    membership_change: bool,
    faults: list[tuple[str, str, float]],
    history: History,
) -> Floor | None:
    """The least this group's move could take (provision/pacemaker_floor.py), its last member the service's."""
    group = groups(ctx)[service]
    return pacemaker_floor.group_floor(ctx, service, group, None, before, after, membership_change, faults, history)


def audits(ctx: Context) -> list[Check]:
    return [placement(ctx.ask("crm_mon -1 --output-as=xml") or "")]


def status(ctx: Context) -> str:
    return ctx.ask("crm_mon -1 -r") or "no cluster node answers crm_mon"


def notes(ctx: Context) -> list[str]:
    out = [n for n in [fencing.note(ctx)] if n] + pacemaker.timeout_note(ctx)
    if ctx.only is not None:
        left = sorted(set(ctx.scenario.services) & set(SERVICES) - set(services(ctx)))  # ch. 3's, not ch. 4's
        out.append(f"LAB_SERVICES={','.join(ctx.only)}: provisioned and tested {services(ctx)} only, not {left}")
    if ctx.drbd:
        return out
    return out + [
        f"{ctx.provider.name}: DRBD needs a kernel module this provider cannot load; ms_drbd_* are replaced by "
        "a loop-backed XFS image per service, mounted by ocf:heartbeat:Filesystem. A double mount shows in the "
        "nodes' mount tables, not as damage. DRBD runs on LAB_PROVIDER=libvirt."
    ]


def start_service(ctx: Context, node: str, service: str) -> None:
    """corosync and pacemaker start as the node's init would (then it rejoins); the groups' services need nothing
    by hand: Pacemaker's monitor finds the dead process and restarts it."""
    if service in ("corosync", "pacemaker"):
        restart_node(ctx, node)
