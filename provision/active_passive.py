"""Guide ch. 2-3 end to end: corosync + pacemaker on the cluster nodes, then g_mysql and g_rabbitmq."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from lab.checks.placement import group_nodes, resource_nodes
from lab.wait import until
from provision import mysql, pacemaker, rabbitmq
from provision.context import Context

SERVICES = {"mysql": mysql, "rabbitmq": rabbitmq}


def services(ctx: Context) -> list[str]:
    return [s for s in ctx.scenario.services if s in SERVICES and ctx.scenario.nodes_with_role(s)]


def groups(ctx: Context) -> dict[str, str]:
    """service -> Pacemaker group name (g_mysql, g_rabbitmq)."""
    return {s: ctx.scenario.services[s].group for s in services(ctx)}


def devices(ctx: Context) -> dict[str, str]:
    return {s: ctx.provider.shared_disk(s, ctx.scenario.services[s].disk_mb) for s in services(ctx)}


def converge(ctx: Context) -> None:
    nodes = ctx.cluster_nodes
    first = nodes[0]
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        list(pool.map(lambda n: _configure_node(ctx, n), nodes))
    devs = devices(ctx)
    for s, dev in devs.items():
        SERVICES[s].prepare_disk(ctx, first, dev)
    for n in nodes:
        pacemaker.start_stack(ctx, n)
    pacemaker.wait_online(ctx, first, nodes)
    crm = [pacemaker.properties(ctx)]
    if ctx.opts.ping_check:
        crm.append(pacemaker.connectivity(ctx, list(groups(ctx).values())))
    crm += [SERVICES[s].crm(ctx, dev) for s, dev in devs.items()]
    pacemaker.configure(ctx, first, "\n".join(crm))
    placed = wait_settled(ctx, first)
    for s, group in groups(ctx).items():
        SERVICES[s].create_client_account(ctx, placed[group])


def _configure_node(ctx: Context, node: str) -> None:
    for s in services(ctx):
        SERVICES[s].configure_node(ctx, node)


def start_node(ctx: Context, node: str) -> None:
    """Bring a restarted node back into the cluster (what its init system would do at boot)."""
    _configure_node(ctx, node)
    pacemaker.start_stack(ctx, node)


def start_deadline_s(ctx: Context) -> float:
    """Worst case for the groups to start: the guide's start timeouts (IPaddr2 20 s default,
    Filesystem 60 s, mysql 120 s; rabbitmq-server has no timeout in the guide, Pacemaker's default is
    20 s) plus a membership change."""
    return 20 + 60 + 120 + (ctx.opts.token_ms + ctx.opts.consensus_ms) / 1000


def wait_settled(ctx: Context, node: str, *, timeout: float | None = None, avoid: str | None = None) -> dict[str, str]:
    """Wait until every group runs, whole, on one node (not `avoid`); return group -> node."""
    want = groups(ctx).values()

    def settled() -> dict[str, str] | None:
        xml = pacemaker.crm_mon_xml(ctx, node)
        if not xml:
            return None
        placed = group_nodes(xml)
        if all(g in placed and placed[g] is not None and placed[g] != avoid for g in want):
            return {g: placed[g] for g in want}  # type: ignore[misc]
        return None

    return until(
        settled,
        timeout=timeout or start_deadline_s(ctx),
        interval=0.1,
        what=f"groups {sorted(want)} to run whole on one node each" + (f", not on {avoid}" if avoid else ""),
        seen=lambda: resource_nodes(pacemaker.crm_mon_xml(ctx, node) or "<x/>"),
    )
